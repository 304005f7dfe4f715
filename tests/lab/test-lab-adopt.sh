#!/bin/bash
# test-lab-adopt.sh — a VM outlives havend: with adopt_timeout_ms in its
# spec, a worker whose parent channel closes keeps QEMU running (the guest
# keeps ticking), refuses a non-root peer on RUN_DIR/worker.sock, and a new
# havend (the driver's --adopt) gets a WorkerHello naming the same QEMU and
# stops the VM cleanly. When nobody adopts it, QEMU is killed when the time
# is up and the worker's log says why; with adopt_timeout_ms 0 the VM stops
# with its havend, as before.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
HAVENCTL=$BUILD/cli/havenctl
WORKER=$BUILD/worker/haven-worker
DRIVER=$BUILD/tests/worker/haven-worker-driver
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
TMP=$(mktemp -d "${TMPDIR:-/tmp}/haven-lab-adopt.XXXXXX")
chmod 755 "$TMP"
VM_UID=60101
OTHER_UID=60999
RUN_DIR=/run/haven/vm1
# The machine's python3 (not a shim under /root, which other uids cannot read).
PY=$(PATH=/usr/local/bin:/usr/bin:/bin command -v python3) || { echo "SKIP: needs python3"; exit 77; }

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
. "$(dirname "$0")/worker-lib.sh"

# spec, plus adopt_timeout_ms = $ADOPT_MS (worker-lib.sh's spec has no such key).
eval "lib_$(declare -f spec)"
spec() {
	local s
	s=$(lib_spec "$@")
	jq --argjson ms "${ADOPT_MS:-0}" '.adopt_timeout_ms = $ms' "$s" >"$s.new"
	mv "$s.new" "$s"
	echo "$s"
}

# alive PID — running (a zombie waiting for init to reap it is dead).
alive() {
	local st
	st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null || true)
	[[ -n $st && $st != Z ]]
}
# wait_gone SECONDS PID... — bounded polling until every PID is dead.
wait_gone() {
	local limit=$1 i p left
	shift
	for ((i = 0; i < limit * 10; i++)); do
		left=0
		for p in "$@"; do alive "$p" && left=1; done
		((left)) || return 0
		sleep 0.1
	done
	return 1
}
last_tick() { sed -n 's/.* tick=\([0-9][0-9]*\).*/\1/p' "$1" | tail -1; }
qemu_pid_of() { jq -r 'select(.phase=="RUNNING") | .qemu_pid' "$TMP/$1.events" | head -1; }

# Peer on worker.sock as UID: what it sees (refused by the worker, or by the
# file system before it gets there).
cat >"$TMP/peer.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect-failed errno=%d" % e.errno)
    sys.exit(0)
try:
    data = s.recv(64)
except socket.timeout:
    print("no-answer")
    sys.exit(0)
print("closed" if not data else "answered %d bytes" % len(data))
PY
chmod 644 "$TMP/peer.py"
peer() { on h1 setpriv --reuid "$1" --regid "$1" --clear-groups "$PY" "$TMP/peer.py" "$RUN_DIR/worker.sock"; }

