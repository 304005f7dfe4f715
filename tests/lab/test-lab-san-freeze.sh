#!/bin/bash
# test-lab-san-freeze.sh — the SAN stops answering while two VMs write
# (issue 20): tgtd frozen (SIGSTOP, as a storage controller failing over
# looks from a host) for 40 s and then for 120 s, and one LUN offline for
# 40 s. Each time every VM it touches pauses within a few seconds (before
# its guest's own 10 s disk timeout: the guest sees a stall, never an
# error), `vm show` says why and since when, and once the SAN answers
# again each runs on within 10 s on the same host, the same boot, the
# counter going on; the event says how long it was paused. Then the storage
# link of one VM's host flaps (cut 3 s, up 3 s) for a minute: the VM ends
# up running somewhere. At the end no acknowledged journal record is lost,
# no guest saw a disk error, and the auditor saw no VM twice.
#   SAN_FREEZE_SECS="40 120" (default) picks the freezes.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
CHECK=$(realpath "${HAVEN_JOURNAL_CHECK:?set HAVEN_JOURNAL_CHECK}")
NHOSTS=3

fail() { echo "FAIL: $*" >&2; show_logs; exit 1; }
. "$(dirname "$0")/failover-lib.sh"

lab_test_begin san-freeze

step "3 hosts; web1 and web2 (journals on their own LUNs) running"
lab_cluster 3
new_lun web2
URL2=$("$LAB" lun list | awk '$2 == "web2" { print $4 }')
[[ -n $URL2 ]] || fail "no LUN web2"
mkdir -p "$TMP/audit"
"$AUDITOR" start "$TMP/audit"
declare -A owner boot
for vm in web1 web2; do
	ctl h1 vm create "$vm" --memory 64M --volume "$vm-disk" --stop-timeout 3 \
		--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100 journal=on" >/dev/null
	ctl h1 vm start "$vm" >/dev/null
done
for vm in web1 web2; do
	wait_for 60 "$vm running" phase_is h1 "$vm" running
	owner[$vm]=$(vm_field h1 "$vm" owner)
	has_ticks() { [[ -n $(ticks "h${owner[$1]}" "$1") ]]; }
	wait_for 30 "$vm ticking" has_ticks "$vm"
	boot[$vm]=$(boot_of "h${owner[$vm]}" "$vm")
done

# paused_for_storage VM — paused, and vm show says why and since when.
paused_for_storage() {
	local js
	js=$(ctl h1 --json vm show "$1" 2>/dev/null) || return 1
	[[ $(jq -r .phase <<<"$js") == paused ]] || return 1
	[[ $(jq -r '.paused_why // empty' <<<"$js") == *"storage lost at"* ]] || return 1
	[[ $(jq -r '.paused_since // empty' <<<"$js") == 20* ]]
}
# runs_again VM TICK — running on its owner again, ticking past TICK.
runs_again() {
	local t
	phase_is h1 "$1" running || return 1
	[[ $(vm_field h1 "$1" owner) == "${owner[$1]}" ]] || fail "$1 moved to another host"
	t=$(ticks "h${owner[$1]}" "$1")
	[[ -n $t && $t != "$2" ]]
}
# outage NAME SECS VMS... — NAME's start already done: every VM in VMS
# pauses for the storage; after SECS the caller's undo runs (outage_end);
# then each runs on in place within 10 s.
outage_paused() {
	local vm t0=$1
	shift
	for vm in "$@"; do
		wait_for 20 "$vm paused for its storage" paused_for_storage "$vm"
	done
	echo "paused after $(since "$t0") s: $(ctl h1 --json vm show "$1" | jq -r .paused_why)"
	ctl h1 vm list
}
outage_over() {
	local vm t0
	t0=$(now)
	declare -A before
	for vm in "$@"; do before[$vm]=$(ticks "h${owner[$vm]}" "$vm"); done
	for vm in "$@"; do
		if ! (wait_for 10 "$vm running again" runs_again "$vm" "${before[$vm]}") 2>/dev/null; then
			"$LAB" exec "h${owner[$vm]}" tail -8 "/var/log/haven/$vm.worker.log"
			fail "$vm is still '$(vm_field h1 "$vm" phase)' 10 s after its storage answered again"
		fi
		echo "$vm runs again $(since "$t0") s after the storage answered (tick ${before[$vm]} -> $(ticks "h${owner[$vm]}" "$vm"))"
		[[ $(boot_of "h${owner[$vm]}" "$vm") == "${boot[$vm]}" ]] || fail "$vm rebooted instead of resuming"
		ctl h1 --json events | jq -r -s --arg s "vm $vm" 'map(select(.subject == $s)) | .[-1].text' |
			grep "paused for" || fail "no event says how long $vm was paused"
	done
}

