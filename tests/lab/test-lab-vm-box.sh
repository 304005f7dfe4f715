#!/bin/bash
# test-lab-vm-box.sh — a hostile QEMU changes nothing outside its own VM
# (issue 15): on 1 lab host with real QEMU, every VM's QEMU is a [vm] qemu
# wrapper (vm-box/hostile-qemu) that runs the real one after it
#  - leaves a process behind in its own session (not its child, its
#    parent-death signal cleared) and tries to move itself out of its
#    cgroup;
#  - tries to connect to the other VM's QMP, NBD and worker sockets and
#    asks havend (its control socket) to stop the other VM (vm-box/attack.py);
# and web1's also
#  - removes its worker's worker.sock and binds its own there, which serves
#    a forged WorkerHello to any havend that connects;
#  - ptraces and SIGKILLs its worker;
#  - writes its serial console without pause ([vm] log_max_mb = 1).
# QEMU runs under a uid other than its worker's and every attempt on the
# worker is refused; a restarted havend adopts the real worker; the logs
# stay within their cap; the VM's cgroup bounds its memory. The leftover
# stays in the VM's cgroup (haven.NODE.vm-UID, the worker's uid); when the
# VM stops -- by `vm stop`, and when its worker is killed outright -- it is
# gone and the cgroup removed; no other VM's socket answers, havend refuses
# the stop, the other VM runs on throughout, havend and corosync still run.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"

lab_test_begin vm-box
BOX=$TMP/box
mkdir -m 1777 "$BOX"
QEMU=$(command -v qemu-system-x86_64)

# The wrapper and its attacks (vm-box/), where QEMU's uid reads them.
cp "$(dirname "$0")/vm-box/hostile-qemu" "$(dirname "$0")/vm-box/attack.py" "$TMP/"
cat >"$TMP/qemu" <<EOF
#!/bin/sh
HOSTILE_BOX=$BOX HOSTILE_QEMU=$QEMU HOSTILE_HAVENCTL=$HAVENCTL exec $TMP/hostile-qemu "\$@"
EOF
chmod 755 "$TMP/qemu" "$TMP/hostile-qemu"

step "1 host; web1 and web2, each with a hostile QEMU"
lab_cluster 1 "qemu = $TMP/qemu
log_max_mb = 1"
havend_pid=$("$LAB" exec h1 cat /run/havend.pid)
corosync_pid=$(cat /run/haven-lab/pids/h1.corosync.pid)
new_lun web2
for vm in web1 web2; do
	ctl h1 vm create "$vm" --memory 64M --volume "$vm-disk" --stop-timeout 3 \
		--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100" >/dev/null
done
ctl h1 vm start web2 >/dev/null
wait_for 60 "web2 running" phase_is h1 web2 running
web2_boot=$(boot_of h1 web2)

# escapee — the pid the latest QEMU left behind.
escapee() { cat "$(ls -t "$BOX"/escapee.* | head -1)"; }
cg_of() { sed -n 's/^[0-9]*:pids:\(.*\)/\1/p' "/proc/$1/cgroup"; }
gone() { ! kill -0 "$1" 2>/dev/null || [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) == Z ]]; }

mem_limit() {
	local m
	m=$(sed -n 's/^[0-9]*:memory:\(.*\)/\1/p' "/proc/$1/cgroup")
	if [[ -n $m ]]; then
		cat "/sys/fs/cgroup/memory$m/memory.limit_in_bytes"
	else
		m=$(sed -n 's/^0::\(.*\)/\1/p' "/proc/$1/cgroup")
		cat "/sys/fs/cgroup$m/memory.max"
	fi
}
# cpu_weight PID — its cgroup's CPU weight: v1 cpu.shares, v2 cpu.weight.
cpu_weight() {
	local m
	m=$(sed -n 's/^[0-9]*:\(cpu,cpuacct\|cpuacct,cpu\|cpu\):\(.*\)/\2/p' "/proc/$1/cgroup")
	if [[ -n $m ]]; then
		cat "/sys/fs/cgroup/cpu$m/cpu.shares"
	else
		m=$(sed -n 's/^0::\(.*\)/\1/p' "/proc/$1/cgroup")
		cat "/sys/fs/cgroup$m/cpu.weight" 2>/dev/null || echo none
	fi
}
log_size() { "$LAB" exec h1 stat -c %s "/var/log/haven/$1" 2>/dev/null || echo 0; }
# caps_held — every log of web1 within two caps plus a few seconds' output
# (1 MiB cap, looked at every second; the flood is about 3 MiB/s).
caps_held() {
	local f n
	for f in web1.serial web1.serial.1 web1.qemu.log web1.worker.log; do
		n=$(log_size "$f")
		((n <= 8 << 20)) || { echo "$f holds $n bytes"; return 1; }
	done
}