[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root"; exit 77; }
if "$LAB" status >/dev/null 2>&1; then
	fail "a lab is already up; run '$LAB down' first (not touching it)"
fi
PIDS=()	# workers and QEMUs this test started, killed by PID if left over
cleanup() {
	local p
	for p in "${PIDS[@]}"; do alive "$p" && kill -KILL "$p" 2>/dev/null; done
	rm -rf "$TMP"
	"$LAB" down >/dev/null || echo "WARNING: lab down failed" >&2
}
trap cleanup EXIT

step "lab up (one host); a 1 GiB LUN with a 64 MiB VHD"
"$LAB" up --hosts 1
url=$("$LAB" lun add vm1 1G)
on h1 "$HAVENCTL" --key haven-lab:1 disk format --cluster haven-lab --state-size 256M "$url" >/dev/null
on h1 "$HAVENCTL" --key haven-lab:1 disk create "$url" --size 64M >/dev/null
key1=$(on h1 "$HAVENCTL" --json pr register --key haven-lab:1 "$url" | jq -r .key)
key2=
ACCEL=$(on h1 "$(cd "$(dirname "$0")/../guest" && pwd)/accel-probe" "$KERNEL")
export ACCEL
echo "accelerator: $ACCEL"

step "boot with adopt_timeout_ms=20000, then havend hangs up"
ADOPT_MS=20000 drive h1 1 boot start wait:RUNNING:60 wait-serial:tick=2:30 hangup ||
	{ show boot; fail "boot"; }
wpid=$(cat "$TMP/boot.pid")
qpid=$(qemu_pid_of boot)
PIDS+=("$wpid" "$qpid")
[[ -n $qpid ]] || { show boot; fail "no QEMU pid in the RUNNING event"; }
for _ in $(seq 1 50); do
	grep -q 'havend is gone' "$TMP/boot.worker" && break
	sleep 0.1
done
grep -q 'havend is gone; keeping VM vm1 running for 20 s until a havend adopts it' "$TMP/boot.worker" ||
	{ show boot; fail "the worker did not say it waits for a havend"; }
on h1 test -S "$RUN_DIR/worker.sock" || fail "no $RUN_DIR/worker.sock"

# ticking PID SECONDS — the guest ticks on and QEMU stays the same process.
ticking() {
	local t0 t1 i
	t0=$(last_tick "$TMP/boot.serial")
	[[ -n $t0 ]] || fail "no tick on the serial console yet"
	for ((i = 0; i < $2 * 10; i++)); do
		alive "$wpid" || fail "the worker $wpid exited with nobody attached"
		alive "$1" || fail "QEMU $1 exited with nobody attached"
		sleep 0.1
	done
	t1=$(last_tick "$TMP/boot.serial")
	((t1 > t0 + 5)) || fail "the guest did not tick on: tick $t0 -> $t1 in $2 s"
	echo "QEMU $1 under worker $wpid, nobody attached: tick $t0 -> $t1 in $2 s"
}
ticking "$qpid" 2

step "worker.sock: only root may adopt"
got=$(peer "$VM_UID")
[[ $got == closed ]] || fail "uid $VM_UID (QEMU's own) on worker.sock: '$got', expected the worker to close it"
grep -q "worker.sock: refused uid $VM_UID" "$TMP/boot.worker" ||
	{ show boot; fail "the worker did not log the refusal of uid $VM_UID"; }
echo "uid $VM_UID (QEMU's uid): $got; worker: $(grep -o "refused uid $VM_UID.*" "$TMP/boot.worker" | head -1)"
got=$(peer "$OTHER_UID")
[[ $got == connect-failed* ]] || fail "uid $OTHER_UID reached worker.sock: '$got'"
echo "uid $OTHER_UID: $got (the run dir is 0700)"
ticking "$qpid" 1

step "a new havend adopts the VM and stops it"
on h1 "$DRIVER" --adopt "$RUN_DIR" --serial-log "$TMP/boot.serial" \
	stop:1500 wait:STOPPED:30 wait:EXIT:10 >"$TMP/adopt.events" 2>"$TMP/adopt.driver" ||
	{ cat "$TMP/adopt.events" "$TMP/adopt.driver"; show boot; fail "adoption"; }
hello=$(head -1 "$TMP/adopt.events")
echo "hello: $hello"
jq -e --argjson q "$qpid" --argjson w "$wpid" \
	'.hello and .phase=="RUNNING" and .qemu_pid==$q and .worker_pid==$w and .generation==1 and .name=="vm1" and .adopt_timeout_ms==20000' \
	<<<"$hello" >/dev/null || fail "unexpected hello (QEMU $qpid, worker $wpid): $hello"
jq -e 'select(.phase=="STOPPED" and (.detail | test("exited with status 0")))' "$TMP/adopt.events" >/dev/null ||
	{ cat "$TMP/adopt.events"; fail "the adopted VM did not stop cleanly"; }
wait_gone 5 "$wpid" "$qpid" || fail "worker $wpid or QEMU $qpid still runs after the stop"
if on h1 test -e "$RUN_DIR/worker.sock"; then fail "worker.sock left behind after a clean exit"; fi
(($(grep -c ' start ' "$TMP/boot.serial") == 1)) || fail "the guest booted more than once"
grep -q 'adopted by pid' "$TMP/boot.worker" || { show boot; fail "the worker did not log the adoption"; }
echo "adopted: $(grep -o 'adopted by pid.*' "$TMP/boot.worker" | head -1)"
echo "stopped: $(jq -c 'select(.phase=="STOPPED")' "$TMP/adopt.events")"

step "adopt_timeout_ms=2000 and nobody adopts: QEMU is killed, the worker says why"
ADOPT_MS=2000 drive h1 2 orphan start wait:RUNNING:60 wait-serial:tick=:30 hangup ||
	{ show orphan; fail "boot (orphan)"; }
t0=$(date +%s%N)
wpid=$(cat "$TMP/orphan.pid")
qpid=$(qemu_pid_of orphan)
PIDS+=("$wpid" "$qpid")
wait_gone 6 "$wpid" "$qpid" || { show orphan; fail "worker $wpid or QEMU $qpid still runs 6 s after havend went"; }
ms=$((($(date +%s%N) - t0) / 1000000))
((ms <= 4500)) || fail "worker and QEMU took $ms ms to go (timeout 2000 ms)"
grep -q 'no havend adopted VM vm1 within 2 s; QEMU killed' "$TMP/orphan.worker" ||
	{ show orphan; fail "the worker's log does not say why the VM stopped"; }
if on h1 test -e "$RUN_DIR/worker.sock"; then fail "worker.sock left behind"; fi
echo "gone after $ms ms: $(grep -o 'FAILED:.*' "$TMP/orphan.worker" | head -1)"

step "adopt_timeout_ms=0: the VM stops with its havend, as before"
ADOPT_MS=0 drive h1 3 plain start wait:RUNNING:60 hangup || { show plain; fail "boot (plain)"; }
wpid=$(cat "$TMP/plain.pid")
qpid=$(qemu_pid_of plain)
PIDS+=("$wpid" "$qpid")
wait_gone 3 "$wpid" "$qpid" || { show plain; fail "worker $wpid or QEMU $qpid outlived havend"; }
if grep -q 'havend is gone' "$TMP/plain.worker"; then fail "the worker waited for a havend"; fi
if on h1 test -e "$RUN_DIR/worker.sock"; then fail "worker.sock exists without adopt_timeout_ms"; fi
echo "worker and QEMU gone with havend; no worker.sock"
echo "PASS"
