#!/bin/bash
# test-lab-hw.sh — a VM's machine (issue 16) on 3 lab hosts, with the
# never-twice auditor on and the guests' journals checked at the end. The
# guest is the Linux test guest (tests/guest/linux). Every host runs QEMU
# through a wrapper ([vm] qemu) that, on haven-h3, is an older QEMU (no
# machine type pc-i440fx-7.2: left out of -machine help, refused if asked
# for) and, on haven-h2, a QEMU without the CPU model Westmere-v1.
#  1. each havend publishes what its QEMU offers (node list --json), and
#     validate fails haven-h3's machine types, naming the one it lacks.
#  2. lin1, created without --disk-bus: virtio, machine type pinned to
#     pc-i440fx-7.2, the cluster's CPU model (Westmere-v1) at its start; the
#     guest journals on /dev/vda; QEMU runs virtio-blk with discard.
#  3. vm migrate lin1 to haven-h3 and to haven-h2 is refused, saying why
#     (machine type; CPU model), and the guest runs on, same boot.
#  4. cluster set --cpu-model max: lin1 keeps Westmere-v1 while it runs.
#     lin2 on --disk-bus scsi starts with max and journals on /dev/sda; it
#     migrates live to haven-h2 (both match), same boot; to haven-h3 it is
#     refused.
#  5. both stop; every acknowledged journal record is on its LUN.
# Exit 0 on pass; 77 (skip) when not root or the Linux guest cannot be
# built; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
CHECK=$(realpath "${HAVEN_JOURNAL_CHECK:?set HAVEN_JOURNAL_CHECK}")
NHOSTS=3

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"

[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root"; exit 77; }
if [[ ! -s $LINUX_DIR/vmlinuz || ! -s $LINUX_DIR/initramfs.gz ]]; then
	echo "building the Linux test guest (cmake --build $BUILD --target haven-linux-guest)"
	if ! cmake --build "$BUILD" --target haven-linux-guest >/dev/null 2>&1 ||
		[[ ! -s $LINUX_DIR/vmlinuz ]]; then
		echo "SKIP: the Linux test guest cannot be built here"
		exit 77
	fi
fi

lab_test_begin hw
QEMU_REAL=$(command -v qemu-system-x86_64)
NEW_TYPE=pc-i440fx-7.2
OLD_TYPE=pc-i440fx-7.1
MODEL=Westmere-v1
"$QEMU_REAL" -machine help | grep "^$NEW_TYPE " >/dev/null ||
	{ echo "SKIP: this QEMU has no $NEW_TYPE to take away"; exit 77; }

# The wrapper: which host it runs on from that host's haven.conf (QEMU's
# own uid may not read it: then it is the real QEMU, and havend, as root,
# has already asked it what it offers).
cat >"$TMP/qemu-wrap" <<EOF
#!/bin/bash
real=$QEMU_REAL
host=\$(sed -n 's/^name = //p' /etc/haven/haven.conf 2>/dev/null | head -1)  # [node] comes first
if [[ \$host == haven-h3 && \$* == "-machine help" ]]; then
	"\$real" -machine help | grep -v "^$NEW_TYPE " | sed "s/alias of $NEW_TYPE/alias of $OLD_TYPE/"
	exit 0
fi
if [[ \$host == haven-h2 && \$* == "-cpu help" ]]; then
	"\$real" -cpu help | grep -v "^x86 $MODEL "
	exit 0
fi
for a; do
	case \$host:\$a in
	haven-h3:$NEW_TYPE*) echo "qemu: unsupported machine type '$NEW_TYPE'" >&2; exit 1 ;;
	haven-h2:$MODEL*) echo "qemu: unknown CPU model '$MODEL'" >&2; exit 1 ;;
	esac
done
exec "\$real" "\$@"
EOF
chmod 755 "$TMP/qemu-wrap"

lab_cluster "$NHOSTS" "qemu = $TMP/qemu-wrap"
linux_guest_ready || fail "the Linux guest's files are missing"
"$AUDITOR" start "$TMP/audit"

