#!/bin/bash
# test-lab-status.sh — the status page (issue 18) in headless Chromium, on
# 3 lab hosts with web1 on h3:
#  - http://127.0.0.1:9731/ on h1 shows the three hosts as members and web1
#    running on haven-h3 (DOM assertions on the page after its script ran);
#  - from another host (h1 listens on its management address too) the
#    metrics answer, with h1's iSCSI path up and its latency (promtool-
#    clean); the page and its JSON are refused (401, saying how to log
#    in); Chromium on h2 opens the address havenctl status login prints
#    and sees the page; the code works once;
#  - lab kill haven-h3: the page, read again and again, shows h3 lost and
#    the failover as it happens, until its timeline has web1 running again
#    on a survivor; a screenshot of it is kept (its path is printed).
# Exit 0 on pass; 77 (skip) when not root or without chromium; 1 with a
# FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")

fail() { echo "FAIL: $*" >&2; exit 1; }
command -v chromium >/dev/null || { echo "SKIP: no chromium (apt-get install chromium)"; exit 77; }
. "$(dirname "$0")/failover-lib.sh"

lab_test_begin status
mkdir -m 700 "$TMP/chrome"
# chromium HOST ARGS... — headless, in HOST's network namespace, on h1's
# page; its own profile; the page's script runs for up to 4 s.
chrome() {
	local host=$1
	shift
	"$LAB" exec "$host" env HOME="$TMP/chrome" chromium --headless=new --no-sandbox \
		--disable-gpu --no-first-run --user-data-dir="$TMP/chrome/profile" \
		--virtual-time-budget=4000 "$@" http://127.0.0.1:9731/ 2>/dev/null
}
dom() { chrome h1 --dump-dom; }
# chrome_at HOST URL ARGS... — the same on another address, with the profile
# (its cookies) of h2.
chrome_at() {
	local host=$1 url=$2
	shift 2
	"$LAB" exec "$host" env HOME="$TMP/chrome" chromium --headless=new --no-sandbox \
		--disable-gpu --no-first-run --user-data-dir="$TMP/chrome/profile-$host" \
		--virtual-time-budget=4000 "$@" "$url" 2>/dev/null
}

step "3 hosts; web1 on haven-h3; h1 also serves on its management address"
lab_cluster 3
mgmt=$("$LAB" exec h1 ip -4 -o addr show mgmt0 | awk '{ split($4, a, "/"); print a[1]; exit }')
[[ -n $mgmt ]] || fail "no management address on h1"
"$LAB" exec h1 sh -c 'printf "\n[metrics]\nlisten = 0.0.0.0:9731\n" >>/etc/haven/haven.conf'
"$LAB" exec h1 sh -c 'p=$(cat /run/havend.pid); kill "$p"; while kill -0 "$p" 2>/dev/null; do sleep 0.1; done'
start_havend h1
wait_for 30 "h1 quorate again" members_are h1 '[true,[1,2,3]]'
ctl h1 vm create web1 --memory 64M --volume web1-disk --prefer 3 --stop-timeout 3 \
	--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100" >/dev/null
ctl h1 vm start web1 >/dev/null
wait_for 60 "web1 running" phase_is h1 web1 running
[[ $(vm_field h1 web1 owner) == 3 ]] || fail "web1 is not on haven-h3"

step "the page shows the three hosts and web1 on haven-h3"
page=$(dom)
for i in 1 2 3; do
	grep -q "data-host=\"haven-h$i\" data-membership=\"member\"" <<<"$page" ||
		fail "the page does not show haven-h$i as a member: $(grep -o '<tr data-host[^>]*>' <<<"$page")"
done
grep -q 'data-vm="web1" data-phase="running" data-owner="haven-h3"' <<<"$page" ||
	fail "the page does not show web1 running on haven-h3: $(grep -o '<tr data-vm[^>]*>' <<<"$page")"
grep -q '<p id="summary">quorate, 3 members, 1 VMs' <<<"$page" || fail "no quorate summary: $(grep -o '<p id="summary">[^<]*' <<<"$page")"
echo "hosts and VMs as the page shows them:"
grep -o '<tr data-\(host\|vm\)[^>]*>' <<<"$page"