for secs in ${SAN_FREEZE_SECS:-40 120}; do
	step "the SAN frozen for $secs s while both write: both pause, then run on in place"
	t0=$(now)
	"$LAB" pause san >/dev/null
	outage_paused "$t0" web1 web2
	sleep "$(awk -v s="$secs" -v e="$(since "$t0")" 'BEGIN { d = s - e; print (d > 0 ? d : 0) }')"
	"$LAB" resume san >/dev/null
	outage_over web1 web2
done

step "web1's LUN offline for 40 s: web1 pauses and runs on in place; web2 is untouched"
tgt() { "$LAB" exec san tgtadm --lld iscsi --mode logicalunit --op update --tid 1 --lun "$LUN" --params "$1"; }
t0=$(now)
tgt removable=1,online=0
outage_paused "$t0" web1
phase_is h1 web2 running || fail "web2 is '$(vm_field h1 web2 phase)' while only web1's LUN is offline"
sleep "$(awk -v e="$(since "$t0")" 'BEGIN { d = 40 - e; print (d > 0 ? d : 0) }')"
tgt online=1,removable=0
outage_over web1

step "the storage link of web1's host flapping (cut 3 s, up 3 s) for 60 s: web1 ends up running somewhere"
h=${owner[web1]}
t0=$(now)
while (( $(awk -v e="$(since "$t0")" 'BEGIN { print (e < 60) }') )); do
	"$LAB" cut "h$h" storage >/dev/null
	sleep 3
	"$LAB" heal "h$h" storage >/dev/null
	sleep 3
done
ticking_somewhere() {
	local o t
	phase_is h1 web1 running || return 1
	o=$(vm_field h1 web1 owner)
	t=$(ticks "h$o" web1)
	# ticking: a tick past the one seen at an earlier look
	if [[ -z $t || -z $flap_before || $t == "$flap_before" ]]; then
		flap_before=$t
		return 1
	fi
}
flap_before=
wait_for 60 "web1 running and ticking after the flapping" ticking_somewhere
echo "web1 runs on h$(vm_field h1 web1 owner) (it was on h$h); web2 is $(vm_field h1 web2 phase)"
ctl h1 --json events | jq -r -s 'map(select(.subject == "vm web1")) | .[-4:] | .[] | .text'

step "no guest saw a disk error; every acknowledged record is on its LUN; no VM ran twice"
for vm in web1 web2; do
	for i in $(seq 1 "$NHOSTS"); do
		if "$LAB" exec "h$i" grep "journal error" "/var/log/haven/$vm.serial" 2>/dev/null; then
			fail "$vm's guest saw a disk error on h$i: it should have seen a stall"
		fi
	done
	ctl h1 vm stop "$vm" >/dev/null
done
for vm in web1 web2; do wait_for 30 "$vm stopped" phase_is h1 "$vm" stopped; done
journal_ok h1 web1 "$URL"
journal_ok h1 web2 "$URL2"
"$AUDITOR" check "$TMP/audit" || fail "the auditor saw a VM on two hosts at once"
echo "PASS"
