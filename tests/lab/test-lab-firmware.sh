#!/bin/bash
# test-lab-firmware.sh — UEFI firmware whose variables live on the VM's
# volume (issue 16), on 3 lab hosts with the never-twice auditor on. The
# guest is the Linux test guest booted by OVMF (its kernel through fw_cfg);
# each boot reads its own UEFI variable HavenBoot and sets it to its boot id
# ("efivar was=PREVIOUS now=THIS" on the console, tests/guest/linux/efivar.c).
#  0. bad input: --firmware, --boot and --cdrom refused by havenctl with the
#     reason, nothing created or changed.
#  1. web1 (--firmware uefi) boots on h1 under OVMF: "efivar was=none"; vm
#     show says uefi (text and --json).
#  2. quick migration to h2: the same boot goes on there.
#  2b. live migration to h3: the same boot goes on there.
#  3. h3 killed: web1 cold-boots on h2, from the variable store on its
#     volume: the new boot reads the first boot's id ("was=<boot 1>").
#  3b. stopped and started on h1: it reads the id h2's boot wrote.
#  4. vm set --firmware bios while it runs waits for the next start.
# Exit 0 on pass; 77 (skip) when not root, no OVMF or the Linux guest cannot
# be built; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
NHOSTS=3

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"

[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root"; exit 77; }
[[ -r /usr/share/OVMF/OVMF_CODE_4M.fd ]] || { echo "SKIP: no OVMF (apt-get install ovmf)"; exit 77; }
if [[ ! -s $LINUX_DIR/vmlinuz || ! -s $LINUX_DIR/initramfs.gz ]]; then
	echo "building the Linux test guest (cmake --build $BUILD --target haven-linux-guest)"
	if ! cmake --build "$BUILD" --target haven-linux-guest >/dev/null 2>&1 ||
		[[ ! -s $LINUX_DIR/vmlinuz ]]; then
		echo "SKIP: the Linux test guest cannot be built here (see tests/guest/linux/README.md)"
		exit 77
	fi
fi

lab_test_begin firmware

# efivar HOST VM — the last "efivar was=X now=Y" of VM's console on HOST.
efivar() { ctl "$1" vm console "$2" --tail 100000 2>/dev/null | sed -n 's/.* efivar \(was=.*\)$/\1/p' | tail -1; }
efivar_error() { ctl "$1" vm console "$2" --tail 100000 2>/dev/null | grep -a "efivar error" || true; }
has_efivar() { [[ -n $(efivar "$1" "$2") ]]; }
refused() { # WHAT EXPECT COMMAND... — exits 2 (usage), saying EXPECT
	local what=$1 expect=$2 out rc=0
	shift 2
	out=$("$@" 2>&1) || rc=$?
	[[ $rc == 2 ]] || fail "$what: exit $rc, not 2: $out"
	grep -qF -- "$expect" <<<"$out" || fail "$what: no '$expect' in: $out"
}

step "3 hosts; the Linux test guest"
lab_cluster 3
linux_guest_ready || fail "the Linux guest is not built"
mkdir -p "$TMP/audit"
"$AUDITOR" start "$TMP/audit"

step "0. bad input is refused, nothing created or changed"
refused "--firmware efi" "bios or uefi" ctl h1 vm create bad --memory 256M --volume web1-disk --firmware efi
refused "--boot floppy" "disk,cdrom" ctl h1 vm create bad --memory 256M --volume web1-disk --boot floppy
refused "--boot disk,disk" "each at most once" ctl h1 vm create bad --memory 256M --volume web1-disk --boot disk,disk
refused "--cdrom relative" "absolute path" ctl h1 vm create bad --memory 256M --volume web1-disk --cdrom x.iso
! ctl h1 vm show bad >/dev/null 2>&1 || fail "a refused VM was created"

step "1. web1 boots under OVMF on h1, its variable store made on its volume"
ctl h1 vm create web1 --memory 256M --volume web1-disk --prefer 1 --stop-timeout 3 \
	--firmware uefi --kernel "$TMP/vmlinuz" --initrd "$TMP/initramfs.gz" \
	--append "console=ttyS0 tick_ms=100 journal=on" >/dev/null
[[ $(vm_field h1 web1 firmware) == uefi ]] || fail "vm show --json: firmware is not uefi"
ctl h1 vm show web1 | grep -q '^firmware: *uefi$' || fail "vm show: no 'firmware: uefi'"
ctl h1 vm start web1 >/dev/null
wait_for 60 "web1 running" phase_is h1 web1 running
wait_for 120 "web1's efivar line on h1" has_efivar h1 web1
first=$(efivar h1 web1)
echo "h1: efivar $first"
[[ -z $(efivar_error h1 web1) ]] || fail "the guest: $(efivar_error h1 web1)"
boot1=$(boot_of h1 web1)
[[ $first == "was=none now=$boot1" ]] || fail "first boot: '$first', expected 'was=none now=$boot1'"
ctl h1 vm console web1 --tail 100000 | grep -aq "efi: EFI v" || fail "the kernel did not boot by UEFI"

step "2. quick migration to h2: the same boot goes on"
ctl h3 vm migrate web1 --to haven-h2 --quick | tee "$TMP/migrate.out"
[[ $(vm_field h1 web1 owner) == 2 ]] || fail "web1 is not on h2"
ticking_h2() { [[ -n $(last_tick h2 web1) ]]; }
wait_for 30 "web1 ticking on h2" ticking_h2
[[ $(boot_of h2 web1) == "$boot1" ]] || fail "boot id changed: $boot1 -> $(boot_of h2 web1)"

step "2b. live migration to h3: the same boot goes on"
ctl h1 vm migrate web1 --to haven-h3 | tee "$TMP/live.out"
grep -q "moved from host 2 to host 3 (live migration)" "$TMP/live.out" || fail "web1 did not move live to h3"
grep -q "quick migration" "$TMP/live.out" && fail "the live migration fell back to quick: $(cat "$TMP/live.out")"
ticking_h3() { [[ -n $(last_tick h3 web1) ]]; }
wait_for 30 "web1 ticking on h3" ticking_h3
[[ $(boot_of h3 web1) == "$boot1" ]] || fail "boot id changed: $boot1 -> $(boot_of h3 web1)"

step "3. h3 killed: web1 cold-boots on h2 (preferred now) and reads the variable from its volume"
ctl h1 vm set web1 --prefer 2 >/dev/null
"$LAB" kill haven-h3 >/dev/null
wait_for 60 "web1 running elsewhere" runs_elsewhere web1 3 h1
[[ $(vm_field h1 web1 owner) == 2 ]] || fail "web1 restarted on node $(vm_field h1 web1 owner), not 2"
second_boot() { local e; e=$(efivar h2 web1); [[ -n $e ]]; }
wait_for 120 "web1's efivar line on h2" second_boot
second=$(efivar h2 web1)
boot2=$(boot_of h2 web1)
echo "h2: efivar $second"
[[ $boot2 != "$boot1" ]] || fail "web1 was not cold-booted on h2"
[[ $second == "was=$boot1 now=$boot2" ]] ||
	fail "the variable did not move with the volume: '$second', expected 'was=$boot1 now=$boot2'"

step "3b. stopped, started on h1: the value h2's boot wrote is there"
ctl h1 vm set web1 --prefer 1 >/dev/null
ctl h1 vm stop web1 >/dev/null
wait_for 30 "web1 stopped" phase_is h1 web1 stopped
ctl h1 vm start web1 >/dev/null
wait_for 60 "web1 running" phase_is h1 web1 running
[[ $(vm_field h1 web1 owner) == 1 ]] || fail "web1 started on node $(vm_field h1 web1 owner), not 1"
third_boot() { local e; e=$(efivar h1 web1); [[ -n $e && $e != "was=none now=$boot1" ]]; }
wait_for 120 "web1's efivar line on h1" third_boot
third=$(efivar h1 web1)
boot3=$(boot_of h1 web1)
echo "h1: efivar $third"
[[ $third == "was=$boot2 now=$boot3" ]] ||
	fail "h2's write did not reach the volume: '$third', expected 'was=$boot2 now=$boot3'"

step "4. vm set --firmware bios while it runs: at its next start"
ctl h1 vm set web1 --firmware bios >/dev/null
[[ $(vm_field h1 web1 firmware) == uefi ]] || fail "the firmware changed while running"
[[ $(ctl h1 --json vm show web1 | jq -r '.next_start.firmware // empty') == bios ]] ||
	fail "vm show --json: no next_start.firmware bios: $(ctl h1 --json vm show web1)"
ctl h1 vm show web1 | grep -q "firmware bios" || fail "vm show: the next start's firmware is not shown"
refused "vm set --firmware" "bios or uefi" ctl h1 vm set web1 --firmware UEFI

"$AUDITOR" check "$TMP/audit" || fail "the auditor saw a violation"
echo "PASS"
