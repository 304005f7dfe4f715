#!/bin/bash
# test-lab-install.sh — installing an OS from an ISO (issue 16), on 3 lab
# hosts with the never-twice auditor on. The test makes two images with
# grub-mkrescue from the Linux test guest: an "installed system" (a disk
# image whose GRUB boots the guest with haven.boot=disk) and an installer
# ISO holding that image, whose GRUB boots the guest in installer mode
# (haven.install=/disk.img: copy the image onto the disk, reboot).
#  1. web1 with an empty disk, --cdrom ISO --boot disk,cdrom: the empty disk
#     falls through to the cdrom, the installer writes the disk and reboots,
#     the same QEMU boots the installed system from the disk; vm show says
#     cdrom and boot order (text and --json).
#  2. vm set --no-cdrom, stop, start: it boots from its disk alone.
#  3. a cdrom that is not on the hosts: the start fails with the reason
#     before QEMU runs; bad --cdrom/--boot input is refused by havenctl.
#  4. the same install under UEFI (web2, OVMF): the empty disk falls
#     through to the ISO's EFI GRUB, the installed disk boots by OVMF.
# Exit 0 on pass; 77 (skip) when not root, without grub-mkrescue's BIOS
# files, or when the Linux guest cannot be built; 1 with FAIL otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
NHOSTS=3

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"

