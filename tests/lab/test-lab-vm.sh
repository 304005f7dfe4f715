#!/bin/bash
# test-lab-vm.sh — havend runs VMs: on 3 lab hosts with real corosync, tgtd
# and QEMU, a pool, a volume and a VM defined from one host are started by
# the coordinator's choice of owner, whose havend spawns the VM's worker;
# the guest ticks and writes its journal; the console is read from the
# owner and refused (with the owner named) elsewhere. havend restarted on
# the owner leaves the VM untouched (same QEMU pid, ticks go on) and adopts
# it again, and when the adopted worker's QEMU dies the VM runs again;
# `vm stop` then stops it for good, and every acknowledged
# journal record is on the LUN. A guest flooding its console stays within
# the log cap. `vm set` of a running VM's memory and NICs waits for its next
# start (its QEMU keeps 32 MiB, the priority changes at once), NIC 0 keeps
# its MAC, bad changes are refused and change nothing, and the restart runs
# the new machine under the same UUID.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
CHECK=$(realpath "${HAVEN_JOURNAL_CHECK:?set HAVEN_JOURNAL_CHECK}")
TMP=$(mktemp -d "${TMPDIR:-/tmp}/haven-lab-vm.XXXXXX")
chmod 755 "$TMP"

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"
stop_havend() {
	"$LAB" exec "$1" sh -c 'p=$(cat /run/havend.pid); kill "$p"; while kill -0 "$p" 2>/dev/null; do sleep 0.1; done'
}
show_logs() {
	local h
	for h in h1 h2 h3; do
		echo "--- $h havend"; "$LAB" exec "$h" tail -15 /var/log/havend.log 2>/dev/null || true
		echo "--- $h worker"; "$LAB" exec "$h" sh -c 'tail -5 /var/log/haven/*.worker.log' 2>/dev/null || true
	done
}

