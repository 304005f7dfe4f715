#!/bin/bash
# test-lab-fencing.sh — fence levels and the coordinator, on 5 lab hosts
# with simulated BMCs (ipmi_sim) and the real fence_ipmilan; the auditor on:
#  1. level 1 = fence_ipmilan: a killed owner is fenced by its BMC and its
#     VM runs on a survivor; `fence history` says so.
#  2. the agent level fails (the coordinator's BMC password is wrong) →
#     the storage level fences; the event names both.
#  3. every level fails (the coordinator also lost its storage NIC) → the
#     VM stays down and the event says why; once the storage is back the
#     retry fences and the VM runs.
#  4. the coordinator is killed in the middle of a failover → the next
#     coordinator fences both hosts and the VM runs.
#  5. `havenctl node fence` of a live host: its havend stops its VMs and
#     itself, the BMC powers it off, its VM recovers.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
CHECK=$(realpath "${HAVEN_JOURNAL_CHECK:?set HAVEN_JOURNAL_CHECK}")
NHOSTS=5

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"

lab_test_begin fencing

FENCE_CONF='
[fence:ipmi]
agent = fence_ipmilan
level = 1
ip = 10.77.1.10{node}
ipport = 623
username = haven
password_file = /etc/haven/bmc.password
lanplus = 1
cipher = 3
power_wait = 0

[fence:storage]
agent = storage
level = 2'

step "5 hosts with BMCs; levels: 1 fence_ipmilan, 2 storage"
LAB_UP_ARGS=--bmc lab_cluster 5 "$FENCE_CONF"
ctl h1 fence validate
mkdir -p "$TMP/audit"
"$AUDITOR" start "$TMP/audit"
ctl h1 vm create web1 --memory 64M --volume web1-disk --prefer 5 --prefer 4 --stop-timeout 3 \
	--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100 journal=on"
ctl h1 vm start web1 >/dev/null
wait_for 60 "web1 running" phase_is h1 web1 running
uuid=$(vm_field h1 web1 uuid)
[[ $(vm_field h1 web1 owner) == 5 ]] || fail "web1 is not on host 5"

event_text() { ctl h1 --json events | jq -r -s --arg s "$1" 'map(select(.subject == $s)) | last | .text'; }

step "1. lab kill haven-h5: fenced by its BMC (fence_ipmilan); web1 runs elsewhere"
t0=$(now)
"$LAB" kill haven-h5 >/dev/null
wait_for 60 "web1 running elsewhere" runs_elsewhere web1 5 h1
echo "web1 on node $(vm_field h1 web1 owner) after $(since "$t0") s"
text=$(event_text "host 5")
echo "host 5: $text"
[[ $text == "fenced by level ipmi"* ]] || fail "host 5 was not fenced by the ipmi level: $text"
ctl h1 fence history | tail -2
"$LAB" status --json | jq -e '.hosts[] | select(.name == "haven-h5") | .state != "up"' >/dev/null ||
	echo "note: lab status shows h5 as $("$LAB" status --json | jq -c '.hosts[] | select(.name == "haven-h5") | .state')"
"$LAB" start haven-h5 >/dev/null
start_havend h5
wait_for 30 "h5 back" members_are h1 '[true,[1,2,3,4,5]]'

step "2. the agent level fails (wrong BMC password on the coordinator): the storage level fences"
"$LAB" exec h1 sh -c 'echo wrongpassword >/etc/haven/wrong.password; chmod 600 /etc/haven/wrong.password;
	sed -i "s|^password_file = .*|password_file = /etc/haven/wrong.password|" /etc/haven/haven.conf'
"$LAB" exec h1 sh -c 'p=$(cat /run/havend.pid); kill "$p"; while kill -0 "$p" 2>/dev/null; do sleep 0.1; done'
start_havend h1
wait_for 30 "h1 back" members_are h1 '[true,[1,2,3,4,5]]'
victim=$(vm_field h1 web1 owner)
t0=$(now)
"$LAB" kill "haven-h$victim" >/dev/null
wait_for 90 "web1 running elsewhere" runs_elsewhere web1 "$victim" h1
echo "web1 on node $(vm_field h1 web1 owner) after $(since "$t0") s"
text=$(event_text "host $victim")
echo "host $victim: $text"
[[ $text == "fenced by level storage"* && $text == *"ipmi"* ]] ||
	fail "expected storage after a failed ipmi level: $text"
