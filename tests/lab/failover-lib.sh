# failover-lib.sh — sourced by the lab's failover tests and benchmark: a
# cluster of havends running one guest VM (web1) with its journal on a lab
# LUN, and the helpers to watch where it runs. The caller sets LAB, BUILD,
# KERNEL, TMP and sources this after defining fail().

# The build's programs, or installed ones (the package's test):
# HAVEN_HAVEND and HAVEN_HAVENCTL; havend finds its worker beside itself
# or in /usr/libexec/haven.
HAVEND=${HAVEN_HAVEND:-$BUILD/clusterd/havend}
# lab up writes corosync.conf with this build's havenctl.
export HAVEN_BUILD=${HAVEN_BUILD:-$BUILD}
HAVENCTL=${HAVEN_HAVENCTL:-$BUILD/cli/havenctl}
AUDITOR=${HAVEN_AUDITOR:-$(dirname "${BASH_SOURCE[0]}")/auditor}

# lab_test_begin NAME — the common start of a lab test that sources this:
# root (else skip, 77), no lab left up by someone else, TMP, and on exit
# the logs when it failed, every auditor under TMP stopped, the lab down.
# A test with more to undo defines lab_test_extra_cleanup.
lab_test_begin() {
	[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root"; exit 77; }
	if "$LAB" status >/dev/null 2>&1; then
		fail "a lab is already up; run '$LAB down' first (not touching it)"
	fi
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/haven-lab-$1.XXXXXX")
	chmod 755 "$TMP"
	trap lab_test_cleanup EXIT
}
lab_test_cleanup() {
	local rc=$? d
	[[ $rc == 0 ]] || show_logs
	! declare -F lab_test_extra_cleanup >/dev/null || lab_test_extra_cleanup
	standins_stop
	for d in "$TMP"/audit*; do
		[[ -d $d ]] && { "$AUDITOR" check "$d" >/dev/null 2>&1 || true; }
	done
	"$LAB" down >/dev/null || echo "WARNING: lab down failed" >&2
	rm -rf "$TMP"
}

step() { echo "== $*"; }
now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }
wait_for() {
	local limit=$1 what=$2 i
	shift 2
	for ((i = 0; i < limit * 20; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	fail "timed out after ${limit}s waiting for $what"
}
ctl() { local h=$1; shift; "$LAB" exec "$h" "$HAVENCTL" "$@"; }
status() { ctl "$1" --json status 2>/dev/null; }
members_are() {
	local s
	s=$(status "$1") || return 1
	[[ $(jq -c '[.quorate, (.members | sort)]' <<<"$s") == "$2" ]]
}
# LAB_WATCHDOG=SECONDS: every host gets the lab's watchdog
# (tests/lab/watchdog-standin) with that timeout, through a FIFO under TMP;
# it "resets" its host (lab kill) when havend stops petting it.
STANDIN=$(dirname "${BASH_SOURCE[0]}")/watchdog-standin
watchdog_fifo() { echo "$TMP/watchdog-$1.fifo"; }
# standin_start HOST — a fresh watchdog for HOST (a powered-on host's is
# not armed until havend opens it); the old one, if any, goes.
standin_start() {
	local h=$1 pidf="$TMP/watchdog-$1.pid" i
	if [[ -s $pidf ]]; then kill "$(cat "$pidf")" 2>/dev/null || true; fi
	rm -f "$(watchdog_fifo "$h")"
	setsid python3 "$STANDIN" "$h" "$(watchdog_fifo "$h")" "$LAB_WATCHDOG" \
		>>"$TMP/watchdog-$h.log" 2>&1 </dev/null &
	echo $! >"$pidf"
	for ((i = 0; i < 100; i++)); do [[ -p $(watchdog_fifo "$h") ]] && return 0; sleep 0.05; done
	fail "the watchdog stand-in for $h did not start: $(cat "$TMP/watchdog-$h.log")"
}
standins_stop() {
	local f
	for f in "$TMP"/watchdog-*.pid; do
		[[ -s $f ]] && { kill "$(cat "$f")" 2>/dev/null || true; }
		rm -f "$f"
	done
}
# watchdog_fired HOST — its stand-in reset it.
watchdog_fired() { grep -q "watchdog expired" "$TMP/watchdog-$1.log" 2>/dev/null; }
# start_havend HOST — havend on HOST, and up to 15 s for its loop to run
# (its control socket answers): it probes QEMU first, and until it runs,
# the others may still count the havend it replaces as a member.
# HAVEND_hN (e.g. HAVEND_h3=/path/to/older/build/clusterd/havend): another
# build's havend on that host (lab.upgrade).
start_havend() {
	local i bin=HAVEND_${1#haven-}
	bin=${!bin:-$HAVEND}
	[[ -z ${LAB_WATCHDOG:-} ]] || standin_start "${1#haven-}"
	"$LAB" exec "$1" setsid -f sh -c 'echo $$ >/run/havend.pid; exec "$@" >>/var/log/havend.log 2>&1' \
		havend "$bin" </dev/null
	for ((i = 0; i < 150; i++)); do
		"$LAB" exec "$1" "$HAVENCTL" status >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 0
}
vm_field() { ctl "$1" --json vm show "$2" 2>/dev/null | jq -r ".$3 // empty"; }
phase_is() { [[ $(vm_field "$1" "$2" phase) == "$3" ]]; }
# The running QEMU of VM uuid on host h (none when stopped or a zombie).
qemu_pid() {
	local p st
	for p in $("$LAB" pids "$1" 2>/dev/null); do
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "-uuid $2" || continue
		st=$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null)
		[[ $st == Z || -z $st ]] && continue
		echo "$p"
		return 0
	done
	return 0
}
ticks() { ctl "$1" vm console "$2" --tail 100000 2>/dev/null | sed -n 's/.* tick=\([0-9]*\).*/\1/p' | tail -1; }
# boot_of HOST VM / last_tick HOST VM — from the VM's console on HOST.
# A VM's phase is running before its guest has printed its boot line, so
# boot_of waits up to 10 s for one: an empty id would match nothing later.
boot_of() {
	local b i
	for ((i = 0; i < 50; i++)); do
		b=$(ctl "$1" vm console "$2" --tail 100000 2>/dev/null | sed -n 's/^HAVEN-GUEST boot=\([0-9a-f]*\) .*/\1/p' | tail -1)
		[[ -n $b ]] && break
		sleep 0.2
	done
	echo "$b"
}
last_tick() { ctl "$1" vm console "$2" --tail 100000 2>/dev/null | sed -n 's/.* tick=\([0-9]*\).*/\1/p' | tail -1; }
# new_lun NAME — a formatted LUN (512 MiB state extent) with a 64 MiB VHD,
# as volume NAME-disk.
new_lun() {
	local url
	url=$("$LAB" lun add "$1" 1G)
	ctl h1 --key haven-lab:1 disk format --cluster haven-lab --state-size 512M "$url" >/dev/null
	ctl h1 --key haven-lab:1 disk create "$url" --size 64M >/dev/null
	ctl h1 volume add "$1-disk" --pool san --lun "${url##*/}" >/dev/null
}
# runs_on VM HOST: the state says running on HOST's node and the guest ticks there.
runs_elsewhere() { # VM FROM_NODE ASK_HOST
	local o
	phase_is "$3" "$1" running || return 1
	o=$(vm_field "$3" "$1" owner)
	[[ -n $o && $o != "$2" ]]
}

# lab_cluster N EXTRA_CONF — lab up with N hosts, haven.conf (plus EXTRA_CONF
# lines) on each, havend everywhere, quorate; a LUN with a 64 MiB VHD as
# pool san / volume web1-disk. LAB_HAVEND_ORDER: the hosts' numbers in the
# order their havends start (1 to N by default).
lab_cluster() {
	local n=$1 extra=${2:-} i members
	# HAVEN_EXTRA_CONF: more [vm] lines, e.g. "worker = PATH" to run an
	# ASan havend with a plain worker (the worker's seccomp filter has no
	# room for the sanitizer's runtime).
	[[ -z ${HAVEN_EXTRA_CONF:-} ]] || extra="$HAVEN_EXTRA_CONF
$extra"
	"$LAB" up --hosts "$n" ${LAB_UP_ARGS:-} >/dev/null
	URL=$("$LAB" lun add web1 1G)
	LUN=${URL##*/}
	ctl h1 --key haven-lab:1 disk format --cluster haven-lab --state-size "${STATE_SIZE:-256M}" "$URL" >/dev/null
	ctl h1 --key haven-lab:1 disk create "$URL" --size 64M >/dev/null
	cp "$KERNEL" "$TMP/guest.elf"
	chmod 644 "$TMP/guest.elf"
	for i in ${LAB_HAVEND_ORDER:-$(seq 1 "$n")}; do
		"$LAB" exec "h$i" sh -c "cat >/etc/haven/haven.conf" <<EOF
[node]
name = haven-h$i

[cluster]
name = haven-lab
token_ms = 1500

[interfaces]
management = mgmt0
storage = stor0
migration = migr0
vm = haven-vm$(printf ' %s' $(cat "${HAVEN_LAB_DIR:-/run/haven-lab}/vm-vlan-bridges" 2>/dev/null))

[watchdog]
$(if [[ -n ${LAB_WATCHDOG:-} ]]; then
	echo "device = $(watchdog_fifo "h$i")"
	echo "timeout_s = $LAB_WATCHDOG"
else
	echo "device = none"
fi)

[vm]
accel = tcg
adopt_timeout_s = 30
$extra
EOF
		start_havend "h$i"
	done
	members=$(seq -s, 1 "$n")
	for ((i = 1; i <= n; i++)); do
		wait_for 30 "h$i quorate" members_are "h$i" "[true,[$members]]"
	done
	wait_for 20 "$n hosts in the state" bash -c "[[ \$('$LAB' exec h1 '$HAVENCTL' --json node list | jq '.nodes | length') == $n ]]"
	# POOL_PORTALS: the pool's --portal options (lab.multipath: both portals).
	# shellcheck disable=SC2086
	ctl h1 pool add san ${POOL_PORTALS:---portal 10.77.2.2:3260} --target iqn.2026-11.lab.haven:san >/dev/null
	ctl h1 volume add web1-disk --pool san --lun "$LUN" --size 1G >/dev/null
}

# all_serial [VM] — every serial log of VM (web1) on every host, concatenated.
all_serial() {
	local i vm=${1:-web1}
	for i in $(seq 1 "$NHOSTS"); do
		"$LAB" exec "h$i" cat "/var/log/haven/$vm.serial" 2>/dev/null || true
	done
}

# journal_ok ASK_HOST [VM URL] — every acknowledged record of every boot of
# VM (web1) is on its LUN (URL, web1's by default).
journal_ok() {
	local vm=${2:-web1} url=${3:-$URL}
	all_serial "$vm" >"$TMP/$vm.all.serial"
	"$LAB" exec "$1" rm -f "/var/lib/haven/$vm.vhd" "/var/lib/haven/$vm.raw"
	ctl "$1" disk export "$url" "/var/lib/haven/$vm.vhd" >/dev/null
	"$LAB" exec "$1" qemu-img convert -f vpc -O raw "/var/lib/haven/$vm.vhd" "/var/lib/haven/$vm.raw"
	"$LAB" exec "$1" cat "/var/lib/haven/$vm.raw" | "$CHECK" --expect "$TMP/$vm.all.serial" - ||
		fail "an acknowledged journal record of $vm is missing"
}

show_logs() {
	local i
	for i in $(seq 1 "${NHOSTS:-3}"); do
		echo "--- h$i havend"; "$LAB" exec "h$i" tail -25 /var/log/havend.log 2>/dev/null || true
		echo "--- h$i worker"; "$LAB" exec "h$i" sh -c 'tail -5 /var/log/haven/*.worker.log' 2>/dev/null || true
	done
}

# --- the lab's guest network, for lab.net and the benchmarks: the Linux
# test guest (tests/guest/linux) with one NIC on haven-vm, asked by
# tests/lab/net-client from the haven-client namespace.
NET_CLIENT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/net-client
NET_PORT=7
LINUX_DIR=$BUILD/tests/guest/linux
# linux_guest_ready — the guest's kernel and initramfs are built (the
# target haven-linux-guest), copied under TMP for the hosts to read.
linux_guest_ready() {
	[[ -s $LINUX_DIR/vmlinuz && -s $LINUX_DIR/initramfs.gz ]] || return 1
	cp "$LINUX_DIR/vmlinuz" "$LINUX_DIR/initramfs.gz" "$TMP/"
	chmod 644 "$TMP/vmlinuz" "$TMP/initramfs.gz"
}
# linux_guest_create NAME VOLUME IP MAC [SETTINGS] — VM NAME, 256 MiB, the
# Linux guest at IP/24 with MAC on haven-vm, journaling to VOLUME.
linux_guest_create() {
	ctl h1 vm create "$1" --memory 256M --volume "$2" --stop-timeout 3 \
		--nic "bridge=haven-vm,mac=$4" --kernel "$TMP/vmlinuz" --initrd "$TMP/initramfs.gz" \
		--append "console=ttyS0 haven.ip=$3/24 haven.port=$NET_PORT tick_ms=100 journal=on${5:+ $5}" >/dev/null
}
# net_ask IP LINE [TIMEOUT_S] — one connection from haven-client, the answer.
net_ask() { "$LAB" exec client python3 "$NET_CLIENT" ask "$1" "$NET_PORT" "$2" "${3:-2}"; }
net_answers() { net_ask "$1" count "${2:-2}" >/dev/null 2>&1; }
# net_stream_start IP FILE — one connection asking "count" every 50 ms,
# its answers into FILE (NET_STREAM_PID is the client's own pid: setsid,
# lab exec and nsenter all exec).
net_stream_start() {
	: >"$2"
	setsid "$LAB" exec client python3 "$NET_CLIENT" stream "$1" "$NET_PORT" "$2" 50 </dev/null &
	NET_STREAM_PID=$!
	wait_for 10 "the client's connection to $1 answering" \
		bash -c "(( \$(grep -c ' count=' '$2') >= 5 ))"
	echo "client connected from port $(sed -n 's/^connected //p' "$2")"
}
net_stream_stop() {
	[[ -n ${NET_STREAM_PID:-} ]] || return 0
	kill -TERM "$NET_STREAM_PID" 2>/dev/null || true
	wait "$NET_STREAM_PID" 2>/dev/null || true
	NET_STREAM_PID=
}
# net_stall FILE T0 — net-client's "stall_ms=N usual_ms=N ..." over the
# stream's answers from T0 (unix time) to now, once 3 more have come; FAIL
# if the connection broke or did not carry on.
net_stall() {
	local t1=$EPOCHREALTIME out
	wait_for 10 "answers after the move" \
		bash -c "(( \$(awk -v t=$t1 '\$1 + 0 > t' '$1' | grep -c ' count=') >= 3 ))"
	! grep -q '^closed' "$1" || fail "the client's connection broke: $(grep '^closed' "$1")"
	out=$(python3 "$NET_CLIENT" stall "$1" "$2" "$EPOCHREALTIME") ||
		fail "the connection did not carry on: $out"
	echo "$out"
}