for how in stop kill; do
	step "web1 started; its QEMU's leftover is in the VM's cgroup, which it cannot leave"
	rm -f "$BOX"/escapee.* "$BOX"/attack.* "$BOX"/impostor.*
	ctl h1 vm start web1 >/dev/null
	wait_for 60 "web1 running" phase_is h1 web1 running
	wait_for 10 "the leftover's pid" bash -c "ls '$BOX'/escapee.* >/dev/null 2>&1"
	pid=$(escapee)
	kill -0 "$pid" || fail "the leftover $pid is not running"
	quid=$(stat -c %u "/proc/$pid")
	cg=$(cg_of "$pid")
	wuid=${cg##*vm-}
	echo "web1: worker uid $wuid; its QEMU's leftover pid $pid (uid $quid) in pids:$cg"
	[[ $cg == */haven.haven-h1.vm-$wuid ]] || fail "the leftover is not in web1's cgroup: $cg"
	[[ ! -e $BOX/escaped ]] || fail "QEMU moved itself out of its cgroup: $(cat "$BOX/escaped")"
	dir=/sys/fs/cgroup/pids$cg
	[[ -d $dir ]] || fail "no cgroup $dir"
	w=$(pgrep -n -U "$wuid" -x haven-worker)
	[[ -n $w ]] || fail "no worker of uid $wuid"
	uuid=$(vm_field h1 web1 uuid)

	step "web1's QEMU tries web2's sockets, havend's stop of web2, and its own worker"
	wait_for 20 "web1's attempts" bash -c "[[ -s '$BOX/attack.$quid' ]]"
	cat "$BOX/attack.$quid"
	grep -q "^refused .*/qmp.sock" "$BOX/attack.$quid" || fail "web1's QEMU tried no other VM's QMP socket"
	! grep "^reached" "$BOX/attack.$quid" || fail "web1's QEMU reached another VM's socket"
	grep -q "^havenctl vm stop web2: exit [1-9]" "$BOX/attack.$quid" || fail "havend took web1's QEMU's stop of web2"
	phase_is h1 web2 running || fail "web2 is $(vm_field h1 web2 phase)"
	[[ $quid != "$wuid" ]] || fail "QEMU runs under its worker's uid $wuid"
	for what in "unlink worker.sock" "replace worker.sock" "ptrace the worker" "kill the worker"; do
		grep -q "^refused $what" "$BOX/attack.$quid" ||
			fail "web1's QEMU could $what: $(grep "$what" "$BOX/attack.$quid")"
	done
	kill -0 "$w" || fail "web1's worker $w is gone"
	sock=$("$LAB" exec h1 stat -c '%u %F' "/run/haven/vm/$uuid/worker.sock") || fail "worker.sock is gone"
	[[ $sock == "$wuid socket" ]] || fail "worker.sock is not the worker's: $sock"
	phase_is h1 web1 running || fail "web1 is $(vm_field h1 web1 phase)"

	step "web1's cgroup bounds its memory: 64 MiB + 1/16 + 256 MiB (+ 1 GiB under TCG)"
	lim=$(mem_limit "$pid")
	echo "web1's cgroup: memory limit $lim"
	[[ $lim == $(((64 + 4 + 256) << 20)) || $lim == $(((64 + 4 + 256 + 1024) << 20)) ]] ||
		fail "web1's cgroup has memory limit $lim"
	weight=$(cpu_weight "$pid")
	echo "web1's cgroup: CPU weight $weight (1 vCPU)"
	[[ $weight == 1024 || $weight == 100 ]] || fail "web1's cgroup has CPU weight $weight, not one vCPU's"

	step "web1's serial console, written without pause, stays within log_max_mb"
	wait_for 30 "web1.serial rotated" "$LAB" exec h1 test -s /var/log/haven/web1.serial.1
	for i in 1 2 3 4 5 6; do caps_held || fail "a log over its cap"; sleep 0.5; done
	echo "web1.serial $(log_size web1.serial) bytes, web1.serial.1 $(log_size web1.serial.1)"

	if [[ $how == stop ]]; then
		step "havend restarted: it adopts web1's real worker, no impostor"
		"$LAB" exec h1 sh -c 'p=$(cat /run/havend.pid); kill "$p"; while kill -0 "$p" 2>/dev/null; do sleep 0.1; done'
		start_havend h1
		havend_pid=$("$LAB" exec h1 cat /run/havend.pid)
		wait_for 60 "web1 adopted" "$LAB" exec h1 grep -q "adopted its worker (pid $w," /var/log/havend.log
		[[ ! -e $BOX/impostor.$quid ]] || fail "havend talked to the impostor: $(cat "$BOX/impostor.$quid")"
		wait_for 30 "web1 running" phase_is h1 web1 running
		kill -0 "$w" || fail "web1's worker $w is gone"

		step "vm stop: the leftover ends with the VM, the cgroup is removed"
		ctl h1 vm stop web1 >/dev/null
		wait_for 60 "web1 stopped" phase_is h1 web1 stopped
		wait_for 20 "the leftover $pid gone" gone "$pid"
		wait_for 20 "the cgroup removed" bash -c "[[ ! -d '$dir' ]]"
		echo "leftover $pid gone, $dir removed"
	else
		step "the worker killed outright: the leftover ends with it"
		kill -KILL "$w"
		wait_for 20 "the leftover $pid gone" gone "$pid"
		echo "leftover $pid gone with its worker $w"
		# A failure: the VM runs again, in a cgroup with only its new
		# processes; then it stops for good.
		wait_for 60 "web1 running again" phase_is h1 web1 running
		wait_for 10 "the new leftover" bash -c "[[ \$(cat \$(ls -t '$BOX'/escapee.* | head -1)) != $pid ]]"
		! grep -qx "$pid" "$dir/cgroup.procs" 2>/dev/null || fail "the old leftover $pid is still in $dir"
		ctl h1 vm stop web1 >/dev/null
		wait_for 60 "web1 stopped" phase_is h1 web1 stopped
		new=$(escapee)
		wait_for 20 "the new leftover $new gone" gone "$new"
	fi
	caps_held || fail "a log over its cap"
done

step "web2 ran throughout; havend and corosync still run"
phase_is h1 web2 running || fail "web2 is $(vm_field h1 web2 phase)"
b=$(boot_of h1 web2)
[[ $b == "$web2_boot" ]] || fail "web2 was restarted: boot id '$b', was '$web2_boot'"
"$LAB" exec h1 kill -0 "$havend_pid" || fail "havend ($havend_pid) is gone"
kill -0 "$corosync_pid" || fail "corosync ($corosync_pid) is gone"
echo "PASS"
