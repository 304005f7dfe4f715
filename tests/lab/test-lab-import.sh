#!/bin/bash
# test-lab-import.sh — issue 16: `vm import` of a dynamic VHD made as
# Hyper-V makes them (qemu-img force_size: a size off every CHS boundary)
# holding known patterns gives a VM whose volume holds the same disk, byte
# for byte and at the same size, and the VM starts (the toy guest). An
# import that fails midway (a LUN too small; vm create refused) leaves
# nothing behind. Plain
# `vm delete` leaves the volume refused to a new VM, whose failure names
# `vm delete --wipe` and `disk wipe --vm UUID URL`; that disk wipe frees it.
# `vm delete --wipe` is refused while the VM runs, and once it is stopped
# frees the volume for the next VM; the guest's data stays on it.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
NHOSTS=2
SIZE=50000384		# 97657.0 sectors: no CHS geometry has that many

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"

lab_test_begin import

# has_patterns FILE.vhd — the patterns written into the source, read by QEMU.
has_patterns() {
	local out
	out=$(qemu-io -f vpc -r -c "read -P 0xa5 0 64k" -c "read -P 0x5a $((SIZE - 65536)) 64k" \
		-c "read -P 0x3c 20m 1m" "$1" 2>&1) || return 1
	! grep -q "verification failed" <<<"$out"
}
# export_to NAME URL — the volume's VHD as $TMP/NAME.vhd.
export_to() {
	rm -f "$TMP/$1.vhd"
	ctl h1 disk export "$2" "$TMP/$1.vhd" >/dev/null
}
# event_says TEXT — an event's text holds TEXT.
event_says() { ctl h1 --json events | jq -e -s --arg t "$1" 'map(select(.text | contains($t))) | length > 0' >/dev/null; }

step "2 hosts; a dynamic force_size VHD of $SIZE bytes with three patterns"
lab_cluster 2
qemu-img create -q -f vpc -o subformat=dynamic,force_size=on "$TMP/src.vhd" "$SIZE"
qemu-io -f vpc -c "write -P 0xa5 0 64k" -c "write -P 0x5a $((SIZE - 65536)) 64k" \
	-c "write -P 0x3c 20m 1m" "$TMP/src.vhd" >/dev/null
chmod 644 "$TMP/src.vhd"
[[ $(qemu-img info -f vpc --output json "$TMP/src.vhd" | jq '."virtual-size"') == "$SIZE" ]] ||
	fail "qemu-img did not make a $SIZE-byte image"
has_patterns "$TMP/src.vhd" || fail "the source does not hold its patterns"

step "vm import onto a LUN too small: refused, nothing left behind"
tiny=$("$LAB" lun add tiny 16M)
if ctl h1 vm import bad1 --vhd "$TMP/src.vhd" --pool san --lun "${tiny##*/}" --memory 64M \
	--type fixed 2>"$TMP/err"; then
	fail "a fixed $SIZE-byte VHD was imported onto a 16 MiB LUN"
fi
cat "$TMP/err"
grep -q "too small" "$TMP/err" || fail "the refusal does not say the LUN is too small"
[[ $(ctl h1 --json volume list | jq '[.[] | select(.name == "bad1")] | length') == 0 ]] ||
	fail "the failed import left volume bad1 in the cluster"
[[ $(ctl h1 --json vm list | jq '[.[] | select(.name == "bad1")] | length') == 0 ]] ||
	fail "the failed import left VM bad1"
if ctl h1 disk info "$tiny" >/dev/null 2>&1; then
	fail "the failed import left a Haven volume on the tiny LUN"
fi

step "vm import refused at its last step (vm create): the volume and the label are undone"
late=$("$LAB" lun add late 256M)
if ctl h1 vm import bad2 --vhd "$TMP/src.vhd" --pool san --lun "${late##*/}" --memory 64M \
	--volume nosuch 2>"$TMP/err"; then
	fail "vm import with a volume that does not exist was taken"
fi
cat "$TMP/err"
grep -q "creating VM bad2" "$TMP/err" || fail "the import did not get to vm create"
[[ $(ctl h1 --json volume list | jq '[.[] | select(.name == "bad2")] | length') == 0 ]] ||
	fail "the refused import left volume bad2 in the cluster"
if ctl h1 disk info "$late" >/dev/null 2>&1; then
	fail "the refused import left a Haven volume on its LUN"
fi