"$LAB" start "haven-h$victim" >/dev/null
start_havend "h$victim"
wait_for 30 "h$victim back" members_are h1 '[true,[1,2,3,4,5]]'

step "3. every level fails (and the coordinator's storage NIC is cut): web1 stays down, the event says why"
victim=$(vm_field h1 web1 owner)
[[ $victim != 1 ]] || fail "web1 landed on the coordinator; the test needs it elsewhere"
"$LAB" cut haven-h1 storage >/dev/null
t0=$(now)
"$LAB" kill "haven-h$victim" >/dev/null
failed_event() { [[ $(event_text "host $victim") == "fencing failed"* ]]; }
wait_for 90 "the fencing to fail" failed_event
text=$(event_text "host $victim")
echo "host $victim: $text"
[[ $text == *"ipmi"* && $text == *"storage"* ]] || fail "the failure does not name both levels: $text"
phase_is h1 web1 recovering || fail "web1 is $(vm_field h1 web1 phase), not recovering, while its host is not fenced"
"$LAB" heal haven-h1 storage >/dev/null
wait_for 60 "web1 running after the retry" runs_elsewhere web1 "$victim" h1
echo "after healing h1's storage NIC: $(event_text "host $victim") ($(since "$t0") s after the kill)"
"$LAB" start "haven-h$victim" >/dev/null
start_havend "h$victim"
wait_for 30 "h$victim back" members_are h1 '[true,[1,2,3,4,5]]'

step "4. the coordinator (h1) killed in the middle of a failover: h2 finishes it"
# web1 on a host other than h1 and h2.
owner=$(vm_field h2 web1 owner)
[[ $owner != 1 && $owner != 2 ]] || fail "web1 is on $owner; the test needs it on 3..5"
seen=$("$LAB" exec h1 grep -c "fencing node $owner" /var/log/havend.log || true)
t0=$(now)
"$LAB" kill "haven-h$owner" >/dev/null
fencing_started() { (( $("$LAB" exec h1 grep -c "fencing node $owner" /var/log/havend.log || true) > seen )); }
wait_for 30 "h1 to start fencing node $owner" fencing_started
"$LAB" kill haven-h1 >/dev/null
echo "killed the coordinator h1 while it fenced node $owner ($(since "$t0") s after the first kill)"
wait_for 90 "web1 running on a survivor" runs_elsewhere web1 "$owner" h2
new=$(vm_field h2 web1 owner)
[[ $new != 1 ]] || fail "web1 on the dead coordinator"
echo "web1 on node $new $(since "$t0") s after the first kill"
ctl h2 fence history | tail -3
[[ $(ctl h2 --json node list | jq -r '.nodes[] | select(.node_id == 1) | .fence') == fenced ]] ||
	fail "the old coordinator was not fenced"
for h in 1 "$owner"; do
	"$LAB" start "haven-h$h" >/dev/null
	start_havend "h$h"
done
wait_for 40 "all back" members_are h2 '[true,[1,2,3,4,5]]'

step "5. havenctl node fence of a live host: it stops its VMs and itself; its VM recovers"
owner=$(vm_field h1 web1 owner)
[[ $owner != 1 ]] || fail "web1 is on h1"
t0=$(now)
ctl h1 node fence "haven-h$owner"
wait_for 60 "web1 running elsewhere" runs_elsewhere web1 "$owner" h1
echo "web1 on node $(vm_field h1 web1 owner) $(since "$t0") s after node fence"
[[ -z $(qemu_pid "h$owner" "$uuid") ]] || fail "the fenced host still runs web1"
echo "host $owner: $(event_text "host $owner")"

step "the auditor saw no VM twice; every acknowledged record is on the LUN"
"$AUDITOR" check "$TMP/audit" || fail "the auditor saw a VM on two hosts at once"
journal_ok h1
echo "PASS"
