#!/bin/bash
# test-lab-rejoin.sh — a host that rejoins while the others are still
# fencing it (found by tests/chaos/run: the coordinator h1 came back during
# its own fencing, adopted "node 1 lost, fence pending" and fenced itself
# every 15 s for good, its VM stuck in recovering). Made deterministic:
#  1. web1 on h1; h2's and h3's storage links cut (their fencing of h1 then
#     hangs), then h1's management link cut: h1 stops web1 itself, h2 marks
#     node 1 lost and starts fencing it.
#  2. h1's link healed while the fence still hangs: h1 merges, is the lowest
#     node id (the coordinator) and finds itself lost and not fenced: its
#     havend stops (it never fences itself).
#  3. h2's and h3's storage healed: h2 fences node 1, web1 runs on h2 or h3.
#  4. havend started again on h1: it rejoins and is unfenced; web1 runs once,
#     its journal intact, the auditor quiet.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
CHECK=$(realpath "${HAVEN_JOURNAL_CHECK:?set HAVEN_JOURNAL_CHECK}")
NHOSTS=3

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"

lab_test_begin rejoin

step "3 hosts; web1 (journal on a LUN) on h1"
lab_cluster 3
mkdir -p "$TMP/audit"
"$AUDITOR" start "$TMP/audit"
ctl h1 vm create web1 --memory 64M --volume web1-disk --prefer 1 --stop-timeout 3 \
	--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100 journal=on" >/dev/null
ctl h1 vm start web1 >/dev/null
wait_for 60 "web1 running" phase_is h1 web1 running
[[ $(vm_field h1 web1 owner) == 1 ]] || fail "web1 is not on h1"
uuid=$(vm_field h1 web1 uuid)
fence_of() { ctl "$1" --json node list | jq -r ".nodes[] | select(.node_id == $2) | .fence"; }

step "1. h2's and h3's storage cut, then h1's management: node 1 lost, its fencing hangs"
"$LAB" cut haven-h2 stor >/dev/null
"$LAB" cut haven-h3 stor >/dev/null
"$LAB" cut haven-h1 mgmt >/dev/null
no_web1_on_h1() { [[ -z $(qemu_pid h1 "$uuid") ]]; }
wait_for 20 "h1 to stop web1 itself" no_web1_on_h1
fencing_started() { "$LAB" exec h2 grep -q "fencing node 1 (haven-h1)" /var/log/havend.log; }
wait_for 20 "h2 to start fencing node 1" fencing_started
[[ $(fence_of h2 1) != fenced ]] || fail "node 1 fenced although h2 cannot reach the SAN"

step "2. h1's link healed while its fence hangs: h1 finds itself lost and stops havend"
"$LAB" heal haven-h1 mgmt >/dev/null
left() { "$LAB" exec h1 grep -q "this host (node 1) was found lost and not yet fenced" /var/log/havend.log &&
	! "$LAB" exec h1 sh -c 'kill -0 "$(cat /run/havend.pid)"' 2>/dev/null; }
wait_for 30 "h1's havend to stop" left
"$LAB" exec h1 grep -h "fencing node 1" /var/log/havend.log &&
	fail "h1 tried to fence itself"
echo "h1 left: $("$LAB" exec h1 grep -h 'was found lost' /var/log/havend.log | tail -1)"

step "3. h2's and h3's storage healed: node 1 fenced, web1 runs on h2 or h3"
"$LAB" heal haven-h2 stor >/dev/null
"$LAB" heal haven-h3 stor >/dev/null
fenced1() { [[ $(fence_of h2 1) == fenced ]]; }
wait_for 40 "node 1 fenced" fenced1
wait_for 40 "web1 running elsewhere" runs_elsewhere web1 1 h2

step "4. havend started again on h1: it rejoins, is unfenced; web1 runs once"
start_havend h1
wait_for 30 "h1 back" members_are h2 '[true,[1,2,3]]'
unfenced1() { [[ $(fence_of h2 1) == none ]]; }
wait_for 30 "h1 unfenced" unfenced1
owner=$(vm_field h2 web1 owner)
[[ $owner != 1 && -n $(qemu_pid "h$owner" "$uuid") && -z $(qemu_pid h1 "$uuid") ]] ||
	fail "web1 does not run once on h2 or h3 (owner $owner)"
echo "web1 runs on h$owner; h1 is a member again, unfenced"

step "every acknowledged journal record is on the LUN; the auditor saw no VM twice"
journal_ok "h$owner"
"$AUDITOR" check "$TMP/audit" || fail "the auditor saw a VM on two hosts at once"
echo "PASS"
