#!/bin/bash
# storage-cut-stays-paused.sh — found by tests/chaos/run (seed 14 --skip
# lun-offline, fault 9: cut-storage h1 for 7.7 s): the storage link of the
# host running a VM cut for longer than the worker's iSCSI timeout (here
# 12 s) fails a guest write ("the storage target did not answer in time"),
# QEMU pauses the VM (werror=stop; worker "PAUSED", havend "vm web1:
# paused"), and after the link is healed nothing resumes it: it stays in
# phase paused, desired running, for good (the host stays quorate; it is not
# fenced). Cuts of 2-6.6 s were ridden out in every campaign. Expected: the
# VM runs again once its storage answers (resumed in place, or restarted).
# Exit 0 when it runs again within 30 s of the heal; 1 (FAIL) otherwise; 77
# when not root. Run under `flock /run/haven-lab.lock`.
set -euo pipefail

LAB=$(dirname "$0")/../../lab/lab
BUILD=$(realpath "${HAVEN_BUILD:-$(dirname "$0")/../../../build/gcc}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:-$BUILD/tests/guest/haven-guest.elf}")
CHECK=$(realpath "${HAVEN_JOURNAL_CHECK:-$BUILD/tests/guest/haven-journal-check}")
NHOSTS=3
CUT_S=${CUT_S:-12}

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/../../lab/failover-lib.sh"

lab_test_begin storage-cut

step "3 hosts; web1 (journal on its LUN) running"
lab_cluster 3
ctl h1 vm create web1 --memory 64M --volume web1-disk --stop-timeout 3 \
	--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100 journal=on" >/dev/null
ctl h1 vm start web1 >/dev/null
wait_for 60 "web1 running" phase_is h1 web1 running
owner=$(vm_field h1 web1 owner)
has_ticks() { [[ -n $(ticks "h$owner" web1) ]]; }
wait_for 30 "web1 ticking" has_ticks

step "h$owner's storage link cut for $CUT_S s, then healed"
"$LAB" cut "h$owner" storage >/dev/null
sleep "$CUT_S"
"$LAB" heal "h$owner" storage >/dev/null
echo "phase after the cut: $(vm_field h1 web1 phase) on host $(vm_field h1 web1 owner)"

step "web1 must run again and tick"
t0=$(now)
before=$(ticks "h$owner" web1)
running_again() {
	phase_is h1 web1 running || return 1
	local o t
	o=$(vm_field h1 web1 owner)
	t=$(ticks "h$o" web1)
	[[ -n $t && ( $o != "$owner" || $t != "$before" ) ]]
}
if ! (wait_for 30 "web1 running again" running_again) 2>/dev/null; then
	"$LAB" exec "h$owner" sh -c 'grep -v tick= /var/log/haven/web1.worker.log | tail -3'
	"$LAB" exec "h$owner" grep 'vm web1' /var/log/havend.log | tail -3
	fail "web1 is '$(vm_field h1 web1 phase)' 30 s after the storage link came back (tick $before before, $(ticks "h$owner" web1) now)"
fi
echo "web1 runs again $(since "$t0") s after the heal"
echo "PASS"
