#!/bin/bash
# test-lab-disk.sh — a VM disk on a shared LUN, end to end over the lab's
# storage network: haven-h1 formats a LUN as a Haven volume, creates a
# dynamic VHD on it, claims the reservation and serves it over NBD; the test
# guest boots from it and journals. haven-h2 then fences h1 by preempting
# its key: h1's next writes are refused and nothing more reaches the LUN.
# haven-h2 exports the VHD and qemu-img (an independent reader) converts it;
# every record the guest acknowledged is there.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
HAVENCTL=$BUILD/cli/havenctl
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
CHECK=$(realpath "${HAVEN_JOURNAL_CHECK:?set HAVEN_JOURNAL_CHECK}")
GUEST_DIR=$(cd "$(dirname "$0")/../guest" && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/haven-lab-disk.XXXXXX")

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
wait_for() {
	local limit=$1 what=$2 i
	shift 2
	for ((i = 0; i < limit * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	fail "timed out after ${limit}s waiting for $what"
}
h1() { HAVEN_INITIATOR=iqn.2026-11.io.haven:haven-h1 "$LAB" exec h1 "$@"; }
h2() { HAVEN_INITIATOR=iqn.2026-11.io.haven:haven-h2 "$LAB" exec h2 "$@"; }
acks() { h1 cat /var/lib/haven/serial.log | grep -c ' ack=' || true; }

[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root"; exit 77; }
if "$LAB" status >/dev/null 2>&1; then
	fail "a lab is already up; run '$LAB down' first (not touching it)"
fi
trap 'rm -rf "$TMP"; "$LAB" down >/dev/null || echo "WARNING: lab down failed" >&2' EXIT

step "lab up, one shared LUN"
"$LAB" up --hosts 2
url=$("$LAB" lun add vm1 512M)

step "haven-h1 formats the LUN and creates a dynamic VHD on it"
h1 "$HAVENCTL" --key haven-lab:1 disk format --cluster haven-lab "$url"
h1 "$HAVENCTL" --key haven-lab:1 disk create "$url" --size 128M
info=$(h2 "$HAVENCTL" --json disk info "$url")
[[ $(jq -r .type <<<"$info") == dynamic ]] || fail "disk info: $info"
keys=$(h2 "$HAVENCTL" --json pr keys "$url")
[[ $(jq -r .type <<<"$keys") == write-exclusive-registrants-only ]] || fail "not reserved: $keys"

step "haven-h2, not registered, cannot write to the LUN"
if out=$(h2 "$HAVENCTL" disk create "$url" --size 64M --force 2>&1); then
	fail "an unregistered host wrote to the LUN: $out"
fi
[[ $out == *"fenced"* || $out == *"reservation"* ]] || fail "unclear refusal: $out"

step "haven-h1 serves the VHD over NBD and boots the guest from it"
h1 setsid -f sh -c 'echo $$ >/run/serve.pid; exec "$@"' serve \
	"$HAVENCTL" --key haven-lab:1 disk serve "$url" --socket /run/vm1.nbd \
	</dev/null >/dev/null 2>"$TMP/serve.err"
wait_for 10 "the NBD socket" h1 test -S /run/vm1.nbd
accel=$(h1 "$GUEST_DIR/accel-probe" "$KERNEL")
h1 setsid -f qemu-system-x86_64 -nodefaults -no-user-config -machine pc \
	-accel "$accel" -cpu max -m 64 -display none -kernel "$KERNEL" \
	-append "tick_ms=50" -serial file:/var/lib/haven/serial.log \
	-drive "file=nbd+unix:///disk?socket=/run/vm1.nbd,format=raw,if=ide" \
	-pidfile /run/guest.pid </dev/null >/dev/null 2>&1
wait_for 30 "30 acknowledged journal records" bash -c "(( \$(HAVEN_INITIATOR=x '$LAB' exec h1 cat /var/lib/haven/serial.log | grep -c ' ack=') >= 30 ))"

step "haven-h2 fences haven-h1: preempts its key"
h2 "$HAVENCTL" pr preempt --key haven-lab:2 --victim haven-lab:1 "$url"
fenced_at=$(acks)
wait_for 20 "the guest to see its writes refused" bash -c "[[ \$('$LAB' exec h1 cat /var/lib/haven/serial.log) == *'journal error'* ]]"
sleep 1
after=$(acks)
(( after <= fenced_at + 1 )) || fail "h1 kept acknowledging writes after the fence ($fenced_at -> $after)"
echo "acks when fenced: $fenced_at, after: $after"
h1 cat /var/lib/haven/serial.log >"$TMP/serial.log"
h1 sh -c 'kill "$(cat /run/guest.pid)" "$(cat /run/serve.pid)"'

step "haven-h2 exports the VHD; qemu-img reads it; every acknowledged record is there"
h2 "$HAVENCTL" disk export "$url" /var/lib/haven/vm1.vhd
h2 qemu-img convert -f vpc -O raw /var/lib/haven/vm1.vhd /var/lib/haven/vm1.raw
h2 cat /var/lib/haven/vm1.raw | "$CHECK" --expect "$TMP/serial.log" - || fail "journal check failed"
max=$(h2 cat /var/lib/haven/vm1.raw | "$CHECK" --json - | jq -r .max_seq)
if [[ -n $max ]]; then
	(( max <= after + 1 )) || fail "the LUN holds record $max, beyond the $after acknowledged before the fence"
fi
echo "PASS: $after records acknowledged and on the LUN; the fenced host wrote nothing more (max seq ${max:-?})"