step "vm import imp1 (one command); the volume holds the source byte for byte"
url=$("$LAB" lun add imp 1G)
lun=${url##*/}
t0=$(now)
ctl h1 vm import imp1 --vhd "$TMP/src.vhd" --pool san --lun "$lun" --memory 64M \
	--stop-timeout 3 --disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100 journal=on"
echo "import took $(since "$t0") s"
info=$(ctl h1 --json disk info "$url")
[[ $(jq .virtual_size <<<"$info") == "$SIZE" ]] || fail "the volume's VHD is not $SIZE bytes: $info"
[[ $(jq -r .type <<<"$info") == dynamic ]] || fail "the import is not dynamic: $info"
[[ $(ctl h1 --json volume list | jq -r '.[] | select(.name == "imp1") | .lun') == "$lun" ]] ||
	fail "volume imp1 is not LUN $lun"
export_to imp1 "$url"
[[ $(qemu-img info -f vpc --output json "$TMP/imp1.vhd" | jq '."virtual-size"') == "$SIZE" ]] ||
	fail "the export is not $SIZE bytes"
qemu-img compare -f vpc -F vpc "$TMP/src.vhd" "$TMP/imp1.vhd" || fail "the volume differs from the source"
if ctl h1 vm import imp1 --vhd "$TMP/src.vhd" --pool san --lun "$lun" --memory 64M 2>"$TMP/err"; then
	fail "a second import of VM imp1 was taken"
fi
grep -q "exists" "$TMP/err" || fail "the second import does not say imp1 exists: $(cat "$TMP/err")"

step "imp1 starts and its guest boots; the patterns stay"
uuid1=$(vm_field h1 imp1 uuid)
ctl h1 vm start imp1 >/dev/null
wait_for 60 "imp1 running" phase_is h1 imp1 running
owner=$(vm_field h1 imp1 owner)
[[ -n $(boot_of "h$owner" imp1) ]] || fail "imp1's guest did not boot"
if ctl h1 vm delete --wipe imp1 2>"$TMP/err"; then
	fail "vm delete --wipe of a running VM was taken"
fi
grep -q "stop it first" "$TMP/err" || fail "the refusal does not say to stop it: $(cat "$TMP/err")"
phase_is h1 imp1 running || fail "a refused delete changed imp1"
ctl h1 vm stop imp1 >/dev/null
wait_for 30 "imp1 stopped" phase_is h1 imp1 stopped
export_to after "$url"
has_patterns "$TMP/after.vhd" || fail "the patterns are not on the volume after the guest ran"

step "plain vm delete: a new VM on the volume is refused, saying what to do"
ctl h1 vm delete imp1 >/dev/null
ctl h1 vm create imp2 --memory 64M --volume imp1 --stop-timeout 3 --max-restarts 0 \
	--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100" >/dev/null
ctl h1 vm start imp2 >/dev/null
wait_for 60 "imp2 refused by imp1's lease" event_says "VM $uuid1 holds the volume's lease"
ctl h1 events | grep -F "$uuid1 holds" | tail -1
event_says "vm delete --wipe" || fail "the refusal does not name vm delete --wipe"
event_says "'havenctl disk wipe --vm' it" || fail "the refusal does not give the disk wipe command"
ctl h1 vm stop imp2 >/dev/null || true
wait_for 60 "imp2 stopped or failed" bash -c \
	"p=\$('$LAB' exec h1 '$HAVENCTL' --json vm show imp2 | jq -r .phase); [[ \$p == stopped || \$p == failed ]]"
if ctl h1 disk wipe --vm "$(vm_field h1 imp2 uuid)" "$url" 2>"$TMP/err"; then
	fail "disk wipe took a UUID the lease does not name"
fi
ctl h1 disk wipe --vm "$uuid1" "$url"
ctl h1 vm start imp2 >/dev/null
wait_for 60 "imp2 running after disk wipe" phase_is h1 imp2 running
ctl h1 vm stop imp2 >/dev/null
wait_for 30 "imp2 stopped" phase_is h1 imp2 stopped

step "vm delete --wipe frees the volume for the next VM; the data stays"
ctl h1 vm delete --wipe imp2
ctl h1 vm create imp3 --memory 64M --volume imp1 --stop-timeout 3 \
	--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100" >/dev/null
ctl h1 vm start imp3 >/dev/null
wait_for 60 "imp3 running on the wiped volume" phase_is h1 imp3 running
owner=$(vm_field h1 imp3 owner)
[[ -n $(boot_of "h$owner" imp3) ]] || fail "imp3's guest did not boot"
ctl h1 vm stop imp3 >/dev/null
wait_for 30 "imp3 stopped" phase_is h1 imp3 stopped
export_to last "$url"
has_patterns "$TMP/last.vhd" || fail "the wipe touched the guest's data"
ctl h1 --json vm delete --wipe imp3 | jq -e '.volumes[0].wiped == true' >/dev/null ||
	fail "vm delete --wipe --json does not report the wipe"
echo "PASS"
