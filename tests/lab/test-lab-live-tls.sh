#!/bin/bash
# test-lab-live-tls.sh — the live migration stream is encrypted and
# authenticated (issue 15): a capture of the migration network (tcpdump on
# the lab's migration switch, a passive listener like anyone on that
# network) during live migrations of a guest whose RAM holds a marker line
# naming its boot (the test guest's marker=):
#  1. the default (TLS with the move's key): the marker is nowhere in the
#     capture, though the whole stream went through it; the VM moved live,
#     same boot; no key is left in either worker's keys.psk. Then back
#     live over TLS: the target's QEMU, a source now, is keyed again.
#  2. the control: both havends with the failpoint live-cleartext (the old
#     stream in clear): the same capture holds the marker.
#  3. a wrong key (the source's havend with the failpoint live-key-wrong):
#     QEMU's TLS handshake refuses it, the move falls back to quick
#     migration by itself and the VM runs on the target, same boot.
#  4. a replayed key (the target's havend with the failpoint
#     live-key-replay hands its worker the key of the VM's previous move,
#     which was valid then): refused the same way; quick migration follows.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
NHOSTS=3

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"

command -v tcpdump >/dev/null || { echo "SKIP: tcpdump is missing (scripts/deps installs it)"; exit 77; }

CAPTURE_PID=
lab_test_extra_cleanup() {
	[[ -z $CAPTURE_PID ]] || kill "$CAPTURE_PID" 2>/dev/null || true
}
lab_test_begin live-tls

