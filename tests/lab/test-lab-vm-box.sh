#!/bin/bash
# test-lab-vm-box.sh — a hostile QEMU changes nothing outside its own VM
# (issue 15): on 1 lab host with real QEMU, every VM's QEMU is a [vm] qemu
# wrapper that runs the real one after it
#  - leaves a process behind in its own session (not its child, so no
#    parent-death signal reaches it) and tries to move itself out of its
#    cgroup;
#  - tries to connect to the other VM's QMP, NBD and worker sockets and
#    asks havend (its control socket) to stop the other VM.
# The leftover stays in the VM's cgroup (haven.NODE.vm-UID); when the VM
# stops -- by `vm stop`, and when its worker is killed outright -- it is
# gone and the cgroup removed; no other VM's socket answers, havend refuses
# the stop, and the other VM runs on throughout.
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

# As a VM's uid: every other VM's sockets, then havend's stop of web2.
cat >"$TMP/attack.py" <<'PY'
import glob, os, socket, subprocess, sys
box, havenctl = sys.argv[1], sys.argv[2]
me = os.getuid()
lines = []
# A run directory is 0700: its sockets are named, not listed.
for path in sorted(d + "/" + n for d in glob.glob("/run/haven/vm/*")
                   for n in ("qmp.sock", "nbd.sock", "worker.sock")):
    try:
        if os.stat(os.path.dirname(path)).st_uid == me:
            continue
    except OSError:
        pass
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        lines.append("reached %s" % path)
    except OSError as e:
        lines.append("refused %s: %s" % (path, e.strerror))
    s.close()
r = subprocess.run([havenctl, "vm", "stop", "web2"], capture_output=True, text=True)
lines.append("havenctl vm stop web2: exit %d: %s" % (r.returncode,
    (r.stderr or r.stdout).strip().replace("\n", " ")))
with open("%s/attack.%d" % (box, os.getuid()), "w") as f:
    f.write("\n".join(lines) + "\n")
PY
chmod 644 "$TMP/attack.py"

cat >"$TMP/hostile-qemu" <<EOF
#!/bin/bash
setsid sleep 100000 </dev/null >/dev/null 2>&1 &
echo \$! >"$BOX/escapee.\$\$"
for f in /sys/fs/cgroup/*/cgroup.procs /sys/fs/cgroup/cgroup.procs; do
	[[ -e \$f ]] || continue
	if echo \$\$ 2>/dev/null >"\$f"; then echo "\$f" >>"$BOX/escaped"; fi
done
( sleep 2; /usr/bin/python3 "$TMP/attack.py" "$BOX" "$HAVENCTL" ) </dev/null >/dev/null 2>&1 &
exec "$QEMU" "\$@"
EOF
chmod 755 "$TMP/hostile-qemu"

step "1 host; web1 and web2, each with a hostile QEMU"
lab_cluster 1 "qemu = $TMP/hostile-qemu"
new_lun web2
for vm in web1 web2; do
	ctl h1 vm create "$vm" --memory 64M --volume "$vm-disk" --stop-timeout 3 \
		--kernel "$TMP/guest.elf" --append "tick_ms=100" >/dev/null
done
ctl h1 vm start web2 >/dev/null
wait_for 60 "web2 running" phase_is h1 web2 running
web2_boot=$(boot_of h1 web2)

# escapee — the pid the latest QEMU left behind.
escapee() { cat "$(ls -t "$BOX"/escapee.* | head -1)"; }
cg_of() { sed -n 's/^[0-9]*:pids:\(.*\)/\1/p' "/proc/$1/cgroup"; }
gone() { ! kill -0 "$1" 2>/dev/null || [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) == Z ]]; }

for how in stop kill; do
	step "web1 started; its QEMU's leftover is in the VM's cgroup, which it cannot leave"
	rm -f "$BOX"/escapee.* "$BOX"/attack.*
	ctl h1 vm start web1 >/dev/null
	wait_for 60 "web1 running" phase_is h1 web1 running
	wait_for 10 "the leftover's pid" bash -c "ls '$BOX'/escapee.* >/dev/null 2>&1"
	pid=$(escapee)
	kill -0 "$pid" || fail "the leftover $pid is not running"
	uid=$(stat -c %u "/proc/$pid")
	cg=$(cg_of "$pid")
	echo "web1 (uid $uid): leftover pid $pid in pids:$cg"
	[[ $cg == */haven.haven-h1.vm-$uid ]] || fail "the leftover is not in web1's cgroup: $cg"
	[[ ! -e $BOX/escaped ]] || fail "QEMU moved itself out of its cgroup: $(cat "$BOX/escaped")"
	dir=/sys/fs/cgroup/pids$cg
	[[ -d $dir ]] || fail "no cgroup $dir"

	step "web1's QEMU tries web2's sockets and havend's stop of web2"
	wait_for 20 "web1's attempts" bash -c "[[ -s '$BOX/attack.$uid' ]]"
	cat "$BOX/attack.$uid"
	grep -q "^refused .*/qmp.sock" "$BOX/attack.$uid" || fail "web1's QEMU tried no other VM's QMP socket"
	! grep "^reached" "$BOX/attack.$uid" || fail "web1's QEMU reached another VM's socket"
	grep -q "^havenctl vm stop web2: exit [1-9]" "$BOX/attack.$uid" || fail "havend took web1's QEMU's stop of web2"
	phase_is h1 web2 running || fail "web2 is $(vm_field h1 web2 phase)"

	if [[ $how == stop ]]; then
		step "vm stop: the leftover ends with the VM, the cgroup is removed"
		ctl h1 vm stop web1 >/dev/null
		wait_for 60 "web1 stopped" phase_is h1 web1 stopped
		wait_for 20 "the leftover $pid gone" gone "$pid"
		wait_for 20 "the cgroup removed" bash -c "[[ ! -d '$dir' ]]"
		echo "leftover $pid gone, $dir removed"
	else
		step "the worker killed outright: the leftover ends with it"
		w=$(pgrep -u "$uid" -x haven-worker | head -1)
		[[ -n $w ]] || fail "no worker of uid $uid to kill"
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
done

step "web2 ran throughout"
phase_is h1 web2 running || fail "web2 is $(vm_field h1 web2 phase)"
[[ $(boot_of h1 web2) == "$web2_boot" ]] || fail "web2 was restarted"
echo "PASS"