step "from h2: h1's metrics answer, with its iSCSI path; its page and JSON want a login"
path_up() {
	out=$("$LAB" exec h2 curl -sS --max-time 5 "http://$mgmt:9731/metrics" 2>&1) || true
	grep -q '^haven_iscsi_path_up{pool="[^"]*",portal="[^"]*"} 1$' <<<"$out"
}
wait_for 20 "h1's iSCSI path up in its metrics" path_up
grep -q '^haven_up' <<<"$out" || fail "h1's metrics at $mgmt:9731 do not answer h2: $(head -c 300 <<<"$out")"
grep -E '^haven_iscsi_path_(up|probe_failures_total|latency_seconds_(count|sum))' <<<"$out"
grep -qE '^haven_iscsi_path_latency_seconds_count\{pool="[^"]*",portal="[^"]*"\} [1-9]' <<<"$out" ||
	fail "h1's metrics have no path latency"
if command -v promtool >/dev/null; then
	promtool check metrics <<<"$out" >&2 || fail "promtool finds problems in h1's metrics"
fi
for path in / /api/status; do
	code=$("$LAB" exec h2 curl -s -o "$TMP/refused" -w '%{http_code}' --max-time 5 "http://$mgmt:9731$path")
	[[ $code == 401 ]] || fail "h1's $path answered h2 with $code, not 401"
	grep -q "havenctl status login" "$TMP/refused" || fail "h1's 401 does not say how to log in"
done
grep -q 'id="login-needed"' <<<"$(chrome_at h2 "http://$mgmt:9731/" --dump-dom)" ||
	fail "Chromium on h2 got no login page from h1"
echo "h2 gets h1's /metrics; / and /api/status: 401 with how to log in"
url=$(ctl h1 status login)
[[ $url == http://*/login\?code=l.0.admin.* ]] || fail "status login printed $url"
url="http://$mgmt:9731/${url#http://*/}"
page=$(chrome_at h2 "$url" --dump-dom)
grep -q 'data-vm="web1" data-phase="running" data-owner="haven-h3"' <<<"$page" ||
	fail "after the login, h2's Chromium does not see web1 on h1's page: $(head -c 600 <<<"$page")"
grep -q 'data-vm="web1"' <<<"$(chrome_at h2 "http://$mgmt:9731/" --dump-dom)" ||
	fail "the session cookie did not last to the next visit"
code=$("$LAB" exec h2 curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url")
[[ $code == 401 ]] || fail "the login code worked twice ($code)"
echo "logged in from h2 with havenctl status login: the page shows web1; the code works once"

step "lab kill haven-h3: the page shows the failover as it happens"
"$LAB" kill haven-h3 >/dev/null
seen_lost=0 recovered=
for ((i = 0; i < 20; i++)); do
	page=$(dom)
	grep -q 'data-host="haven-h3" data-membership="lost"' <<<"$page" && seen_lost=1
	recovered=$(sed -n 's/.*id="timeline" data-lost="host 3" data-recovered="\([^"]*\)".*/\1/p' <<<"$page")
	[[ $recovered == *"vm web1"* ]] && break
	sleep 0.5
done
echo "timeline as the page drew it:"
grep -o '<table id="timeline"[^>]*>' <<<"$page" || true
sed 's/<tr>/\n<tr>/g' <<<"$page" | sed -n '/id="timeline"/,/<\/table>/p' | grep -o '<td>[^<]*</td>' | paste -sd' ' | sed 's/<\/\?td>//g' | fold -w 160
((seen_lost)) || fail "the page never showed haven-h3 lost"
[[ $recovered == *"vm web1"* ]] || fail "the page's timeline never showed web1 running again"
owner=$(vm_field h1 web1 owner)
grep -q "data-vm=\"web1\" data-phase=\"running\" data-owner=\"haven-h$owner\"" <<<"$page" ||
	fail "the page does not show web1 running on haven-h$owner"
shot=$BUILD/lab-status.png
rm -f "$shot"
chrome h1 --window-size=1280,1000 --screenshot="$TMP/status.png" >/dev/null || true
[[ -s $TMP/status.png ]] || fail "no screenshot"
cp "$TMP/status.png" "$shot"
echo "screenshot: $shot ($(stat -c %s "$shot") bytes)"
echo "PASS"