[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root"; exit 77; }
if "$LAB" status >/dev/null 2>&1; then
	fail "a lab is already up; run '$LAB down' first (not touching it)"
fi
trap 'rc=$?; [[ $rc == 0 ]] || show_logs; rm -rf "$TMP"; "$LAB" down >/dev/null || echo "WARNING: lab down failed" >&2' EXIT

step "lab up; a LUN formatted with a 64 MiB VHD; havend on every host"
"$LAB" up --hosts 3
url=$("$LAB" lun add web1 1G)
lun=${url##*/}
ctl h1 --key haven-lab:1 disk format --cluster haven-lab --state-size 256M "$url" >/dev/null
ctl h1 --key haven-lab:1 disk create "$url" --size 64M >/dev/null
cp "$KERNEL" "$TMP/guest.elf"
chmod 644 "$TMP/guest.elf"
ACCEL=$("$LAB" exec h1 "$(cd "$(dirname "$0")/../guest" && pwd)/accel-probe" "$KERNEL")
echo "accelerator: $ACCEL"
for i in 1 2 3; do
	"$LAB" exec "h$i" sh -c "cat >/etc/haven/haven.conf" <<EOF
[node]
name = haven-h$i

[cluster]
name = haven-lab

[interfaces]
management = mgmt0
storage = stor0
migration = migr0
vm = haven-vm

[watchdog]
device = none

[vm]
accel = $ACCEL
adopt_timeout_s = 30
log_max_mb = 1
EOF
	start_havend "h$i"
done
for i in 1 2 3; do wait_for 20 "h$i quorate with 3" members_are "h$i" '[true,[1,2,3]]'; done
wait_for 20 "3 hosts in the state" bash -c "[[ \$('$LAB' exec h3 '$HAVENCTL' --json node list | jq '.nodes | length') == 3 ]]"

step "pool, volume and VM defined on h2; started from h3"
ctl h2 pool add san --portal 10.77.2.2:3260 --target iqn.2026-11.lab.haven:san
ctl h2 volume add web1-disk --pool san --lun "$lun" --size 1G
ctl h1 pool list
ctl h1 volume list
ctl h2 vm create web1 --memory 128M --volume web1-disk --stop-timeout 3 --disk-bus ide --kernel "$TMP/guest.elf" \
	--append "tick_ms=100 journal=on dirty=16"
if ctl h2 vm create web2 --memory 64M --volume web1-disk 2>"$TMP/err"; then
	fail "a second VM was given the same volume"
fi
echo "second VM on the same volume: $(cat "$TMP/err")"
# A raw client (no havenctl checks) with names that would be paths, and
# worse: havend refuses each with a clear error and creates nothing.
RAW=$(cd "$(dirname "$0")" && pwd)/raw-client
raw() { "$LAB" exec h1 python3 "$RAW" /run/haven/havend.sock "$@" 2>&1 || true; }
for args in "../../etc/haven-owned web1-disk" "web\\n1 web1-disk" \
	"ok1 web1-disk --uuid ../../x" "ok1 web1-disk --kernel relative/vmlinuz" \
	"ok1 web1-disk --kernel /boot/../etc/shadow"; do
	# shellcheck disable=SC2086
	out=$(raw $args)
	[[ $out == "error 1: "* ]] || fail "havend took a raw vm create '$args': $out"
	# one line: a refusal never echoes a control character back
	(( $(wc -l <<<"$out") == 1 )) || fail "the refusal of '$args' spans lines: $out"
	echo "raw vm create $args: $out"
done
out=$("$LAB" exec h1 setpriv --reuid 60402 --regid 60402 --clear-groups /usr/bin/python3 "$RAW" \
	/run/haven/havend.sock web9 web1-disk 2>&1 || true)
[[ $out == "error 3: "* ]] || fail "an unprivileged uid's raw vm create: $out"
echo "raw vm create from uid 60402: $out"
[[ $(ctl h1 --json vm list | jq 'length') == 1 ]] || fail "a refused VM is in the state: $(ctl h1 vm list)"
for i in 1 2 3; do
	if "$LAB" exec "h$i" sh -c 'ls /etc/haven-owned* /var/log/haven-owned* 2>/dev/null; find /var/log/haven /run/haven -name "*..*" 2>/dev/null' | grep -q .; then
		fail "a refused name left a file on h$i"
	fi
done
ctl h3 vm start web1
wait_for 60 "web1 running" phase_is h1 web1 running
owner=$(vm_field h1 web1 owner)
gen=$(vm_field h1 web1 generation)
uuid=$(vm_field h1 web1 uuid)
oh=h$owner
echo "web1 runs on node $owner (generation $gen, uuid $uuid)"
ctl h1 events | grep 'vm web1' | tail -4
has_ticks() { [[ -n $(ticks "$oh" web1) ]]; }
wait_for 30 "the guest to tick" has_ticks
qpid=$(qemu_pid "$oh" "$uuid")
[[ -n $qpid ]] || fail "no QEMU for web1 on $oh"
st=/proc/$qpid/status
[[ $(awk '/^Uid:/ { print $2 }' "$st") -ge 61000 ]] || fail "QEMU runs as $(grep ^Uid: "$st")"
[[ $(awk '/^Seccomp:/ { print $2 }' "$st") == 2 ]] || fail "QEMU is not under seccomp"
wst=/proc/$(awk '/^PPid:/ { print $2 }' "$st")/status
[[ $(awk '/^Uid:/ { print $2 }' "$wst") != $(awk '/^Uid:/ { print $2 }' "$st") ]] ||
	fail "QEMU runs under its worker's uid: $(grep ^Uid: "$wst")"
echo "QEMU pid $qpid, $(grep ^Uid: "$st" | tr -s '\t' ' ')"
for i in 1 2 3; do
	[[ h$i == "$oh" ]] && continue
	[[ -z $(qemu_pid "h$i" "$uuid") ]] || fail "web1 also runs on h$i"
	if out=$(ctl "h$i" vm console web1 2>&1); then fail "h$i served a console for a VM it does not run"; fi
	[[ $out == *"haven-$oh"* ]] || fail "h$i's console refusal does not name the owner: $out"
done
echo "console elsewhere: $out"
t1=$(ticks "$oh" web1)
echo "console on $oh: tick $t1"
ctl h1 role grant viewer uid:60401 >/dev/null
rc=0; "$LAB" exec "$oh" setpriv --reuid 60401 --regid 60401 --clear-groups "$HAVENCTL" vm console web1 >/dev/null 2>&1 || rc=$?
[[ $rc == 4 ]] || fail "a viewer read the console (exit $rc, expected 4)"

step "havend restarted on the owner: the VM is untouched and adopted"
stop_havend "$oh"
sleep 2
[[ $(qemu_pid "$oh" "$uuid") == "$qpid" ]] || fail "QEMU did not survive havend stopping"
start_havend "$oh"
wait_for 20 "$oh quorate again" members_are "$oh" '[true,[1,2,3]]'
wait_for 20 "the adoption" "$LAB" exec "$oh" grep -q "adopted its worker" /var/log/havend.log
[[ $(qemu_pid "$oh" "$uuid") == "$qpid" ]] || fail "QEMU changed across the havend restart"
phase_is h1 web1 running || fail "web1 is $(vm_field h1 web1 phase) after the restart"
[[ $(vm_field h1 web1 generation) == "$gen" ]] || fail "web1's generation moved"
sleep 1
t2=$(ticks "$oh" web1)
(( t2 > t1 )) || fail "the guest's ticks did not go on ($t1 -> $t2)"
"$LAB" exec "$oh" grep "adopt" /var/log/havend.log | tail -2
echo "QEMU $qpid kept; ticks $t1 -> $t2; generation $gen"

step "havend killed on the owner, its worker frozen across the restart: adopted, not stopped"
# The new havend connects to the frozen worker's socket at once but hears
# its hello only after SIGCONT; meanwhile it must not judge the worker by
# the generation it does not know yet (it stopped it as an "older
# incarnation" of its own VM, and the VM stayed starting for good).
wpid=$(awk '{ print $4 }' "/proc/$qpid/stat")
[[ -n $wpid && $wpid != 1 ]] || fail "no worker for QEMU $qpid"
nadopt=$("$LAB" exec "$oh" grep -c "adopted its worker" /var/log/havend.log)
"$LAB" exec "$oh" sh -c 'kill -KILL "$(cat /run/havend.pid)"'
kill -STOP "$wpid"
start_havend "$oh"
wait_for 20 "$oh quorate again" members_are "$oh" '[true,[1,2,3]]'
sleep 3
kill -CONT "$wpid"
adopted_again() { (( $("$LAB" exec "$oh" grep -c "adopted its worker" /var/log/havend.log) > nadopt )); }
wait_for 20 "the adoption of the thawed worker" adopted_again
sleep 2
[[ $(qemu_pid "$oh" "$uuid") == "$qpid" ]] || fail "QEMU did not survive: the new havend stopped a worker it had not heard from"
kill -0 "$wpid" || fail "the worker $wpid is gone"
phase_is h1 web1 running || fail "web1 is $(vm_field h1 web1 phase) after the restart"
t3=$(ticks "$oh" web1)
sleep 1
(( $(ticks "$oh" web1) > t3 )) || fail "the guest's ticks did not go on"
echo "worker $wpid frozen 3 s across a havend SIGKILL and restart: adopted, QEMU $qpid kept"

step "the adopted worker's QEMU dies: web1 runs again"
# An adopted worker is not havend's child: no SIGCHLD says it is gone once
# havend has stopped it, and the new start waited for the next change of
# the state (chaos seed 3: web1 stayed starting, with no QEMU, for good).
gen=$(vm_field h1 web1 generation)
kill -KILL "$qpid"
regen() { phase_is h1 web1 running && [[ $(vm_field h1 web1 generation) != "$gen" ]]; }
t0=$(date +%s%N)
wait_for 30 "web1 running again" regen
oh=h$(vm_field h1 web1 owner)
qpid=$(qemu_pid "$oh" "$uuid")
[[ -n $qpid ]] || fail "web1 is running on $oh without a QEMU"
echo "QEMU of the adopted worker killed: web1 running again on $oh in $(( ($(date +%s%N) - t0) / 1000000 )) ms (generation $(vm_field h1 web1 generation))"
"$LAB" exec "$oh" grep "web1" /var/log/havend.log | tail -4

step "vm stop: the guest is stopped, its worker gone; every acked record on the LUN"
ctl h2 vm stop web1
wait_for 60 "web1 stopped" phase_is h3 web1 stopped
no_qemu() { [[ -z $(qemu_pid "$oh" "$uuid") ]]; }
wait_for 10 "QEMU gone" no_qemu
NHOSTS=3 all_serial >"$TMP/web1.serial"
echo "acknowledged records in the serial log: $(grep -c ' ack=' "$TMP/web1.serial")"
"$LAB" exec h3 rm -f /var/lib/haven/web1.vhd
ctl h3 disk export "$url" /var/lib/haven/web1.vhd >/dev/null
"$LAB" exec h3 qemu-img convert -f vpc -O raw /var/lib/haven/web1.vhd /var/lib/haven/web1.raw
"$LAB" exec h3 cat /var/lib/haven/web1.raw | "$CHECK" --expect "$TMP/web1.serial" - ||
	fail "an acknowledged journal record is missing"
ctl h1 events | grep 'vm web1' | tail -3

step "a guest writing its console without pause: its logs stay within [vm] log_max_mb = 1"
new_lun noisy
ctl h2 vm create noisy --memory 32M --volume noisy-disk --stop-timeout 3 \
	--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=1 flood=40 journal=off" >/dev/null
ctl h2 vm start noisy >/dev/null
wait_for 60 "noisy running" phase_is h1 noisy running
nh=h$(vm_field h1 noisy owner)
serial=/var/log/haven/noisy.serial
rotated() { "$LAB" exec "$nh" test -s "$serial.1"; }
wait_for 120 "noisy's console log rotated" rotated
sleep 5
sizes=$("$LAB" exec "$nh" stat -c '%n %s' "$serial" "$serial.1")
echo "$sizes"
while read -r f sz; do
	# the cap plus at most a second's flood
	(( sz <= 2 * 1048576 )) || fail "$f holds $sz bytes, over 1 MiB and a second's output"
done <<<"$sizes"
grep -q "noisy.serial over 1 MiB" <("$LAB" exec "$nh" cat /var/log/havend.log) ||
	fail "havend did not say it rotated noisy's console log"
[[ -n $(ticks "$nh" noisy) ]] || fail "noisy's console after the rotation has no tick"
phase_is h1 noisy running || fail "noisy is $(vm_field h1 noisy phase)"
ctl h1 vm stop noisy >/dev/null
wait_for 30 "noisy stopped" phase_is h1 noisy stopped
step "vm set: a running VM's machine changes at its next start, its placement at once"
new_lun chg
ctl h2 vm create chg --memory 32M --volume chg-disk --stop-timeout 3 --nic bridge=haven-vm \
	--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100 journal=off" >/dev/null
ctl h2 vm start chg >/dev/null
wait_for 60 "chg running" phase_is h1 chg running
ch=h$(vm_field h1 chg owner)
cuuid=$(vm_field h1 chg uuid)
mac0=$(ctl h1 --json vm show chg | jq -r '.nics[0].mac')
qemu_args() { tr '\0' ' ' <"/proc/$(qemu_pid "$ch" "$cuuid")/cmdline"; }
qemu_args | grep -q -- "-m 32 " || fail "chg's QEMU does not run with 32 MiB: $(qemu_args)"
ctl h1 vm set chg --memory 48M --priority high --nic bridge=haven-vm --nic bridge=haven-vm |
	tee "$TMP/set.out"
grep -q "changed VM chg" "$TMP/set.out" || fail "vm set did not say it changed chg"
ctl h1 vm show chg | grep "at next start"
show=$(ctl h1 --json vm show chg)
[[ $(jq -r .memory_mib <<<"$show") == 32 ]] || fail "memory changed while chg runs: $show"
[[ $(jq -r .next_start.memory_mib <<<"$show") == 48 ]] || fail "no 48 MiB for the next start: $show"
[[ $(jq -r .priority <<<"$show") == 300 ]] || fail "the priority did not change at once: $show"
[[ $(jq -r '.next_start.nics[0].mac' <<<"$show") == "$mac0" ]] ||
	fail "NIC 0 replaced in place lost its MAC $mac0: $show"
mac1=$(jq -r '.next_start.nics[1].mac' <<<"$show")
[[ $mac1 == 0a:* && $mac1 != "$mac0" ]] || fail "the new NIC 1 got MAC '$mac1'"
qemu_args | grep -q -- "-m 32 " || fail "chg's QEMU changed before its next start: $(qemu_args)"
ctl h1 events | grep -q "at its next start: memory 32 -> 48 MiB, NICs" || fail "no event says what waits"
# Refused, changing nothing: another VM's volume, a bridge no host has,
# too little memory, a VM that does not exist, nothing to change.
digest=$(ctl h1 --json vm show chg | jq -S 'del(.phase, .generation)')
for bad in "--volume web1-disk" "--nic bridge=nope" "--memory 1M" "" ; do
	# shellcheck disable=SC2086
	if ctl h1 vm set chg $bad 2>"$TMP/err"; then fail "vm set chg $bad was taken"; fi
	echo "vm set chg $bad: $(head -1 "$TMP/err")"
done
grep -q "nothing to change" "$TMP/err" || fail "an empty vm set did not say there is nothing to change"
if ctl h1 vm set ghost --memory 48M 2>"$TMP/err"; then fail "vm set of a missing VM was taken"; fi
grep -q "does not exist" "$TMP/err" || fail "vm set ghost: $(cat "$TMP/err")"
[[ $(ctl h1 --json vm show chg | jq -S 'del(.phase, .generation)') == "$digest" ]] ||
	fail "a refused vm set changed chg"
ctl h1 vm stop chg >/dev/null
wait_for 30 "chg stopped" phase_is h1 chg stopped
ctl h1 vm start chg >/dev/null
wait_for 60 "chg running again" phase_is h1 chg running
ch=h$(vm_field h1 chg owner)
qemu_args | grep -q -- "-m 48 " || fail "chg's QEMU after the restart: $(qemu_args)"
qemu_args | grep -q "mac=$mac0" || fail "NIC 0's MAC $mac0 is not on the new QEMU: $(qemu_args)"
qemu_args | grep -q "mac=$mac1" || fail "NIC 1's MAC $mac1 is not on the new QEMU: $(qemu_args)"
show=$(ctl h1 --json vm show chg)
[[ $(jq -r .memory_mib <<<"$show") == 48 && $(jq -r .next_start <<<"$show") == null ]] ||
	fail "after the restart: $show"
[[ $(jq -r .uuid <<<"$show") == "$cuuid" ]] || fail "vm set changed the UUID"
echo "chg now runs on $ch with 48 MiB and NICs $mac0 $mac1, the same UUID"
ctl h1 vm stop chg >/dev/null
wait_for 30 "chg stopped" phase_is h1 chg stopped

for i in 1 2 3; do
	"$LAB" exec "h$i" sh -c 'kill -0 "$(cat /run/havend.pid)"' || fail "havend on h$i died"
done
echo "PASS"
