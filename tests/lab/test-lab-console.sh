#!/bin/bash
# test-lab-console.sh — a VM's interactive consoles (issue 16) on 3 lab hosts
# ([vm] log_max_mb = 1), with the Linux test guest, whose service answers
# commands typed on its serial port ("echo TEXT", "flood LINES").
#  0. bad input, nothing changed: --attach with --follow, a non-loopback
#     --listen, an unknown VM; from a host that does not run the VM, the
#     error names the host that does.
#  1. havenctl vm console web1 --attach on a pty, as web1's operator (a real
#     uid): a command typed into the guest is answered; Ctrl-] leaves and
#     the pty's modes are restored (RESULT: the answer's round trip).
#  2. a viewer may not attach; an operator of another VM may not either.
#  3. a second attach takes over: the first session is told by whom and
#     ends (exit 1), the second is answered.
#  4. the serial log: what the session typed and got is in it; a flood typed
#     through the console is capped ([vm] log_max_mb, web1.serial.1); after
#     the session the log still grows.
#  5. VNC: nothing listens before; havenctl vm vnc (loopback port, then a
#     Unix socket) serves the RFB handshake ("RFB 003.008"); a viewer may not
#     serve it; after it stops, nothing listens again.
# Exit 0 on pass; 77 (skip) when not root or the Linux guest cannot be
# built; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
CONSOLE_CLIENT=$(cd "$(dirname "$0")" && pwd)/console-client
NHOSTS=3
GUEST_IP=10.77.4.10
OPERATOR=60402		# operator of web1
VIEWER=60401
OTHER=60403		# operator of db1 only

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"