# lun NAME — a formatted LUN with a 64 MiB VHD as volume NAME-disk; its URL
# in URLS[NAME].
declare -A URLS
lun() {
	local url
	url=$("$LAB" lun add "$1" 1G)
	ctl h1 --key haven-lab:1 disk format --cluster haven-lab --state-size 512M "$url" >/dev/null
	ctl h1 --key haven-lab:1 disk create "$url" --size 64M >/dev/null
	ctl h1 volume add "$1-disk" --pool san --lun "${url##*/}" >/dev/null
	URLS[$1]=$url
}
# create NAME IP MAC [OPTIONS...] — the Linux guest, 256 MiB, journaling.
create() {
	local name=$1 ip=$2 mac=$3
	shift 3
	ctl h1 vm create "$name" --memory 256M --volume "$name-disk" --prefer 1 --stop-timeout 3 \
		--nic "bridge=haven-vm,mac=$mac" --kernel "$TMP/vmlinuz" --initrd "$TMP/initramfs.gz" \
		--append "console=ttyS0 haven.ip=$ip/24 haven.port=$NET_PORT tick_ms=100 journal=on" "$@" \
		>/dev/null
}
owner_of() { vm_field h1 "$1" owner; }
cmdline_of() { # HOST VM: its QEMU's command line
	local pid
	pid=$(qemu_pid "$1" "$(vm_field h1 "$2" uuid)")
	[[ -n $pid ]] && tr '\0' ' ' <"/proc/$pid/cmdline"
}
refused() { # VM HOST TEXT: vm migrate to HOST is refused saying TEXT, nothing stops
	local boot
	boot=$(boot_of h1 "$1")
	if ctl h1 vm migrate "$1" --to "$2" >"$TMP/mig.out" 2>"$TMP/mig.err"; then
		fail "vm migrate $1 --to $2 was taken: $(cat "$TMP/mig.out")"
	fi
	grep -qF -- "$3" "$TMP/mig.err" || fail "vm migrate $1 --to $2 said: $(cat "$TMP/mig.err")"
	echo "vm migrate $1 --to $2: $(cat "$TMP/mig.err")"
	phase_is h1 "$1" running || fail "$1 is $(vm_field h1 "$1" phase) after a refused move"
	[[ $(owner_of "$1") == 1 ]] || fail "$1 left host 1"
	sleep 1
	[[ $(boot_of h1 "$1") == "$boot" ]] || fail "$1 booted again after a refused move"
}

step "1. each host publishes what its QEMU offers"
wait_for 20 "every host's QEMU in the state" bash -c \
	"[[ \$('$LAB' exec h1 '$HAVENCTL' --json node list | jq '[.nodes[] | select((.machine_types | length) > 0)] | length') == 3 ]]"
nodes=$(ctl h1 --json node list)
jq -e --arg t "$NEW_TYPE" '.nodes[] | select(.name == "haven-h1") | .machine_types | any(.[]; . == $t)' <<<"$nodes" >/dev/null ||
	fail "haven-h1 does not offer $NEW_TYPE"
jq -e --arg t "$NEW_TYPE" '.nodes[] | select(.name == "haven-h3") | .machine_types | any(.[]; . == $t) | not' <<<"$nodes" >/dev/null ||
	fail "haven-h3's older QEMU offers $NEW_TYPE"
jq -e --arg m "$MODEL" '.nodes[] | select(.name == "haven-h2") | .cpu_models | any(.[]; . == $m) | not' <<<"$nodes" >/dev/null ||
	fail "haven-h2 offers $MODEL"
jq -e '.nodes[] | select(.name == "haven-h1") | .cpu_models | any(.[]; . == "host") | not' <<<"$nodes" >/dev/null ||
	fail "a TCG host offers CPU model host"
echo "h1: QEMU $(jq -r '.nodes[0].qemu_version' <<<"$nodes"), $(jq '.nodes[0].machine_types | length' <<<"$nodes") machine types, $(jq '.nodes[0].cpu_models | length' <<<"$nodes") CPU models"
ctl h1 cluster show >"$TMP/cluster.out"
grep -q "cpu model: $MODEL" "$TMP/cluster.out" || fail "cluster show: $(cat "$TMP/cluster.out")"
# validate compares the lists: haven-h3 lacks the type, and is named.
out=$(ctl h1 --json validate || true)
checks=$(jq -r '[.checks[] | select(.check == "machine-types") | "\(.result): \(.detail)"] | join(" | ")' <<<"$out")
echo "validate: $checks"
grep -q "^fail: haven-h3's QEMU .* lacks .*$NEW_TYPE" <<<"$checks" ||
	fail "validate did not fail haven-h3's machine types: $checks"
[[ $(jq '[.checks[] | select(.check == "machine-types" and .result == "fail")] | length' <<<"$out") == 1 ]] ||
	fail "validate failed more than haven-h3's machine types: $checks"

