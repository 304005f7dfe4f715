#!/bin/bash
# test-lab-guest.sh — the test guest boots under QEMU inside a lab host,
# ticks, journals to its disk, and its journal checks clean against the acks
# it printed; a power loss of the host (lab kill) takes QEMU with it.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
GUEST_DIR=$(cd "$(dirname "$0")/../guest" && pwd)
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL to haven-guest.elf}")
CHECK=$(realpath "${HAVEN_JOURNAL_CHECK:?set HAVEN_JOURNAL_CHECK to haven-journal-check}")

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
# wait_for SECONDS DESCRIPTION COMMAND... — bounded polling, 0.1 s steps.
wait_for() {
	local limit=$1 what=$2 i
	shift 2
	for ((i = 0; i < limit * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	fail "timed out after ${limit}s waiting for $what"
}

[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root"; exit 77; }
if "$LAB" status >/dev/null 2>&1; then
	fail "a lab is already up; run '$LAB down' first (not touching it)"
fi
trap '"$LAB" down >/dev/null || echo "WARNING: lab down failed" >&2' EXIT

step "lab up"
"$LAB" up --hosts 2

step "accelerator probe inside haven-h1"
accel=$("$LAB" exec h1 "$GUEST_DIR/accel-probe" "$KERNEL")
[[ $accel == kvm || $accel == tcg ]] || fail "accel-probe printed '$accel'"
echo "accel: $accel"

# The guest's disk and serial log live in h1's private /var/lib/haven.
"$LAB" exec h1 sh -c 'rm -f /var/lib/haven/guest.img /var/lib/haven/serial.log &&
	truncate -s 64M /var/lib/haven/guest.img'
boot() {
	"$LAB" exec h1 setsid -f qemu-system-x86_64 -nodefaults -no-user-config \
		-machine pc -accel "$accel" -cpu max -m 96 -display none \
		-kernel "$KERNEL" -append "dirty=16 tick_ms=50" \
		-serial file:/var/lib/haven/serial.log \
		-drive file=/var/lib/haven/guest.img,format=raw,if=ide \
		-pidfile /run/guest.pid </dev/null >/dev/null 2>&1
}
serial() { "$LAB" exec h1 cat /var/lib/haven/serial.log 2>/dev/null || true; }
count() { serial | grep -c -- "$1" || true; }

step "boot the guest in haven-h1 under $accel"
boot
wait_for 20 "the first tick" bash -c "[[ \$('$LAB' exec h1 cat /var/lib/haven/serial.log 2>/dev/null) == *' tick='* ]]"
boot1=$(serial | sed -n 's/^HAVEN-GUEST boot=\([0-9a-f]\{16\}\) start .*/\1/p' | head -1)
[[ -n $boot1 ]] || fail "no start line: $(serial | head -3)"
wait_for 30 "20 journal acks" bash -c "(( \$('$LAB' exec h1 cat /var/lib/haven/serial.log | grep -c ' ack=') >= 20 ))"
wait_for 30 "a verified dirty-RAM pass" bash -c "[[ \$('$LAB' exec h1 cat /var/lib/haven/serial.log) == *'dirty pass=1 ok'* ]]"
(( $(count 'FAIL') == 0 )) || fail "the guest reported a failure: $(serial | grep FAIL)"
pid=$("$LAB" exec h1 cat /run/guest.pid)
[[ $("$LAB" status) == *"$pid:qemu"* ]] || fail "lab status does not list QEMU ($pid) on haven-h1"

step "power loss: lab kill haven-h1 takes QEMU down mid-write"
"$LAB" kill haven-h1
# A killed process may linger as a zombie until init reaps it: dead all the same.
state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null || true)
[[ -z $state || $state == Z ]] || fail "QEMU $pid survived lab kill (state $state)"
"$LAB" start haven-h1
acks=$(count ' ack=')
echo "acknowledged records before the power loss: $acks"

step "every acknowledged record is on the disk"
"$LAB" exec h1 cat /var/lib/haven/serial.log >"${TMPDIR:-/tmp}/haven-guest-serial.$$"
trap 'rm -f "${TMPDIR:-/tmp}/haven-guest-serial.$$"; "$LAB" down >/dev/null || echo "WARNING: lab down failed" >&2' EXIT
"$LAB" exec h1 cat /var/lib/haven/guest.img |
	"$CHECK" --expect "${TMPDIR:-/tmp}/haven-guest-serial.$$" - || fail "journal check failed"

step "a cold boot gets a new boot id and continues the journal"
# A fresh log for the second boot (QEMU would truncate it anyway; removing
# it first means the wait below cannot see the first boot's lines).
"$LAB" exec h1 rm -f /var/lib/haven/serial.log
boot
wait_for 20 "the second boot" bash -c "[[ \$('$LAB' exec h1 cat /var/lib/haven/serial.log 2>/dev/null) == *' journal resume '* ]]"
boot2=$(serial | sed -n 's/^HAVEN-GUEST boot=\([0-9a-f]\{16\}\) start .*/\1/p' | tail -1)
[[ $boot2 != "$boot1" ]] || fail "the boot id did not change on a cold boot"
resume=$(serial | sed -n "s/^HAVEN-GUEST boot=$boot2 journal resume seq=\([0-9]*\).*/\1/p")
(( resume > acks )) || fail "journal resumed at seq $resume, not after the $acks acknowledged records"
"$LAB" exec h1 sh -c 'kill "$(cat /run/guest.pid)"'
echo "PASS: guest booted ($accel), $acks acknowledged records survived a power loss, resumed at $resume"
