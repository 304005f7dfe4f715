#!/bin/bash
# test-lab-storage-move-coordinator.sh — the coordinator's own VM moves when
# the coordinator alone lost its storage (issue 20): web1 (journal on) runs
# on h1, the coordinator (lowest node id); `lab cut h1 storage` for 70 s →
# h1 reports san unreachable, h2 and h3 still reach it; after the storage
# timeout (30 s) h1 orders h2 or h3 to fence it off web1's volume (it
# cannot through a pool it lost), that member preempts h1's key and
# reports, h1 fails web1 and it starts on another host. h1's key is gone
# from the LUN while the cut lasts and after `lab heal h1 storage`, h1
# does not run web1 again, every acknowledged journal record is on the
# LUN, and the auditor saw no VM on two hosts.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
CHECK=$(realpath "${HAVEN_JOURNAL_CHECK:?set HAVEN_JOURNAL_CHECK}")
NHOSTS=3

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"

lab_test_begin storage-move-coordinator

reach_is() {
	[[ $(status "$1" | jq -r --argjson n "$2" \
		'.storage[] | select(.node_id == $n) | .pools[] | select(.pool == "san") | .reachable') == "$3" ]]
}
# key_absent ASK_HOST NODE — NODE's PR key is not registered on web1's LUN
# (read from ASK_HOST, which must reach the pool).
key_absent() {
	local keys
	keys=$(ctl "$1" --json pr keys "$URL") || fail "pr keys from $1 failed"
	echo "keys on the LUN (from $1): $(jq -c '.keys' <<<"$keys")"
	[[ $(jq -r --arg n "$(printf '%08x' "$2")" '.keys | map(select(endswith($n))) | length' <<<"$keys") == 0 ]]
}

step "3 hosts; web1 (journal on its LUN) running on h1, the coordinator"
lab_cluster 3
mkdir -p "$TMP/audit"
"$AUDITOR" start "$TMP/audit"
wait_for 30 "h1 to h3 members, quorate" members_are h2 '[true,[1,2,3]]'
ctl h1 vm create web1 --memory 64M --volume web1-disk --stop-timeout 3 --prefer 1 \
	--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100 journal=on" >/dev/null
ctl h1 vm start web1 >/dev/null
wait_for 60 "web1 running" phase_is h2 web1 running
[[ $(vm_field h2 web1 owner) == 1 ]] || fail "web1 runs on $(vm_field h2 web1 owner), not h1"
uuid=$(vm_field h2 web1 uuid)
gen=$(vm_field h2 web1 generation)
has_ticks() { [[ -n $(ticks h1 web1) ]]; }
wait_for 30 "web1 ticking" has_ticks
all_reach() { reach_is h2 1 true && reach_is h2 2 true && reach_is h2 3 true; }
wait_for 20 "every host reporting san reachable" all_reach
key_absent h2 1 && fail "h1's key is not on web1's LUN before the cut"

step "lab cut h1 storage: after the storage timeout web1 runs elsewhere"
t0=$(now)
"$LAB" cut h1 storage >/dev/null
wait_for 15 "h1 reporting san unreachable" reach_is h2 1 false
echo "RESULT: cut -> h1's san unreachable in h2's replica after $(since "$t0") s"
# Not before the timeout: 20 s after the cut web1 is still h1's.
sleep 20
[[ $(vm_field h2 web1 owner) == 1 ]] || fail "web1 left h1 before the storage timeout ($(since "$t0") s)"
moved() { runs_elsewhere web1 1 h2; }
wait_for 45 "web1 running on another host" moved
owner=$(vm_field h2 web1 owner)
echo "RESULT: cut -> web1 running on h$owner after $(since "$t0") s (storage timeout 30 s)"
ticks_there() { [[ -n $(ticks "h$owner" web1) ]]; }
wait_for 30 "web1 ticking on h$owner" ticks_there
(( $(vm_field h2 web1 generation) > gen )) || fail "web1's generation did not move on"
events=$(ctl h2 events)
grep -E 'vm web1 .*host 1 lost pool san: host [23] ordered to fence it off the VM.s volumes \(attempt [0-9]+\)' <<<"$events" ||
	fail "no event says h1 ordered a member to fence it: $(tail -12 <<<"$events")"
grep -E 'vm web1 .*host [23] fenced host 1 off the VM.s volumes' <<<"$events" ||
	fail "no event says a member fenced h1: $(tail -12 <<<"$events")"
grep -E 'vm web1 .*host 1 \(the coordinator\) lost pool san .* fenced it off its volumes: restarting elsewhere' <<<"$events" ||
	fail "no event says why web1 left h1: $(tail -12 <<<"$events")"
# The key went before web1 started elsewhere: read while h1 is still cut.
key_absent "h$owner" 1 || fail "h1's key is still registered on web1's LUN"
no_qemu_on_h1() { [[ -z $(qemu_pid h1 "$uuid") ]]; }
wait_for 15 "h1's QEMU for web1 gone" no_qemu_on_h1

step "the cut lasts 70 s; lab heal h1 storage: h1 does not run web1 too"
while awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { exit !(b - a < 70) }'; do sleep 0.5; done
"$LAB" heal h1 storage >/dev/null
wait_for 15 "h1 reporting san reachable again" reach_is h2 1 true
sleep 5
[[ -z $(qemu_pid h1 "$uuid") ]] || fail "h1 runs web1 again after its storage came back"
[[ $(vm_field h2 web1 owner) == "$owner" ]] && phase_is h2 web1 running ||
	fail "web1 is $(vm_field h2 web1 phase) on $(vm_field h2 web1 owner) after the heal"
key_absent h1 1 || fail "h1's key is registered on web1's LUN again"

step "journal intact; the auditor saw no VM twice"
ctl h2 vm stop web1 >/dev/null
wait_for 30 "web1 stopped" phase_is h2 web1 stopped
journal_ok h2
"$AUDITOR" check "$TMP/audit" || fail "the auditor saw a VM on two hosts at once"
echo "PASS"
