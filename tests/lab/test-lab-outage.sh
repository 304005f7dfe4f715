#!/bin/bash
# test-lab-outage.sh — a VM's LUN offline on the SAN for a few seconds (tgtd
# answers its reads and writes with NOT READY, medium not present; its PR
# state untouched), found by tests/chaos/run: QEMU pauses the guest on the
# first failed request (werror=stop) and, once the LUN is back, the worker's
# retries resume it in place: same boot, the counter goes on, the cluster
# says running again; no acknowledged write is lost and the auditor sees no
# VM twice. Twice: a short outage (one retry) and a longer one (backoff).
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
CHECK=$(realpath "${HAVEN_JOURNAL_CHECK:?set HAVEN_JOURNAL_CHECK}")
NHOSTS=3

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"

lab_test_begin outage

step "3 hosts; web1 (journal on its LUN) running"
lab_cluster 3
mkdir -p "$TMP/audit"
"$AUDITOR" start "$TMP/audit"
ctl h1 vm create web1 --memory 64M --volume web1-disk --stop-timeout 3 \
	--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100 journal=on" >/dev/null
ctl h1 vm start web1 >/dev/null
wait_for 60 "web1 running" phase_is h1 web1 running
owner=$(vm_field h1 web1 owner)
has_ticks() { [[ -n $(ticks "h$owner" web1) ]]; }
wait_for 30 "web1 ticking" has_ticks
boot=$(boot_of "h$owner" web1)

tgt() { "$LAB" exec san tgtadm --lld iscsi --mode logicalunit --op update --tid 1 --lun "$LUN" --params "$1"; }
for secs in 2 9; do
	step "LUN $LUN offline for $secs s, then online: web1 pauses, then runs on in place"
	tgt removable=1,online=0
	paused() { phase_is h1 web1 paused; }
	wait_for 20 "web1 paused by the failed I/O" paused
	sleep "$secs"
	tgt online=1,removable=0
	t0=$(now)
	before=$(ticks "h$owner" web1)
	running_again() {
		phase_is h1 web1 running || return 1
		[[ $(vm_field h1 web1 owner) == "$owner" ]] || fail "web1 moved to another host"
		local t
		t=$(ticks "h$owner" web1)
		[[ -n $t && $t != "$before" ]]
	}
	if ! (wait_for 30 "web1 running again" running_again) 2>/dev/null; then
		"$LAB" exec "h$owner" tail -6 /var/log/haven/web1.worker.log
		fail "web1 is still '$(vm_field h1 web1 phase)' 30 s after its LUN came back"
	fi
	echo "web1 runs again $(since "$t0") s after the LUN came back (tick $before -> $(ticks "h$owner" web1))"
	[[ $(boot_of "h$owner" web1) == "$boot" ]] || fail "web1 rebooted instead of resuming"
	ctl h1 --json events | jq -r -s 'map(select(.subject == "vm web1")) | .[-2:] | .[] | .text'
done

step "every acknowledged journal record is on the LUN; the auditor saw no VM twice"
ctl h1 vm stop web1 >/dev/null
wait_for 30 "web1 stopped" phase_is h1 web1 stopped
journal_ok h1
"$AUDITOR" check "$TMP/audit" || fail "the auditor saw a VM on two hosts at once"
echo "PASS"