[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root"; exit 77; }
if [[ ! -s $LINUX_DIR/vmlinuz || ! -s $LINUX_DIR/initramfs.gz ]]; then
	echo "building the Linux test guest (cmake --build $BUILD --target haven-linux-guest)"
	if ! cmake --build "$BUILD" --target haven-linux-guest >/dev/null 2>&1 ||
		[[ ! -s $LINUX_DIR/vmlinuz ]]; then
		echo "SKIP: the Linux test guest cannot be built here (see tests/guest/linux/README.md)"
		exit 77
	fi
fi

VNC_PID=
lab_test_begin console
lab_test_extra_cleanup() { [[ -z $VNC_PID ]] || kill "$VNC_PID" 2>/dev/null || true; }

# as UID HOST ARGS... — havenctl as that uid on HOST (no groups).
as() { local uid=$1 host=$2; shift 2
	"$LAB" exec "$host" setpriv --reuid "$uid" --regid "$uid" --clear-groups "$HAVENCTL" "$@"; }
as_cmd() { local uid=$1 host=$2; shift 2
	echo "$LAB" exec "$host" setpriv --reuid "$uid" --regid "$uid" --clear-groups "$HAVENCTL" "$@"; }
# expect_rc RC WORDS CMD... — CMD exits RC and says WORDS.
expect_rc() { local want=$1 words=$2 rc=0 out; shift 2
	out=$("$@" 2>&1) || rc=$?
	[[ $rc == "$want" ]] || fail "'$*' exited $rc, expected $want: $out"
	grep -qF -- "$words" <<<"$out" || fail "'$*' does not say '$words': $out"
	echo "  exit $rc: $(head -1 <<<"$out")"; }
serial_has() { ctl "$owner" vm console web1 --tail 0 2>/dev/null | grep -qF -- "$1"; }
log_size() { "$LAB" exec "$owner" stat -c %s "/var/log/haven/$1" 2>/dev/null || echo 0; }
# qemu_listens — a listening socket of web1's QEMU, TCP or Unix (none is
# the point: viewers reach VNC only through havenctl and havend).
qemu_listens() { "$LAB" exec "h$owner" ss -Hlp 2>/dev/null | grep -F "pid=$qpid," || true; }

step "3 hosts ([vm] log_max_mb = 1); web1, the Linux guest; roles"
lab_cluster 3 "log_max_mb = 1"
linux_guest_ready || fail "the Linux test guest is not built"
linux_guest_create web1 web1-disk "$GUEST_IP" 0a:77:04:00:00:0a
ctl h1 vm create db1 --memory 32M >/dev/null
ctl h1 role grant viewer "uid:$VIEWER"
ctl h1 role grant --vm web1 operator "uid:$OPERATOR"
ctl h1 role grant --vm db1 operator "uid:$OTHER"
ctl h1 vm start web1 >/dev/null
wait_for 60 "web1 running" phase_is h1 web1 running
owner=h$(vm_field h1 web1 owner)
other=h$(( ${owner#h} % 3 + 1 ))
qpid=$(qemu_pid "$owner" "$(vm_field h1 web1 uuid)")
[[ -n $qpid ]] || fail "no QEMU of web1 on $owner"
wait_for 240 "web1's service on its serial console" serial_has "config tick_ms="
echo "web1 on $owner (QEMU pid $qpid)"; ctl h1 role list

step "0. bad input: clear errors, nothing changed"
expect_rc 2 "goes with neither" ctl "$owner" vm console web1 --attach --follow
expect_rc 2 "loopback" ctl "$owner" vm vnc web1 --listen 0.0.0.0:5901
expect_rc 2 "not both" ctl "$owner" vm vnc web1 --listen 127.0.0.1:0 --socket /tmp/x
expect_rc 1 "no VM named 'nope'" ctl "$owner" vm console nope --attach
expect_rc 1 "runs on haven-$owner" ctl "$other" vm console web1 --attach
expect_rc 1 "'havenctl vm vnc web1' on that host" ctl "$other" vm vnc web1
phase_is h1 web1 running || fail "web1 is no longer running"

step "1. web1's operator types into the guest through vm console --attach (a pty)"
out=$(python3 "$CONSOLE_CLIENT" type "hello-$$" $(as_cmd "$OPERATOR" "$owner" vm console web1 --attach)) ||
	fail "the operator's session failed"
echo "$out"
echo "RESULT: a command typed through vm console --attach answered in $(sed -n 's/answer_ms=//p' <<<"$out") ms (Enter to the guest's answer, TCG guest)"

step "2. a viewer, and an operator of another VM, may not attach"
expect_rc 4 "may not make VM operation requests on web1" as "$VIEWER" "$owner" vm console web1 --attach
expect_rc 4 "may not make VM operation requests on web1" as "$OTHER" "$owner" vm console web1 --attach
expect_rc 4 "may not" as "$VIEWER" "$owner" vm vnc web1

step "3. a second attach takes over, and the first session is told"
python3 "$CONSOLE_CLIENT" takeover $(as_cmd "$OPERATOR" "$owner" vm console web1 --attach) ||
	fail "the takeover did not go as documented"

step "4. the serial log: written while attached, capped, written after"
serial_has "console echo hello-$$" || fail "the session's answer is not in the serial log"
serial_has "console echo after-takeover" || fail "the second session's answer is not in the serial log"
t0=$(now)
python3 "$CONSOLE_CLIENT" type "flood 9000" "$LAB" exec "$owner" "$HAVENCTL" vm console web1 --attach >/dev/null ||
	fail "the flood through the console failed"
echo "RESULT: 9000 lines of 150 bytes typed for and read back through the console in $(since "$t0") s (the guest's UART under TCG)"
wait_for 10 "web1.serial rotated" "$LAB" exec "$owner" test -s /var/log/haven/web1.serial.1
echo "web1.serial $(log_size web1.serial) bytes, web1.serial.1 $(log_size web1.serial.1) (cap 1 MiB, 1.35 MB flooded)"
(( $(log_size web1.serial.1) >= 1 << 20 )) || fail "web1.serial.1 holds less than the cap"
(( $(log_size web1.serial) <= 4 << 20 && $(log_size web1.serial.1) <= 4 << 20 )) ||
	fail "the serial log is over its cap"
t1=$(ticks "$owner" web1)
wait_for 20 "web1's ticks in the log after the session" bash -c "(( \$('$LAB' exec $owner '$HAVENCTL' vm console web1 --tail 4096 | sed -n 's/.* tick=\([0-9]*\).*/\1/p' | tail -1) > ${t1:-0} + 5 ))"
echo "ticks after the sessions: $t1 -> $(ticks "$owner" web1)"

step "5. VNC: nothing listens; vm vnc serves the RFB handshake, then nothing listens again"
[[ -z $(qemu_listens) ]] || fail "web1's QEMU listens: $(qemu_listens)"
"$LAB" exec "$owner" setpriv --reuid "$OPERATOR" --regid "$OPERATOR" --clear-groups \
	"$HAVENCTL" vm vnc web1 >"$TMP/vnc.out" 2>"$TMP/vnc.err" &
VNC_PID=$!
wait_for 10 "vm vnc's address" test -s "$TMP/vnc.out"
addr=$(head -1 "$TMP/vnc.out")
echo "vm vnc listens on $addr"
[[ $addr == 127.0.0.1:* ]] || fail "vm vnc listens on $addr"
for i in 1 2; do
	hs=$("$LAB" exec "$owner" python3 "$CONSOLE_CLIENT" vnc 127.0.0.1 "${addr##*:}") || fail "VNC handshake $i failed"
	echo "viewer $i: $hs"
	[[ $hs == "RFB 003.008 "* ]] || fail "no RFB 003.008: $hs"
done
[[ -z $(qemu_listens) ]] || fail "web1's QEMU listens with a viewer: $(qemu_listens)"
kill "$VNC_PID"; wait "$VNC_PID" 2>/dev/null || true; VNC_PID=
! "$LAB" exec "$owner" ss -Hltn "sport = :${addr##*:}" | grep -q . || fail "port ${addr##*:} still listens after vm vnc stopped"
sock=/run/haven-console-vnc.$$
"$LAB" exec "$owner" "$HAVENCTL" vm vnc web1 --socket "$sock" >"$TMP/vnc2.out" 2>&1 &
VNC_PID=$!
wait_for 10 "vm vnc's socket" "$LAB" exec "$owner" test -S "$sock"
[[ $("$LAB" exec "$owner" stat -c %a "$sock") == 600 ]] || fail "the socket is not 0600"
hs=$("$LAB" exec "$owner" python3 "$CONSOLE_CLIENT" vnc unix "$sock") || fail "VNC over the Unix socket failed"
echo "viewer on $sock: $hs"
kill "$VNC_PID"; wait "$VNC_PID" 2>/dev/null || true; VNC_PID=
! "$LAB" exec "$owner" test -e "$sock" || fail "$sock left behind"
phase_is h1 web1 running || fail "web1 is no longer running"

ctl h1 vm stop web1 >/dev/null
wait_for 60 "web1 stopped" phase_is h1 web1 stopped
echo "PASS"
