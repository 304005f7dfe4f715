#!/bin/bash
# test-lab-membership.sh — havend's corosync client (clusterd/membership.c)
# against real corosync, through tests/cluster/haven-membership-probe on
# every host: all connect and see members 1,2,3 quorate; messages from two
# hosts arrive everywhere in one agreed order; kill h3 → h1 and h2 see it
# leave and stay quorate; cut h1 mgmt → h1 not quorate; start h3, heal →
# quorate with 3; corosync on h2 SIGKILLed and restarted → h2's probe
# reports disconnected, reconnects by itself and sees 1,2,3 quorate again.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(cd "$(dirname "$0")" && pwd)/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
PROBE=$BUILD/tests/cluster/haven-membership-probe
STATE=${HAVEN_LAB_DIR:-/run/haven-lab}

fail() { echo "FAIL: $*" >&2; show_logs >&2; exit 1; }
step() { echo "== $*"; }
now_ms() { date +%s%3N; }

[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root"; exit 77; }
[[ -x $PROBE ]] || { echo "FAIL: $PROBE not built" >&2; exit 1; }
if "$LAB" status >/dev/null 2>&1; then
	echo "FAIL: a lab is already up; run '$LAB down' first (not touching it)" >&2
	exit 1
fi
# The probes' logs survive the lab for a look afterwards.
KEEP=${TMPDIR:-/tmp}/haven-lab-membership.last
rm -rf "$KEEP"
cleanup() {
	local h
	mkdir -p "$KEEP"
	for h in h1 h2 h3; do
		cp "$STATE/$h/var-log/probe.json" "$KEEP/$h.json" 2>/dev/null || true
		cp "$STATE/$h/var-log/probe.err" "$KEEP/$h.err" 2>/dev/null || true
	done
	"$LAB" down >/dev/null || echo "WARNING: lab down failed" >&2
}
trap cleanup EXIT
T0=$(now_ms)

# The probe's output as seen from the machine (the host's /var/log).
log() { echo "$STATE/$1/var-log/probe.json"; }
show_logs() {
	local h
	for h in h1 h2 h3; do
		[[ -f $(log $h) ]] || continue
		echo "--- $h probe.json (last 15)"
		tail -15 "$(log $h)"
		echo "--- $h probe.err"
		tail -5 "$STATE/$h/var-log/probe.err" 2>/dev/null || true
	done
}

# probe_start HOST — the long-running probe, detached inside the host.
probe_start() {
	"$LAB" exec "$1" setsid -f sh -c \
		'echo $$ >/run/probe.pid; exec "$0" >/var/log/probe.json 2>/var/log/probe.err' \
		"$PROBE" </dev/null
}

# events HOST — the host's events as one JSON array.
events() { jq -s -c . "$(log "$1")" 2>/dev/null || echo '[]'; }

# wait_for HOST TIMEOUT_S WHAT JQ — poll until JQ (over the array of the
# host's events) is true; print the time it became true.
wait_for() {
	local host=$1 timeout=$2 what=$3 filter=$4 t0
	t0=$(now_ms)
	while :; do
		if events "$host" | jq -e "$filter" >/dev/null 2>&1; then
			return 0
		fi
		(( $(now_ms) - t0 < timeout * 1000 )) ||
			fail "$host: timed out after $timeout s waiting for: $what"
		sleep 0.1
	done
}

LAST_MEMBERSHIP='[.[] | select(.event=="membership")] | last'
LAST_QUORUM='[.[] | select(.event=="quorum")] | last'
# members_are "1,2,3" — the last membership and quorum events both say so,
# quorate.
members_are() {
	echo "($LAST_MEMBERSHIP | (.members | sort) == [$1]) and
	      ($LAST_QUORUM | .quorate == true and (.members | sort) == [$1])"
}

step "lab up with 3 hosts; a probe on each"
"$LAB" up --hosts 3
for h in h1 h2 h3; do probe_start $h; done
for h in h1 h2 h3; do
	n=${h#h}
	wait_for $h 15 "connected as node $n" \
		"any(.[]; .event==\"connected\" and .node_id==$n)"
	wait_for $h 15 "members 1,2,3 quorate" "$(members_are 1,2,3)"
done
echo "all three probes connected, members [1,2,3], quorate"

step "messages from h1 and h2 at once arrive everywhere in the same order"
sends_a=() sends_b=()
for i in $(seq 1 20); do sends_a+=(--send "a$i"); sends_b+=(--send "b$i"); done
"$LAB" exec h1 "$PROBE" "${sends_a[@]}" --send-every 20 --exit-after 2 >/dev/null 2>&1 &
s1=$!
"$LAB" exec h2 "$PROBE" "${sends_b[@]}" --send-every 20 --exit-after 2 >/dev/null 2>&1 &
s2=$!
wait $s1 || fail "the sender on h1 failed"
wait $s2 || fail "the sender on h2 failed"
MSGS='[.[] | select(.event=="message") | .text]'
for h in h1 h2 h3; do
	wait_for $h 10 "40 messages" "($MSGS | length) >= 40"
done
order1=$(events h1 | jq -c "$MSGS")
for h in h2 h3; do
	[[ $(events $h | jq -c "$MSGS") == "$order1" ]] ||
		fail "$h saw another order: $(events $h | jq -c "$MSGS") vs h1 $order1"
done
# Each sender's own messages in the order it sent them.
events h1 | jq -e "$MSGS | ([.[] | select(startswith(\"a\"))] == [range(1;21) | \"a\\(.)\"]) and
	([.[] | select(startswith(\"b\"))] == [range(1;21) | \"b\\(.)\"])" >/dev/null ||
	fail "a sender's messages are out of order or missing: $order1"
events h1 | jq -e '[.[] | select(.event=="message") | .from] | (index(1) != null) and (index(2) != null)' >/dev/null ||
	fail "messages do not name their sender nodes"
interleaved=$(jq -r '[.[] | .[0:1]] | [range(1;length) as $i | select(.[$i] != .[$i-1])] | length' <<<"$order1")
echo "40 messages (20 each from h1 and h2) in one agreed order on all hosts ($interleaved switches between senders)"
# The senders have left again.
for h in h1 h2 h3; do
	wait_for $h 10 "the senders left" "$(members_are 1,2,3)"
done

step "kill haven-h3: h1 and h2 see it leave and stay quorate"
t_kill=$(now_ms)
"$LAB" kill haven-h3
for h in h1 h2; do
	wait_for $h 15 "node 3 left, members 1,2 quorate" \
		"($LAST_MEMBERSHIP | .left == [3]) and $(members_are 1,2)"
done
t_left=$(events h1 | jq -r "[.[] | select(.event==\"membership\" and .left==[3])] | last | .ms")
if events h1 | jq -e "any(.[]; .event==\"quorum\" and .quorate==false and .ms >= $t_kill)" >/dev/null; then
	fail "h1 lost quorum when h3 died"
fi
kill_s=$(awk -v a="$t_left" -v b="$t_kill" 'BEGIN { printf "%.2f", (a - b) / 1000 }')
echo "RESULT: killed haven-h3 left haven-h1's CPG membership after $kill_s s"

step "cut haven-h1 mgmt: h1 is not quorate"
t_cut=$(now_ms)
"$LAB" cut haven-h1 mgmt
wait_for h1 15 "not quorate" "$LAST_QUORUM | .quorate == false"
wait_for h1 15 "alone" "$LAST_MEMBERSHIP | .members == [1]"
t_inq=$(events h1 | jq -r "$LAST_QUORUM | .ms")
cut_s=$(awk -v a="$t_inq" -v b="$t_cut" 'BEGIN { printf "%.2f", (a - b) / 1000 }')
echo "RESULT: haven-h1 reported not quorate $cut_s s after its mgmt link was cut"

step "start haven-h3 and its probe, heal h1: quorate with 3 everywhere"
"$LAB" start haven-h3
probe_start h3
"$LAB" heal haven-h1 mgmt
for h in h1 h2 h3; do
	wait_for $h 20 "members 1,2,3 quorate" "$(members_are 1,2,3)"
done
echo "all three quorate with members [1,2,3] again"

step "restart corosync on h2: its probe reconnects by itself"
pidfile=$STATE/pids/h2.corosync.pid
cpid=$(cat "$pidfile")
[[ $(cat "/proc/$cpid/comm") == corosync ]] || fail "pid $cpid from $pidfile is not corosync"
probe_pid=$("$LAB" exec h2 cat /run/probe.pid)
before=$(events h2 | jq 'length')
t_restart=$(now_ms)
kill -KILL "$cpid"
for _ in $(seq 1 50); do [[ -d /proc/$cpid ]] || break; sleep 0.1; done
[[ ! -d /proc/$cpid ]] || fail "corosync $cpid did not die"
wait_for h2 10 "disconnected" ".[$before:] | any(.[]; .event==\"disconnected\")"
# Started the way the lab's start_daemon does it (host_services_start).
rm -f "$pidfile"
setsid -f sh -c 'echo $$ >"$1.tmp" && mv "$1.tmp" "$1"; shift; exec "$@"' sh "$pidfile" \
	nsenter --net=/run/netns/haven-h2 --mount="$STATE/h2.mnt" -- \
	corosync -f -c /etc/corosync/corosync.conf \
	</dev/null >>"$STATE/h2/var-log/corosync.out" 2>&1
wait_for h2 20 "connected again" \
	"[.[$before:][] | .event] | index(\"disconnected\") as \$d |
	 \$d != null and (.[\$d:] | index(\"connected\") != null)"
wait_for h2 20 "members 1,2,3 quorate after the restart" \
	"(.[$before:] | any(.[]; .event==\"connected\")) and $(members_are 1,2,3)"
[[ -d /proc/$probe_pid ]] || fail "the probe on h2 ($probe_pid) did not survive"
for h in h1 h3; do
	wait_for $h 20 "members 1,2,3 quorate" "$(members_are 1,2,3)"
done
t_back=$(events h2 | jq -r "$LAST_QUORUM | .ms")
echo "h2's probe (pid $probe_pid): disconnected, reconnected, quorate with [1,2,3] $(awk -v a="$t_back" -v b="$t_restart" 'BEGIN { printf "%.2f", (a - b) / 1000 }') s after corosync was killed"

for h in h1 h2 h3; do
	if grep -qi 'fatal' "$STATE/$h/var-log/probe.err" 2>/dev/null; then
		fail "$h's probe failed: $(grep -i fatal "$STATE/$h/var-log/probe.err")"
	fi
done
echo "PASS: membership ($(awk -v a="$(now_ms)" -v b="$T0" 'BEGIN { printf "%.1f", (a - b) / 1000 }') s)"