[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root"; exit 77; }
if ! command -v grub-mkrescue >/dev/null || ! command -v xorriso >/dev/null ||
	[[ ! -d /usr/lib/grub/i386-pc ]]; then
	echo "SKIP: no grub-mkrescue, xorriso or grub-pc-bin (sudo scripts/deps)"
	exit 77
fi
if [[ ! -s $LINUX_DIR/vmlinuz || ! -s $LINUX_DIR/initramfs.gz ]]; then
	echo "building the Linux test guest (cmake --build $BUILD --target haven-linux-guest)"
	if ! cmake --build "$BUILD" --target haven-linux-guest >/dev/null 2>&1 ||
		[[ ! -s $LINUX_DIR/vmlinuz ]]; then
		echo "SKIP: the Linux test guest cannot be built here (see tests/guest/linux/README.md)"
		exit 77
	fi
fi

lab_test_begin install

console() { ctl "$1" vm console "$2" --tail 100000 2>/dev/null; }
says() { console "$1" "$2" | grep -ac -- "$3" || true; }
vm_events() { ctl h1 --json events | jq -r -s --arg s "vm $1" 'map(select(.subject == $s)) | .[].text'; }
refused() { # WHAT EXPECT COMMAND... — exits 2 (usage), saying EXPECT
	local what=$1 expect=$2 out rc=0
	shift 2
	out=$("$@" 2>&1) || rc=$?
	[[ $rc == 2 ]] || fail "$what: exit $rc, not 2: $out"
	grep -qF -- "$expect" <<<"$out" || fail "$what: no '$expect' in: $out"
}
# grub_image DIR OUT CMDLINE — a GRUB rescue image (BIOS and UEFI) of DIR
# booting the guest with CMDLINE.
grub_image() {
	mkdir -p "$1/boot/grub"
	cp "$LINUX_DIR/vmlinuz" "$LINUX_DIR/initramfs.gz" "$1/boot/"
	cat >"$1/boot/grub/grub.cfg" <<CFG
set timeout=0
serial --unit=0 --speed=115200
terminal_output serial console
menuentry "haven" {
	linux /boot/vmlinuz console=ttyS0 $3
	initrd /boot/initramfs.gz
}
CFG
	grub-mkrescue -o "$2" "$1" >"$TMP/grub-mkrescue.log" 2>&1 ||
		fail "grub-mkrescue: $(tail -3 "$TMP/grub-mkrescue.log")"
}

step "3 hosts; the installed system and the installer ISO"
lab_cluster 3
mkdir -p "$TMP/audit"
"$AUDITOR" start "$TMP/audit"
grub_image "$TMP/system" "$TMP/system.img" "haven.boot=disk journal=off tick_ms=100"
mkdir -p "$TMP/iso"
cp "$TMP/system.img" "$TMP/iso/disk.img"
grub_image "$TMP/iso" "$TMP/installer.iso" "haven.install=/disk.img journal=off"
chmod 644 "$TMP/installer.iso"
echo "system image $(stat -c %s "$TMP/system.img") bytes, ISO $(stat -c %s "$TMP/installer.iso") bytes"

step "1. an empty disk falls through to the cdrom; the installer writes the disk; it boots from the disk"
ctl h1 vm create web1 --memory 256M --volume web1-disk --prefer 1 --stop-timeout 3 \
	--cdrom "$TMP/installer.iso" --boot disk,cdrom >/dev/null
ctl h1 vm show web1 | grep -q "^cdrom: *$TMP/installer.iso$" || fail "vm show: no cdrom line"
ctl h1 vm show web1 | grep -q '^boot order: *disk,cdrom$' || fail "vm show: no boot order line"
[[ $(vm_field h1 web1 cdrom) == "$TMP/installer.iso" ]] || fail "vm show --json: cdrom"
[[ $(vm_field h1 web1 boot_order) == disk,cdrom ]] || fail "vm show --json: boot_order"
t0=$(now)
ctl h1 vm start web1 >/dev/null
wait_for 60 "web1 running" phase_is h1 web1 running
installed() { (( $(says h1 web1 "installer: installed /disk.img") >= 1 )); }
wait_for 180 "the installer's line" installed
echo "installed after $(since "$t0") s"
from_disk() { (( $(says h1 web1 "haven-init: booted from disk") >= 1 )); }
wait_for 180 "the installed system booting from the disk" from_disk
ticks_h1() { [[ -n $(last_tick h1 web1) ]]; }
wait_for 30 "the installed system ticking" ticks_h1
echo "booted from the disk after $(since "$t0") s"
[[ $(says h1 web1 "installer: installed") == 1 ]] || fail "the installer ran more than once"
[[ $(vm_field h1 web1 phase) == running ]] || fail "web1 is not running after the guest's reboot"

step "2. the cdrom removed: a cold start boots the disk"
ctl h1 vm set web1 --no-cdrom >/dev/null
[[ $(ctl h1 --json vm show web1 | jq -r '.next_start.cdrom') == null ]] ||
	fail "vm show --json: the next start still has a cdrom"
ctl h1 vm stop web1 >/dev/null
wait_for 30 "web1 stopped" phase_is h1 web1 stopped
[[ -z $(vm_field h1 web1 cdrom) ]] || fail "the cdrom is still there after the stop"
ctl h1 vm start web1 >/dev/null
wait_for 60 "web1 running" phase_is h1 web1 running
owner=$(vm_field h1 web1 owner)
from_disk_twice() { (( $(says "h$owner" web1 "haven-init: booted from disk") >= 2 )) ||
	{ [[ $owner != 1 ]] && (( $(says "h$owner" web1 "haven-init: booted from disk") >= 1 )); }; }
wait_for 180 "web1 booting from its disk again" from_disk_twice
(( $(says "h$owner" web1 "installer") <= 1 )) || fail "the installer ran again"
ctl h1 vm show web1 | grep -q '^cdrom:' && fail "vm show still shows a cdrom"

step "3. bad input, and a cdrom that no host has"
refused "--boot disk,net" "disk and cdrom" ctl h1 vm set web1 --boot disk,net
refused "--cdrom relative" "absolute path" ctl h1 vm set web1 --cdrom installer.iso
refused "--cdrom with --no-cdrom" "together" ctl h1 vm set web1 --cdrom "$TMP/installer.iso" --no-cdrom
[[ $(vm_field h1 web1 boot_order) == disk,cdrom ]] || fail "a refused vm set changed the boot order"
ctl h1 vm stop web1 >/dev/null
wait_for 30 "web1 stopped" phase_is h1 web1 stopped
ctl h1 vm set web1 --cdrom "$TMP/missing.iso" >/dev/null
ctl h1 vm start web1 >/dev/null 2>&1 || true
missing_said() { vm_events web1 | grep -qF "its cdrom $TMP/missing.iso cannot be read on this host"; }
wait_for 60 "the missing ISO named in web1's events" missing_said
vm_events web1 | grep -F "missing.iso" | tail -1
[[ -z $(qemu_pid h1 "$(vm_field h1 web1 uuid)") ]] || fail "QEMU runs without its cdrom"

step "4. the same under UEFI: web2 installs from the ISO and boots its disk by OVMF"
new_lun web2
# GRUB's EFI loader needs more than 256 MiB for the guest's kernel.
ctl h1 vm create web2 --memory 1024M --volume web2-disk --prefer 2 --stop-timeout 3 \
	--firmware uefi --cdrom "$TMP/installer.iso" --boot disk,cdrom >/dev/null
t0=$(now)
ctl h1 vm start web2 >/dev/null
wait_for 60 "web2 running" phase_is h1 web2 running
owner=$(vm_field h1 web2 owner)
uefi_installed() { (( $(says "h$owner" web2 "installer: installed /disk.img") >= 1 )); }
wait_for 240 "web2's installer" uefi_installed
echo "web2 installed under UEFI after $(since "$t0") s"
uefi_from_disk() { (( $(says "h$owner" web2 "haven-init: booted from disk") >= 1 )); }
wait_for 240 "web2 booting from its disk" uefi_from_disk
echo "web2 booted from its disk under UEFI after $(since "$t0") s"
uefi_efivar() { (( $(says "h$owner" web2 "efivar was=") >= 1 )); }
wait_for 30 "web2's guest under UEFI (its efivar line)" uefi_efivar

"$AUDITOR" check "$TMP/audit" || fail "the auditor saw a VM on two hosts at once"
echo "PASS"