# capture_start NAME — tcpdump on the migration switch (the bridge
# haven-migr in the lab's network namespace) into $TMP/NAME.pcap.
capture_start() {
	CAPTURE_LOG=$TMP/$1.tcpdump
	ip netns exec haven-net tcpdump -i haven-migr -U -s 0 -w "$TMP/$1.pcap" tcp \
		2>"$CAPTURE_LOG" &
	CAPTURE_PID=$!
	listening() { grep -q "listening on" "$CAPTURE_LOG"; }
	wait_for 10 "tcpdump listening" listening
}
capture_stop() {
	kill -INT "$CAPTURE_PID"
	wait "$CAPTURE_PID" || true
	CAPTURE_PID=
}
# markers PCAP — how many whole marker lines of this boot the capture holds.
markers() { grep -a -o "HAVEN-RAM-MARKER boot=$boot" "$1" | wc -l; }
restart_havend() {	# HOST [VAR=VALUE...] — the new havend's environment
	local h=$1
	shift
	# SIGKILL: its VM runs on, and the new havend adopts the worker.
	"$LAB" exec "$h" sh -c 'kill -KILL "$(cat /run/havend.pid)"' 2>/dev/null || true
	gone() { ! "$LAB" exec "$h" sh -c 'kill -0 "$(cat /run/havend.pid)"' 2>/dev/null; }
	wait_for 20 "$h's havend gone" gone
	( [[ $# == 0 ]] || export "$@"; start_havend "$h" )
}
# no_key_left HOST — the VM's keys.psk there names nobody (blanked).
no_key_left() {
	! "$LAB" exec "$1" sh -c "cat /run/haven/vm/$uuid/keys.psk 2>/dev/null" | grep -q haven:
}

step "3 hosts; sec1 on h1 with 4 MiB of its RAM holding a marker line"
lab_cluster 3
mkdir -p "$TMP/audit"
"$AUDITOR" start "$TMP/audit"
ctl h1 vm create sec1 --memory 128M --volume web1-disk --prefer 1 --stop-timeout 3 \
	--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100 journal=on marker=4096" >/dev/null
ctl h1 vm start sec1 >/dev/null
wait_for 60 "sec1 running" phase_is h1 sec1 running
marked() { ctl h1 vm console sec1 --tail 1000 2>/dev/null | grep -q "marker kib=4096"; }
wait_for 30 "sec1's marker written" marked
boot=$(boot_of h1 sec1)
uuid=$(vm_field h1 sec1 uuid)
echo "sec1 boot $boot"

step "1. live migration h1 -> h2 (TLS, the default): no marker in the capture"
capture_start tls
t0=$(now)
ctl h3 vm migrate sec1 --to haven-h2 | tee "$TMP/tls.out"
echo "moved in $(since "$t0") s"
capture_stop
grep -q "moved from host 1 to host 2 (live migration): downtime" "$TMP/tls.out" || fail "sec1 did not move live"
grep -q "quick migration" "$TMP/tls.out" && fail "it fell back to quick migration"
size=$(stat -c %s "$TMP/tls.pcap")
echo "capture: $size bytes, $(markers "$TMP/tls.pcap") marker lines"
(( size > 4 * 1048576 )) || fail "the capture holds $size bytes: the stream did not cross the migration switch"
(( $(markers "$TMP/tls.pcap") == 0 )) || fail "the guest's RAM crossed the migration network in clear"
on_h2() { [[ -n $(last_tick h2 sec1) ]]; }
wait_for 20 "sec1 ticking on h2" on_h2
[[ $(boot_of h2 sec1) == "$boot" ]] || fail "boot id changed"
no_key_left h1 || fail "h1's worker left the key in keys.psk"
no_key_left h2 || fail "h2's worker left the key in keys.psk"
"$LAB" exec h1 grep -q "migrating live to host 2 .*over TLS" /var/log/havend.log ||
	fail "h1's havend did not say the stream went over TLS"
ctl h3 vm migrate sec1 --to haven-h1 | tee "$TMP/back.out"
grep -q "moved from host 2 to host 1 (live migration): downtime" "$TMP/back.out" ||
	fail "sec1 did not move back live over TLS"

step "2. the control: both havends stream in clear (failpoint live-cleartext): the marker is in the capture"
restart_havend h1 HAVEN_FAILPOINTS=live-cleartext
restart_havend h2 HAVEN_FAILPOINTS=live-cleartext
wait_for 30 "all three quorate" members_are h3 '[true,[1,2,3]]'
capture_start clear
ctl h3 vm migrate sec1 --to haven-h2 | tee "$TMP/clear.out"
capture_stop
grep -q "moved from host 1 to host 2 (live migration): downtime" "$TMP/clear.out" || fail "sec1 did not move live in clear"
n=$(markers "$TMP/clear.pcap")
echo "capture: $(stat -c %s "$TMP/clear.pcap") bytes, $n marker lines"
(( n > 1000 )) || fail "the capture of a stream in clear holds $n marker lines: the capture proves nothing"
restart_havend h1
restart_havend h2
wait_for 30 "all three quorate" members_are h3 '[true,[1,2,3]]'

step "3. a wrong key (h2's havend, failpoint live-key-wrong): the handshake refuses it; quick migration follows"
restart_havend h2 HAVEN_FAILPOINTS=live-key-wrong
wait_for 30 "all three quorate" members_are h3 '[true,[1,2,3]]'
capture_start wrong
ctl h3 vm migrate sec1 --to haven-h1 | tee "$TMP/wrong.out"
capture_stop
grep -E -q "live migration to host 1 failed on host 2: .*(TLS|handshake)" "$TMP/wrong.out" ||
	fail "the refused handshake is not in the timeline"
grep -q "moved from host 2 to host 1 (quick migration): downtime" "$TMP/wrong.out" ||
	fail "it did not fall back to quick migration"
(( $(markers "$TMP/wrong.pcap") == 0 )) || fail "guest RAM on the migration network after a refused handshake"
"$LAB" exec h1 grep -q "TLS handshake failed" /var/log/haven/sec1.qemu.log ||
	fail "the target's QEMU did not refuse the handshake"
on_h1() { [[ -n $(last_tick h1 sec1) ]]; }
wait_for 20 "sec1 ticking on h1" on_h1
[[ $(boot_of h1 sec1) == "$boot" ]] || fail "boot id changed after the fallback"
restart_havend h2
wait_for 30 "all three quorate" members_are h3 '[true,[1,2,3]]'

step "4. a replayed key (h1's havend, failpoint live-key-replay): the previous move's key opens no other"
restart_havend h1 HAVEN_FAILPOINTS=live-key-replay
wait_for 30 "all three quorate" members_are h3 '[true,[1,2,3]]'
# h1, the source, keeps this move's own key (and remembers it): a live move.
ctl h3 vm migrate sec1 --to haven-h2 | tee "$TMP/replay1.out"
grep -q "moved from host 1 to host 2 (live migration): downtime" "$TMP/replay1.out" ||
	fail "the move before the replay did not go live"
# h1, the target now, hands its worker the key of the move before.
ctl h3 vm migrate sec1 --to haven-h1 | tee "$TMP/replay2.out"
"$LAB" exec h1 grep -q "failpoint live-key-replay: VM $uuid gets its previous move's key" /var/log/havend.log ||
	fail "h1's havend did not replay the key: the step proves nothing"
grep -E -q "live migration to host 1 failed on host 2: .*(TLS|handshake)" "$TMP/replay2.out" ||
	fail "the replayed key was not refused by the handshake"
grep -q "moved from host 2 to host 1 (quick migration): downtime" "$TMP/replay2.out" ||
	fail "it did not fall back to quick migration after the replayed key"
wait_for 20 "sec1 ticking on h1" on_h1
[[ $(boot_of h1 sec1) == "$boot" ]] || fail "boot id changed after the replay"
restart_havend h1
wait_for 30 "all three quorate" members_are h3 '[true,[1,2,3]]'

step "the auditor saw no VM twice"
"$AUDITOR" check "$TMP/audit" || fail "the auditor saw a VM on two hosts at once"
echo "PASS"
