#!/bin/bash
# lun-offline-stays-paused.sh — found by tests/chaos/run (seed 1, faults 12,
# 13 and 14; every lun-offline fault of every campaign): a VM's LUN offline
# on the SAN for ~4 s (tgtd answers its reads and writes with NOT READY,
# medium not present; its PR state untouched) pauses the VM (QEMU
# werror=stop, worker "PAUSED", havend "vm web1: paused"), and once the LUN
# is back nothing resumes it: it stays in phase paused, desired running,
# for good. Expected: the VM runs again (resumed in place, or restarted)
# once its storage answers, as after a storage link cut.
# Exit 0 when it runs again within 30 s of the LUN coming back; 1 (FAIL)
# otherwise; 77 when not root. Run under `flock /run/haven-lab.lock`.
set -euo pipefail

LAB=$(dirname "$0")/../../lab/lab
BUILD=$(realpath "${HAVEN_BUILD:-$(dirname "$0")/../../../build/gcc}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:-$BUILD/tests/guest/haven-guest.elf}")
CHECK=$(realpath "${HAVEN_JOURNAL_CHECK:-$BUILD/tests/guest/haven-journal-check}")
NHOSTS=3

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/../../lab/failover-lib.sh"

lab_test_begin lun-offline

step "3 hosts; web1 (journal on its LUN) running"
lab_cluster 3
ctl h1 vm create web1 --memory 64M --volume web1-disk --stop-timeout 3 \
	--kernel "$TMP/guest.elf" --append "tick_ms=100 journal=on" >/dev/null
ctl h1 vm start web1 >/dev/null
wait_for 60 "web1 running" phase_is h1 web1 running
owner=$(vm_field h1 web1 owner)
has_ticks() { [[ -n $(ticks "h$owner" web1) ]]; }
wait_for 30 "web1 ticking" has_ticks

step "LUN $LUN offline for 4 s (removable, so tgtd fails its I/O), then online"
tgt() { "$LAB" exec san tgtadm --lld iscsi --mode logicalunit --op update --tid 1 --lun "$LUN" --params "$1"; }
tgt removable=1,online=0
sleep 4
tgt online=1,removable=0
echo "phase after the outage: $(vm_field h1 web1 phase)"

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
	"$LAB" exec "h$owner" tail -4 /var/log/haven/web1.worker.log
	"$LAB" exec "h$owner" grep 'vm web1' /var/log/havend.log | tail -3
	fail "web1 is still '$(vm_field h1 web1 phase)' 30 s after its LUN came back (tick $before before, $(ticks "h$owner" web1) now)"
fi
echo "web1 runs again $(since "$t0") s after the LUN came back"
echo "PASS"
