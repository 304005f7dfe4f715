#!/bin/bash
# test-lab-vm-box.sh — every process of a VM ends with it (issue 15): on 1
# lab host with real QEMU, a hostile QEMU (a [vm] qemu wrapper that runs
# the real one) leaves a process behind in its own session, not its child,
# and tries to move itself out of its cgroup. It stays in the VM's cgroup
# (haven.NODE.vm-UID), and when the VM stops -- by `vm stop`, and when its
# worker is killed outright -- that process is gone too and the cgroup is
# removed; the VM's next start gets a clean one.
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
cat >"$TMP/hostile-qemu" <<EOF
#!/bin/bash
# A hostile QEMU: a process left behind in its own session, then an attempt
# to leave the cgroup, then the real QEMU.
setsid sleep 100000 </dev/null >/dev/null 2>&1 &
echo \$! >"$BOX/escapee.\$\$"
for f in /sys/fs/cgroup/*/cgroup.procs /sys/fs/cgroup/cgroup.procs; do
	[[ -e \$f ]] || continue
	if echo \$\$ 2>/dev/null >"\$f"; then echo "\$f" >>"$BOX/escaped"; fi
done
exec "$QEMU" "\$@"
EOF
chmod 755 "$TMP/hostile-qemu"

step "1 host; web1 with a hostile QEMU"
lab_cluster 1 "qemu = $TMP/hostile-qemu"
ctl h1 vm create web1 --memory 64M --volume web1-disk --stop-timeout 3 \
	--kernel "$TMP/guest.elf" --append "tick_ms=100" >/dev/null

# escapee — the pid the latest QEMU left behind.
escapee() { cat "$(ls -t "$BOX"/escapee.* | head -1)"; }
cg_of() { sed -n 's/^[0-9]*:pids:\(.*\)/\1/p' "/proc/$1/cgroup"; }
gone() { ! kill -0 "$1" 2>/dev/null || [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) == Z ]]; }

for how in stop kill; do
	step "web1 started; its QEMU's leftover is in the VM's cgroup, which it cannot leave"
	rm -f "$BOX"/escapee.*
	ctl h1 vm start web1 >/dev/null
	wait_for 60 "web1 running" phase_is h1 web1 running
	wait_for 10 "the leftover's pid" bash -c "ls '$BOX'/escapee.* >/dev/null 2>&1"
	pid=$(escapee)
	kill -0 "$pid" || fail "the leftover $pid is not running"
	cg=$(cg_of "$pid")
	echo "leftover pid $pid in pids:$cg"
	[[ $cg == */haven.haven-h1.vm-* ]] || fail "the leftover is not in the VM's cgroup: $cg"
	[[ ! -e $BOX/escaped ]] || fail "QEMU moved itself out of its cgroup: $(cat "$BOX/escaped")"
	dir=/sys/fs/cgroup/pids$cg
	[[ -d $dir ]] || fail "no cgroup $dir"
	if [[ $how == stop ]]; then
		step "vm stop: the leftover ends with the VM, the cgroup is removed"
		ctl h1 vm stop web1 >/dev/null
		wait_for 60 "web1 stopped" phase_is h1 web1 stopped
		wait_for 20 "the leftover $pid gone" gone "$pid"
		wait_for 20 "the cgroup removed" bash -c "[[ ! -d '$dir' ]]"
		echo "leftover $pid gone, $dir removed"
	else
		step "the worker killed outright: the leftover ends with it"
		w=$("$LAB" exec h1 pgrep -x haven-worker | head -1)
		[[ -n $w ]] || fail "no worker to kill"
		kill -KILL "$w"
		wait_for 20 "the leftover $pid gone" gone "$pid"
		echo "leftover $pid gone with its worker $w"
		# A failure: the VM runs again, in a cgroup with only its new
		# processes; then it stops for good.
		wait_for 60 "web1 running again" phase_is h1 web1 running
		wait_for 10 "the new leftover" bash -c "[[ \$(cat \$(ls -t '$BOX'/escapee.* | head -1)) != $pid ]]"
		grep -qx "$pid" "$dir/cgroup.procs" 2>/dev/null && fail "the old leftover $pid is still in $dir"
		ctl h1 vm stop web1 >/dev/null
		wait_for 60 "web1 stopped" phase_is h1 web1 stopped
		new=$(escapee)
		wait_for 20 "the new leftover $new gone" gone "$new"
	fi
done
echo "PASS"