step "2. lin1: virtio by default, the machine type pinned, the cluster's CPU model"
lun lin1
lun lin2
create lin1 10.77.4.21 0a:77:00:00:00:21
[[ $(vm_field h1 lin1 disk_bus) == virtio ]] || fail "lin1's bus: $(vm_field h1 lin1 disk_bus)"
[[ $(vm_field h1 lin1 machine_type) == "$NEW_TYPE" ]] || fail "lin1's machine type: $(vm_field h1 lin1 machine_type)"
ctl h1 vm start lin1 >/dev/null
wait_for 120 "lin1 running on host 1" phase_is h1 lin1 running
[[ $(vm_field h1 lin1 cpu_model) == "$MODEL" ]] || fail "lin1's CPU model: $(vm_field h1 lin1 cpu_model)"
wait_for 120 "lin1's guest to journal" bash -c "'$LAB' exec h1 '$HAVENCTL' vm console lin1 --tail 100000 | grep -aq ' ack='"
ctl h1 vm console lin1 --tail 100000 >"$TMP/lin1.console"
grep -aq "start .* journal=on disk=/dev/vda" "$TMP/lin1.console" ||
	fail "lin1's guest does not journal on /dev/vda: $(grep -a start "$TMP/lin1.console" | tail -1)"
line=$(cmdline_of h1 lin1)
for want in "-machine $NEW_TYPE,accel=tcg" "-cpu $MODEL " "virtio-blk-pci,drive=disk0" "discard=unmap"; do
	[[ $line == *"$want"* ]] || fail "lin1's QEMU has no '$want': $line"
done
ctl h1 vm show lin1 >"$TMP/show.out"
grep -E "^(disk bus|machine type|cpu model):" "$TMP/show.out"

step "3. moves to a host whose QEMU cannot run lin1 are refused, lin1 runs on"
refused lin1 haven-h3 "haven-h3's QEMU has no machine type $NEW_TYPE"
refused lin1 haven-h2 "haven-h2's QEMU has no CPU model $MODEL"

step "4. the cluster's CPU model: lin1 keeps its own; lin2 on scsi takes the new one and moves"
ctl h1 cluster set --cpu-model max >/dev/null
[[ $(vm_field h1 lin1 cpu_model) == "$MODEL" ]] || fail "lin1's CPU model changed while it runs"
if ctl h1 cluster set --cpu-model Nonesuch-v9 2>"$TMP/err"; then fail "an unknown CPU model was taken"; fi
grep -q "no host can run CPU model Nonesuch-v9" "$TMP/err" || fail "cluster set --cpu-model Nonesuch-v9: $(cat "$TMP/err")"
if ctl h1 cluster set --cpu-model host 2>"$TMP/err"; then fail "CPU model host was taken on TCG hosts"; fi
echo "cluster set --cpu-model host: $(cat "$TMP/err")"
create lin2 10.77.4.22 0a:77:00:00:00:22 --disk-bus scsi
ctl h1 vm start lin2 >/dev/null
wait_for 120 "lin2 running on host 1" phase_is h1 lin2 running
[[ $(vm_field h1 lin2 cpu_model) == max ]] || fail "lin2's CPU model: $(vm_field h1 lin2 cpu_model)"
wait_for 120 "lin2's guest to journal" bash -c "'$LAB' exec h1 '$HAVENCTL' vm console lin2 --tail 100000 | grep -aq ' ack='"
ctl h1 vm console lin2 --tail 100000 >"$TMP/lin2.console"
grep -aq "start .* journal=on disk=/dev/sda" "$TMP/lin2.console" ||
	fail "lin2's guest does not journal on /dev/sda: $(grep -a start "$TMP/lin2.console" | tail -1)"
line=$(cmdline_of h1 lin2)
for want in "virtio-scsi-pci,id=scsi0" "scsi-hd,drive=disk0" "-cpu max "; do
	[[ $line == *"$want"* ]] || fail "lin2's QEMU has no '$want': $line"
done
refused lin2 haven-h3 "haven-h3's QEMU has no machine type $NEW_TYPE"
boot=$(boot_of h1 lin2)
ctl h1 vm migrate lin2 --to haven-h2 | tail -1
wait_for 120 "lin2 running on host 2" bash -c "[[ \$('$LAB' exec h1 '$HAVENCTL' --json vm show lin2 | jq -r '.phase + \" \" + (.owner|tostring)') == 'running 2' ]]"
sleep 2
[[ $(boot_of h2 lin2) == "$boot" ]] || fail "lin2 booted again on host 2 (a live move keeps the boot)"
line=$(cmdline_of h2 lin2)
[[ $line == *"-machine $NEW_TYPE,accel=tcg"* && $line == *"scsi-hd"* ]] || fail "lin2's QEMU on h2: $line"
echo "lin2 moved live to haven-h2, same boot $boot"

step "5. stop; every acknowledged record is on its LUN"
ctl h1 vm stop lin1 >/dev/null
ctl h1 vm stop lin2 >/dev/null
wait_for 60 "lin1 stopped" phase_is h1 lin1 stopped
wait_for 60 "lin2 stopped" phase_is h1 lin2 stopped
journal_ok h1 lin1 "${URLS[lin1]}"
journal_ok h1 lin2 "${URLS[lin2]}"
"$AUDITOR" check "$TMP/audit" || fail "the auditor found a violation"
echo "PASS"
