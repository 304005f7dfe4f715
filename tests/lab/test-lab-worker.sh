#!/bin/bash
# test-lab-worker.sh — the per-VM worker against real QEMU and tgtd LUNs:
# boot on haven-h1 under an unprivileged uid with no capabilities and
# seccomp on; save the VM's state to its shared volume; restore it on
# haven-h2 by another worker: same boot id, the tick counter continues, the
# 64 MiB dirty-RAM pattern verifies, every acknowledged journal record is
# on disk and the guest goes on writing. Then restores that must be refused
# (another VM, an older generation, a consumed state, a flipped byte, a
# save killed half-way) leave the saved state as it was.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
HAVENCTL=$BUILD/cli/havenctl
WORKER=$BUILD/worker/haven-worker
DRIVER=$BUILD/tests/worker/haven-worker-driver
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
CHECK=$(realpath "${HAVEN_JOURNAL_CHECK:?set HAVEN_JOURNAL_CHECK}")
TMP=$(mktemp -d "${TMPDIR:-/tmp}/haven-lab-worker.XXXXXX")
chmod 755 "$TMP"
VM_UID=60101

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
. "$(dirname "$0")/worker-lib.sh"

[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root"; exit 77; }
if "$LAB" status >/dev/null 2>&1; then
	fail "a lab is already up; run '$LAB down' first (not touching it)"
fi
trap 'rm -rf "$TMP"; "$LAB" down >/dev/null || echo "WARNING: lab down failed" >&2' EXIT

step "lab up; a 1 GiB LUN formatted by haven-h1 with a 64 MiB VHD"
"$LAB" up --hosts 2
url=$("$LAB" lun add vm1 1G)
lunfile=${HAVEN_LAB_DIR:-/run/haven-lab}/luns/vm1.img
on h1 "$HAVENCTL" --key haven-lab:1 disk format --cluster haven-lab --state-size 256M "$url" >/dev/null
on h1 "$HAVENCTL" --key haven-lab:1 disk create "$url" --size 64M >/dev/null
key() { on h1 "$HAVENCTL" --json pr register --key "$1" "$url" | jq -r .key; }
key1=$(key haven-lab:1)
key2=$(key haven-lab:2)
# KVM only where a probe boot proves it works (here: TCG).
ACCEL=$(on h1 "$(cd "$(dirname "$0")/../guest" && pwd)/accel-probe" "$KERNEL")
export ACCEL
echo "accelerator: $ACCEL"

step "haven-h1: boot, run, check privileges, save"
(
	drive h1 1 boot start wait:RUNNING:30 sleep:5000 save wait:SAVED:120 ||
		{ show boot; exit 1; }
) &
drv=$!
# While it runs: the worker and its QEMU are unprivileged, capless, sandboxed.
for _ in $(seq 1 200); do
	grep -q '"phase":"RUNNING"' "$TMP/boot.events" 2>/dev/null && break
	sleep 0.1
done
grep -q '"phase":"RUNNING"' "$TMP/boot.events" || { wait $drv || true; show boot; fail "the VM did not start"; }
wpid=$(cat "$TMP/boot.pid")
qpid=$(jq -r 'select(.phase=="RUNNING") | .qemu_pid' "$TMP/boot.events" | head -1)
for pid in "$wpid" "$qpid"; do
	st=/proc/$pid/status
	[[ $(awk '/^Uid:/ { print $2 $3 $4 $5 }' "$st") == "$VM_UID$VM_UID$VM_UID$VM_UID" ]] ||
		fail "pid $pid runs as $(grep ^Uid: "$st")"
	[[ $(awk '/^Gid:/ { print $2 $3 $4 $5 }' "$st") == "$VM_UID$VM_UID$VM_UID$VM_UID" ]] ||
		fail "pid $pid has groups $(grep ^Gid: "$st")"
	for cap in CapEff CapPrm CapInh CapAmb; do
		[[ $(awk "/^$cap:/ { print \$2 }" "$st") == 0000000000000000 ]] ||
			fail "pid $pid has $(grep "^$cap:" "$st")"
	done
	[[ $(awk '/^NoNewPrivs:/ { print $2 }' "$st") == 1 ]] || fail "pid $pid: no_new_privs is off"
	[[ $(awk '/^Seccomp:/ { print $2 }' "$st") == 2 ]] || fail "pid $pid: seccomp is not filtering"
done
echo "worker $wpid and QEMU $qpid: uid $VM_UID, no capabilities, no_new_privs, seccomp filter"
wait $drv || { show boot; fail "boot/save failed"; }
saved=$(jq -c 'select(.phase=="SAVED")' "$TMP/boot.events")
echo "saved: $saved"
boot=$(sed -n 's/^HAVEN-GUEST boot=\([0-9a-f]*\) start .*/\1/p' "$TMP/boot.serial" | head -1)
last_tick=$(sed -n 's/.* tick=\([0-9]*\).*/\1/p' "$TMP/boot.serial" | tail -1)
acks_before=$(grep -c ' ack=' "$TMP/boot.serial" || true)
grep -q 'dirty pass=1 ok' "$TMP/boot.serial" || fail "the guest never completed a dirty-RAM pass before the save"
(( acks_before > 10 )) || fail "only $acks_before journal acks before the save"

step "haven-h2: restore by another worker on another host"
drive h2 2 restore restore:1 wait:RUNNING:120 sleep:6000 kill wait:EXIT:30 ||
	{ show restore; fail "restore failed"; }
restored=$(jq -c 'select(.phase=="RUNNING")' "$TMP/restore.events" | head -1)
echo "restored: $restored"
grep -q "boot=$boot tick=$((last_tick + 1))" "$TMP/restore.serial" ||
	fail "the counter did not continue: last tick before the save was $last_tick; after: $(head -3 "$TMP/restore.serial")"
if grep -q ' start ' "$TMP/restore.serial"; then fail "the guest cold-booted instead of resuming"; fi
if grep -v "boot=$boot" "$TMP/restore.serial" | grep -q HAVEN-GUEST; then fail "another boot id after the restore"; fi
grep -q "boot=$boot dirty pass=[0-9]* ok" "$TMP/restore.serial" ||
	fail "no verified dirty-RAM pass after the restore"
if grep -q 'FAIL' "$TMP/restore.serial"; then fail "dirty RAM corrupted: $(grep FAIL "$TMP/restore.serial")"; fi
acks_after=$(grep -c ' ack=' "$TMP/restore.serial" || true)
(( acks_after > 0 )) || fail "the guest stopped writing after the restore"
echo "boot $boot: tick $last_tick -> $((last_tick + 1)); $acks_before acks before, $acks_after after; dirty RAM intact"

step "every acknowledged record is on the LUN (qemu-img reads the exported VHD)"
cat "$TMP/boot.serial" "$TMP/restore.serial" >"$TMP/all.serial"
on h2 rm -f /var/lib/haven/vm1.vhd
on h2 "$HAVENCTL" disk export "$url" /var/lib/haven/vm1.vhd >/dev/null
on h2 qemu-img convert -f vpc -O raw /var/lib/haven/vm1.vhd /var/lib/haven/vm1.raw
on h2 cat /var/lib/haven/vm1.raw | "$CHECK" --expect "$TMP/all.serial" - || fail "journal check failed"

# refuse NAME GEN EXPECTED ACTION... — a restore that must be refused,
# leaving the saved state (the LUN's state extent) byte for byte as it was.
state_sum() { dd if="${LUNFILE:-$lunfile}" bs=1M skip=2 count=256 status=none | sha256sum; }
refuse() {
	local name=$1 gen=$2 want=$3 before
	shift 3
	before=$(state_sum)
	drive h2 "$gen" "$name" "$@" || true
	grep -q -i "$want" "$TMP/$name.events" || { show "$name"; fail "$name: expected '$want'"; }
	if grep -q '"phase":"RUNNING"' "$TMP/$name.events"; then fail "$name: the VM ran"; fi
	[[ $(state_sum) == "$before" ]] || fail "$name: the refused restore changed the saved state"
	echo "$name: refused ($want), state unchanged"
}

step "a consumed state is not restored twice"
refuse consumed 3 "consumed\|already" restore:1 wait:STOPPED:60

step "a fresh boot and save at generation 4"
drive h2 4 boot4 start wait:RUNNING:30 sleep:2000 save wait:SAVED:120 || { show boot4; fail "save at generation 4"; }
refuse older 5 "older\|generation" restore:5 wait:STOPPED:60

step "another VM's state: vm1's state copied onto vm2's volume"
url2=$("$LAB" lun add vm2 1G)
lun2=${HAVEN_LAB_DIR:-/run/haven-lab}/luns/vm2.img
on h2 "$HAVENCTL" --key haven-lab:2 disk format --cluster haven-lab --state-size 256M "$url2" >/dev/null
on h2 "$HAVENCTL" --key haven-lab:2 disk create "$url2" --size 64M >/dev/null
dd if="$lunfile" of="$lun2" bs=1M skip=2 seek=2 count=256 conv=notrunc status=none
URL=$url2 LUNFILE=$lun2 UUID=7d0c0d7e-0000-4000-8000-0000000000b2 \
	refuse othervm 1 "another VM" restore:4 wait:STOPPED:60

step "a flipped byte in the stream is caught"
printf '\xff' | dd of="$lunfile" bs=1 seek=$(( (2 << 20) + 4096 + 3000000 )) conv=notrunc status=none
before=$(state_sum)
drive h2 6 flipped restore:4 wait:RUNNING:120 && { show flipped; fail "a corrupt state was resumed"; } || true
grep -q -i 'checksum\|could not load' "$TMP/flipped.events" || { show flipped; fail "flipped byte not reported"; }
[[ $(state_sum) == "$before" ]] || fail "the refused restore changed the saved state"
echo "flipped byte: refused, state unchanged"

step "a worker killed during a save leaves no state marked complete"
(MEM=256 DIRTY=192 drive h2 7 boot7 start wait:RUNNING:30 sleep:4000 save wait:SAVED:120 || true) &
drv=$!
for _ in $(seq 1 2000); do
	grep -q '"phase":"SAVING"' "$TMP/boot7.events" 2>/dev/null && break
	sleep 0.01
done
kill -KILL "$(cat "$TMP/boot7.pid")"
wait $drv || true
if grep -q '"phase":"SAVED"' "$TMP/boot7.events"; then fail "the save finished before the kill; test inconclusive"; fi
refuse afterkill 8 "incomplete" restore:7 wait:STOPPED:60

step "fenced while the guest writes: QEMU is killed and nothing more reaches the LUN"
(drive h1 9 fence start wait:RUNNING:30 wait:FAILED:60 || true) &
drv=$!
for _ in $(seq 1 300); do
	n=$(grep -c ' ack=' "$TMP/fence.serial" 2>/dev/null || true)
	(( ${n:-0} >= 20 )) && break
	sleep 0.1
done
qpid=$(jq -r 'select(.phase=="RUNNING") | .qemu_pid' "$TMP/fence.events" | head -1)
[[ -n $qpid ]] || { show fence; fail "the VM did not start for the fence test"; }
on h2 "$HAVENCTL" pr preempt --key haven-lab:2 --victim haven-lab:1 "$url"
fenced_at=$(grep -c ' ack=' "$TMP/fence.serial")
wait $drv || true
jq -e 'select(.phase=="FAILED" and .fenced==true)' "$TMP/fence.events" >/dev/null ||
	{ show fence; fail "the worker did not report fenced"; }
state=$(awk '{ print $3 }' "/proc/$qpid/stat" 2>/dev/null || true)
[[ -z $state || $state == Z ]] || fail "QEMU $qpid still runs after the fence"
sleep 1
after=$(grep -c ' ack=' "$TMP/fence.serial")
(( after <= fenced_at + 1 )) || fail "acks went on after the fence: $fenced_at -> $after"
keys=$(on h2 "$HAVENCTL" --json pr keys "$url")
if jq -e --arg k "$key1" '.keys | index($k)' <<<"$keys" >/dev/null; then
	fail "haven-h1's key came back: the fenced worker registered again ($keys)"
fi
cat "$TMP/fence.serial" >"$TMP/fence-all.serial"
on h2 rm -f /var/lib/haven/vm1.vhd /var/lib/haven/vm1.raw
on h2 "$HAVENCTL" disk export "$url" /var/lib/haven/vm1.vhd >/dev/null
on h2 qemu-img convert -f vpc -O raw /var/lib/haven/vm1.vhd /var/lib/haven/vm1.raw
max=$(on h2 cat /var/lib/haven/vm1.raw | "$CHECK" --json - | jq -r .max_seq)
last=$(sed -n 's/.* ack=\([0-9]*\).*/\1/p' "$TMP/fence.serial" | tail -1)
(( max <= last + 1 )) || fail "record $max reached the LUN after the fence (last ack $last)"
on h2 cat /var/lib/haven/vm1.raw | "$CHECK" --expect "$TMP/fence.serial" - >/dev/null ||
	fail "acknowledged records are missing after the fence"
echo "fenced: worker reported it, QEMU gone, acks stopped at $after, LUN ends at record $max"

# h1 was fenced: it may write again only after re-registering, which a
# worker never does by itself; havend's grant is what a new worker gets.
step "lifecycle: pause, resume, graceful stop (timeout, then quit)"
on h1 "$HAVENCTL" pr reserve --key haven-lab:1 "$url" >/dev/null
drive h1 10 life start wait:RUNNING:30 pause wait:PAUSED:10 sleep:1000 resume wait:RUNNING:10 \
	sleep:500 stop:1500 wait:STOPPED:30 wait:EXIT:10 || { show life; fail "lifecycle"; }
jq -e 'select(.phase=="STOPPED" and (.detail | test("exited with status 0")))' "$TMP/life.events" >/dev/null ||
	{ show life; fail "graceful stop did not end with QEMU quitting"; }
echo "pause/resume/stop: ok"

step "QEMU dies unexpectedly: the worker reports it"
(drive h1 11 crash start wait:RUNNING:30 wait:FAILED:30 || true) &
drv=$!
for _ in $(seq 1 300); do
	qpid=$(jq -r 'select(.phase=="RUNNING") | .qemu_pid' "$TMP/crash.events" 2>/dev/null | head -1 || true)
	[[ -n $qpid ]] && break
	sleep 0.1
done
kill -KILL "$qpid"
wait $drv || true
jq -e 'select(.phase=="FAILED" and (.error | test("killed by signal 9")))' "$TMP/crash.events" >/dev/null ||
	{ show crash; fail "QEMU's death was not reported"; }
echo "QEMU killed: reported as FAILED"

step "the lease: an older generation is refused; a running VM stops when another host takes it"
drive h1 5 stale start wait:RUNNING:30 && { show stale; fail "an older generation started the VM"; } || true
grep -q -i 'newer generation' "$TMP/stale.driver" "$TMP/stale.events" || { show stale; fail "no clear refusal for an older generation"; }
(drive h1 12 lost start wait:RUNNING:30 wait:FAILED:30 || true) &
drv=$!
for _ in $(seq 1 300); do
	grep -q '"phase":"RUNNING"' "$TMP/lost.events" 2>/dev/null && break
	sleep 0.1
done
drive h2 13 taker || { show taker; fail "haven-h2 could not claim the lease"; }
wait $drv || true
jq -e 'select(.phase=="FAILED" and (.error | test("lease")))' "$TMP/lost.events" >/dev/null ||
	{ show lost; fail "the VM kept running after another host took the lease"; }
echo "lease: older generation refused; lease taken by haven-h2 -> haven-h1 stopped its VM"

# havend's stop may come before QEMU answers (a stop right after a start,
# or a start ordered just as the VM is stopped): the worker refused it, the
# guest booted, and havend, its stop sent, waited for good.
step "a stop while the VM is still starting: stopped, not refused"
drive h2 14 early start stop:1500 wait:STOPPED:30 wait:EXIT:10 || { show early; fail "a stop during the start was not obeyed"; }
grep -q '"phase":"RUNNING"' "$TMP/early.events" && { show early; fail "the guest ran after its stop"; }
grep -q -i 'busy\|not in a state' "$TMP/early.events" "$TMP/early.driver" && { show early; fail "the stop was refused"; }
echo "stop during the start: $(jq -r 'select(.phase=="STOPPED") | .detail // .error // ""' "$TMP/early.events" | tail -1)"
echo "PASS"
