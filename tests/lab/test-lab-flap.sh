#!/bin/bash
# test-lab-flap.sh — a flapping management link (issue 21), 3 lab hosts,
# Haven's corosync timing (token T = 1500 ms, no token_coefficient:
# config/corosync.h), the never-twice auditor on, the journal checked:
#  1. the owner's management link cut for 400 ms every 2 s for 30 s:
#     shorter than knet's ping timeout (T/2) less its ping interval (T/4),
#     so knet never even marks the link down, and a token is never lost:
#     no host is lost, nothing is fenced, the VM runs on with the same boot.
#  2. the owner's management link cut for 5 s, up for 8 s, three times:
#     the first cut is longer than detection (2.2 T = 3.3 s), so the owner
#     is lost, stops its VM itself, is fenced, and the VM runs elsewhere
#     once; the later cuts find the host without VMs and move nothing. It
#     rejoins after each heal; the VM never runs twice.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
CHECK=$(realpath "${HAVEN_JOURNAL_CHECK:?set HAVEN_JOURNAL_CHECK}")
NHOSTS=3

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"

lab_test_begin flap

# lost_events ASK SEQ — how many hosts the state marked lost after SEQ.
lost_events() {
	ctl "$1" --json events | jq -s --argjson a "$2" \
		'map(select(.seq > $a and (.subject | startswith("host ")) and (.text | test("^lost")))) | length'
}

step "3 hosts, havend everywhere; web1 (journal on a LUN) prefers h3"
lab_cluster 3
mkdir -p "$TMP/audit"
"$AUDITOR" start "$TMP/audit"
ctl h1 vm create web1 --memory 64M --volume web1-disk --prefer 3 --stop-timeout 3 \
	--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100 journal=on" >/dev/null
ctl h1 vm start web1 >/dev/null
wait_for 60 "web1 running" phase_is h1 web1 running
[[ $(vm_field h1 web1 owner) == 3 ]] || fail "web1 is not on its preferred host 3"
has_ticks() { [[ -n $(ticks h3 web1) ]]; }
wait_for 30 "the guest ticking on h3" has_ticks
boot=$(boot_of h3 web1)
token=$("$LAB" exec h1 corosync-cmapctl -g runtime.config.totem.token | awk '{ print $NF }')
echo "corosync's token as it runs: $token ms"
[[ $token == 1500 ]] || fail "corosync runs with a token of $token ms, not Haven's 1500"

step "1. h3's management link cut 400 ms every 2 s for 30 s: nobody is lost"
seq0=$(ctl h1 --json events | jq -s 'map(.seq) | max // 0')
tick0=$(last_tick h3 web1)
for i in $(seq 15); do
	"$LAB" cut haven-h3 mgmt >/dev/null
	sleep 0.4
	"$LAB" heal haven-h3 mgmt >/dev/null
	sleep 1.6
done
sleep 4
n=$(lost_events h1 "$seq0")
(( n == 0 )) || fail "$n hosts marked lost by 400 ms cuts"
[[ $(vm_field h1 web1 owner) == 3 && $(vm_field h1 web1 phase) == running ]] ||
	fail "web1 moved: $(vm_field h1 web1 phase) on $(vm_field h1 web1 owner)"
[[ $(boot_of h3 web1) == "$boot" ]] || fail "web1 booted again on h3"
tick1=$(last_tick h3 web1)
(( tick1 > tick0 + 250 )) || fail "the guest stalled: tick $tick0 -> $tick1 in 34 s"
members_are h1 '[true,[1,2,3]]' || fail "not all three members after the short cuts"
echo "15 cuts of 400 ms: no host lost, web1 ticked from $tick0 to $tick1 on h3, same boot"

step "2. h3's management link cut 5 s, up 8 s, three times: web1 moves once, never twice"
seq0=$(ctl h1 --json events | jq -s 'map(.seq) | max // 0')
t0=$(now)
for i in 1 2 3; do
	"$LAB" cut haven-h3 mgmt >/dev/null
	sleep 5
	"$LAB" heal haven-h3 mgmt >/dev/null
	if ((i == 1)); then
		wait_for 20 "web1 running elsewhere" runs_elsewhere web1 3 h1
		owner=$(vm_field h1 web1 owner)
		echo "web1 runs on node $owner $(since "$t0") s after the first cut"
	fi
	wait_for 30 "h3 back after cut $i" members_are h1 '[true,[1,2,3]]'
	sleep 3
done
[[ $(vm_field h1 web1 owner) == "$owner" && $(vm_field h1 web1 phase) == running ]] ||
	fail "web1 moved again: $(vm_field h1 web1 phase) on $(vm_field h1 web1 owner)"
moves=$(ctl h1 --json events | jq -s --argjson a "$seq0" \
	'map(select(.seq > $a and .subject == "vm web1" and (.text | test("^starting on host")))) | length')
(( moves == 1 )) || fail "web1 was started $moves times during the flaps"
ctl h1 events | grep -E 'host 3|vm web1' | tail -8

step "every acknowledged journal record is on the LUN; the auditor saw no VM twice"
journal_ok "h$owner"
"$AUDITOR" check "$TMP/audit" || fail "the auditor saw a VM on two hosts at once"
echo "PASS"
