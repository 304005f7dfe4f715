#!/bin/bash
# test-lab-package.sh — Haven as an operator installs it (issue 17):
#  - scripts/package builds haven_*.deb from this tree; it holds havend,
#    haven-worker, havenctl, their man pages, havend.service and the sample
#    haven.conf, and depends on no test-only package (cmocka);
#  - it installs with apt-get; `havend --check-config` passes on the sample
#    from its installed path; the unit verifies (systemd-analyze verify);
#  - a 1-host lab runs the installed havend, havenctl and haven-worker: a VM
#    starts and its guest ticks;
#  - started as systemd starts a Type=notify service, havend tells
#    $NOTIFY_SOCKET READY=1 once it serves, and adopts the running VM.
# The package stays installed (what the issue asks: it installs here).
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
TOP=$(realpath "$(dirname "$0")/../..")
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")

fail() { echo "FAIL: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root"; exit 77; }

step() { echo "== $*"; }

step "scripts/package builds the .deb"
deb=$("$TOP/scripts/package" "$BUILD/package") || fail "scripts/package failed"
[[ -f $deb ]] || fail "no package at '$deb'"
contents=$(dpkg-deb -c "$deb" | awk '{ print $6 }')
for f in ./usr/sbin/havend ./usr/sbin/havenctl ./usr/libexec/haven/haven-worker \
	./usr/share/man/man8/havend.8.gz ./usr/share/man/man8/havenctl.8.gz \
	./usr/share/man/man5/haven.conf.5.gz ./usr/lib/systemd/system/havend.service \
	./usr/share/doc/haven/examples/haven.conf; do
	grep -qx -- "$f" <<<"$contents" || fail "the package lacks $f"
done
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
! grep -qi cmocka <<<"$depends" || fail "the package depends on cmocka"
[[ $depends == *corosync* && $depends == *qemu-system-x86* ]] ||
	fail "the package does not depend on corosync and QEMU"

step "it installs; the installed havend checks the sample; the unit verifies"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	--allow-downgrades "$deb" >/dev/null || fail "apt-get install $deb failed"
[[ $(dpkg-query -W -f='${Version}' haven) == "$(dpkg-deb -f "$deb" Version)" ]] ||
	fail "haven $(dpkg-deb -f "$deb" Version) is not the installed version"
/usr/sbin/havend --check-config -c /usr/share/doc/haven/examples/haven.conf ||
	fail "havend --check-config rejects the sample haven.conf"
out=$(systemd-analyze verify /usr/lib/systemd/system/havend.service 2>&1) ||
	fail "systemd-analyze verify: $out"
[[ -z $out ]] || fail "systemd-analyze verify says: $out"
grep -qx "KillMode=process" /usr/lib/systemd/system/havend.service ||
	fail "havend.service would kill the VMs with havend"
grep -qx "Type=notify" /usr/lib/systemd/system/havend.service ||
	fail "havend.service is not Type=notify"

# The lab, on the installed programs.
export HAVEN_HAVEND=/usr/sbin/havend HAVEN_HAVENCTL=/usr/sbin/havenctl
. "$(dirname "$0")/failover-lib.sh"
lab_test_begin package

step "a 1-host lab on the installed havend, havenctl and haven-worker"
lab_cluster 1
"$LAB" exec h1 grep -q "VM workers run /usr/libexec/haven/haven-worker" /var/log/havend.log ||
	fail "havend does not run the installed worker: $("$LAB" exec h1 grep 'VM workers run' /var/log/havend.log)"
ctl h1 vm create web1 --memory 64M --volume web1-disk --disk-bus ide --kernel "$TMP/guest.elf" \
	--append "tick_ms=100" >/dev/null
ctl h1 vm start web1 >/dev/null
wait_for 60 "web1 running" phase_is h1 web1 running
ticking() { [[ -n $(last_tick h1 web1) ]]; }
wait_for 30 "web1's guest ticking" ticking
boot=$(boot_of h1 web1)
echo "web1 runs on the installed binaries, boot $boot"

step "havend as a Type=notify service: READY=1 on \$NOTIFY_SOCKET, the VM adopted"
"$LAB" exec h1 sh -c 'p=$(cat /run/havend.pid); kill "$p"; while kill -0 "$p" 2>/dev/null; do sleep 0.1; done'
/usr/bin/python3 - "$TMP/notify.sock" >"$TMP/notify.out" 2>&1 <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(60)
while True:
    msg = s.recv(4096).decode()
    print(msg.replace("\n", " | "), flush=True)
    if "READY=1" in msg.split("\n"):
        break
PY
listener=$!
wait_for 10 "the notify socket" test -S "$TMP/notify.sock"
"$LAB" exec h1 setsid -f sh -c 'echo $$ >/run/havend.pid; exec env NOTIFY_SOCKET="$0" /usr/sbin/havend >>/var/log/havend.log 2>&1' \
	"$TMP/notify.sock" </dev/null
wait "$listener" || fail "no READY=1 from havend: $(cat "$TMP/notify.out")"
cat "$TMP/notify.out"
grep -q "STATUS=node haven-h1: serving" "$TMP/notify.out" || fail "no STATUS with READY=1"
wait_for 60 "web1 adopted" "$LAB" exec h1 grep -q "adopted its worker" /var/log/havend.log
wait_for 30 "web1 running" phase_is h1 web1 running
[[ $(boot_of h1 web1) == "$boot" ]] || fail "web1 was restarted, not adopted"
echo "PASS"
