#!/bin/bash
# test-lab-net.sh — real guests on the network (issue 13), on 3 lab hosts
# offering the guests' bridge haven-vm, with the never-twice auditor on and
# the guest's journal checked at the end. The guest is the Linux test guest
# (tests/guest/linux: Debian's kernel, busybox, a TCP service on port 7)
# with one virtio NIC on haven-vm at 10.77.4.10; the client is the lab's
# haven-client namespace (10.77.4.250) on the same segment.
#  0. bad input, nothing changed: a NIC on a bridge no host offers is
#     refused at create; a VM whose NIC's bridge is gone from the host it is
#     started on fails there, saying "bridge haven-vm does not exist on this
#     host". (VLANs, and a VLAN no host can carry: lab.vlan.)
#  1. the guest boots under Haven and answers the client over TCP; its MAC
#     (answered by the guest, and in the client's neighbour table) is the
#     configured one.
#  2. one TCP connection from the client, asking "count" every 50 ms,
#     survives a live migration: same connection, the counter goes on (same
#     boot), no reconnect; the client's longest wait is printed (RESULT).
#  3. the same connection survives a quick migration (RESULT: its stall),
#     and a drain of the owner (a live move; RESULT: its stall).
#  4. power loss of the owner: the guest boots again on a survivor and
#     answers at the same IP with the same MAC (a new boot); RESULT: the time
#     from the kill to the client's first answer.
# Exit 0 on pass; 77 (skip) when not root or the Linux guest cannot be
# built; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
CHECK=$(realpath "${HAVEN_JOURNAL_CHECK:?set HAVEN_JOURNAL_CHECK}")
NHOSTS=3
GUEST_IP=10.77.4.10

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"

[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root"; exit 77; }
if [[ ! -s $LINUX_DIR/vmlinuz || ! -s $LINUX_DIR/initramfs.gz ]]; then
	echo "building the Linux test guest (cmake --build $BUILD --target haven-linux-guest)"
	if ! cmake --build "$BUILD" --target haven-linux-guest >/dev/null 2>&1 ||
		[[ ! -s $LINUX_DIR/vmlinuz ]]; then
		echo "SKIP: the Linux test guest cannot be built here (its Debian packages cannot be fetched; see tests/guest/linux/README.md)"
		exit 77
	fi
fi

lab_test_begin net
lab_test_extra_cleanup() { net_stream_stop; }

client() { "$LAB" exec client "$@"; }
ask() { net_ask "$GUEST_IP" "$1" "${2:-2}"; }
answers() { ask count >/dev/null 2>&1; }
vm_events() { ctl h1 --json events | jq -r -s --arg s "vm $1" 'map(select(.subject == $s)) | .[].text'; }
event_says() { vm_events "$1" | grep -qF -- "$2"; }
# The client's one connection, "count" every 50 ms, into $STREAM; the
# stream's longest gap from T0 to now (failover-lib.sh).
STREAM=
stream_start() { STREAM=$TMP/stream.log; net_stream_start "$GUEST_IP" "$STREAM"; }
stream_stop() { net_stream_stop; }
stall() { net_stall "$STREAM" "$1"; }

# stall_words "stall_ms=A usual_ms=B ..." — "A ms at most (B ms between answers before)"
stall_words() {
	sed -n 's/.*stall_ms=\([0-9]*\) usual_ms=\([0-9?]*\).*/\1 ms at most (\2 ms between answers before; a request every 50 ms after each answer)/p' <<<"$1"
}

step "3 hosts offering haven-vm; the Linux guest's kernel and initramfs"
STATE_SIZE=512M lab_cluster 3
linux_guest_ready || fail "the Linux test guest is not built"
ctl h1 --json node list | jq -c '[.nodes[] | .vm_bridges]'
mkdir -p "$TMP/audit"
"$AUDITOR" start "$TMP/audit"

step "0. bad input: clear errors, nothing changed"
new_lun bad
if out=$(ctl h1 vm create bad1 --memory 64M --volume bad-disk --nic bridge=haven-nope \
	--disk-bus ide --kernel "$TMP/guest.elf" 2>&1); then
	fail "a NIC on a bridge no host offers was accepted: $out"
fi
echo "$out"
grep -q "no host offers bridge haven-nope" <<<"$out" || fail "the refusal does not name the bridge: $out"
[[ $(ctl h1 --json vm list | jq '[.[] | select(.name == "bad1")] | length') == 0 ]] ||
	fail "bad1 exists after its refusal"

# The bridge gone from h3 after havend offered it: the start there fails
# with tap.c's sentence (the VM is not run off the network).
"$LAB" exec h3 ip link set haven-vm down
"$LAB" exec h3 ip link set haven-vm name haven-vm-away
ctl h1 vm create bad2 --memory 64M --volume bad-disk --prefer 3 --max-restarts 0 \
	--nic bridge=haven-vm --disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100" >/dev/null
ctl h1 vm start bad2 >/dev/null
wait_for 30 "bad2's start on h3 to fail" event_says bad2 "bridge haven-vm does not exist on this host (NIC 0)"
vm_events bad2 | grep -F "does not exist" | head -1
ctl h1 vm stop bad2 >/dev/null 2>&1 || true
wait_for 30 "bad2 stopped" phase_is h1 bad2 stopped
ctl h1 vm delete bad2 >/dev/null
"$LAB" exec h3 ip link set haven-vm-away name haven-vm
"$LAB" exec h3 ip link set haven-vm up

echo "VLANs: lab.vlan (guests on VLANs 10 and 20 of haven-vm)"

step "1. web1, the Linux guest, on haven-vm at $GUEST_IP: it answers the client, with its MAC"
MAC=0a:77:04:00:00:0a
ctl h1 vm create web1 --memory 256M --volume web1-disk --prefer 1 --stop-timeout 3 \
	--nic "bridge=haven-vm,mac=$MAC" \
	--kernel "$TMP/vmlinuz" --initrd "$TMP/initramfs.gz" \
	--append "console=ttyS0 haven.ip=$GUEST_IP/24 haven.port=$NET_PORT tick_ms=100 journal=on" >/dev/null
ctl h1 --json vm show web1 | jq -c .nics
t0=$(now)
ctl h1 vm start web1 >/dev/null
wait_for 60 "web1 running" phase_is h1 web1 running
owner=$(vm_field h1 web1 owner)
"$LAB" exec "h$owner" ip -br link show master haven-vm
wait_for 240 "web1's service answering the client" answers
echo "RESULT: web1 answered the client $(since "$t0") s after vm start (TCG boot)"
[[ $(ask mac) == "mac=$MAC" ]] || fail "the guest says $(ask mac), configured $MAC"
client ip neigh show "$GUEST_IP" | grep -qi "lladdr $MAC" ||
	fail "the client sees $GUEST_IP at $(client ip neigh show "$GUEST_IP"), not $MAC"
[[ $(ask "hello haven") == "hello haven" ]] || fail "no echo"
boot=$(ask boot)
echo "web1 on h$owner: $(ask count); mac=$MAC"

step "2. one TCP connection survives a live migration"
stream_start
dst=$(( owner % 3 + 1 ))
t0=$(now)
ctl h2 vm migrate web1 --to "haven-h$dst" | tee "$TMP/live.out"
grep -q "live migration" "$TMP/live.out" || fail "web1 did not move live"
grep -q "quick migration" "$TMP/live.out" && fail "the live migration fell back to quick"
[[ $(vm_field h1 web1 owner) == "$dst" ]] || fail "web1 is not on h$dst"
res=$(stall "$t0")
echo "$res"
downtime=$(sed -n 's/.*downtime \([0-9.]* [a-z]*\).*/\1/p' "$TMP/live.out" | tail -1)
echo "RESULT: live migration h$owner -> h$dst: the client's connection stalled $(stall_words "$res") (QEMU's downtime ${downtime:-?})"
[[ $(ask boot) == "$boot" ]] || fail "the boot changed: $boot -> $(ask boot)"
owner=$dst

step "3. the same connection survives a quick migration"
dst=$(( owner % 3 + 1 ))
t0=$(now)
ctl h1 vm migrate web1 --to "haven-h$dst" --quick | tee "$TMP/quick.out"
[[ $(vm_field h1 web1 owner) == "$dst" ]] || fail "web1 is not on h$dst"
res=$(stall "$t0")
echo "$res"
echo "RESULT: quick migration h$owner -> h$dst: the client's connection stalled $(stall_words "$res") (Haven's downtime $(sed -n 's/.*downtime \([0-9]* ms\).*/\1/p' "$TMP/quick.out" | tail -1))"
[[ $(ask boot) == "$boot" ]] || fail "the boot changed after the quick migration"
owner=$dst

step "3b. a drain of the owner h$owner keeps the service reachable (a live move, the same connection)"
t0=$(now)
ctl h1 node drain "haven-h$owner" --wait | tail -3
dst=$(vm_field h1 web1 owner)
[[ $dst != "$owner" ]] || fail "web1 is still on the drained h$owner"
res=$(stall "$t0")
echo "$res"
echo "RESULT: drain of h$owner (web1 to h$dst): the client's connection stalled $(stall_words "$res")"
[[ $(ask boot) == "$boot" ]] || fail "the boot changed in the drain"
ctl h1 node resume "haven-h$owner" >/dev/null
first_conn=$(sed -n 's/^connected //p' "$STREAM")
[[ $(grep -c '^connected' "$STREAM") == 1 ]] || fail "the client connected more than once"
stream_stop
grep -q '^closed' "$STREAM" && fail "the connection broke: $(grep '^closed' "$STREAM")"
echo "one connection (client port $first_conn) through the three moves: $(grep -c ' count=' "$STREAM") answers"
owner=$dst

step "4. power loss of the owner h$owner: the service answers again at $GUEST_IP with $MAC"
ask_host=h$(( owner % 3 + 1 ))
t0=$(now)
"$LAB" kill "haven-h$owner" >/dev/null
answers_fast() { ask count 0.5 >/dev/null 2>&1; }
wait_for 240 "web1 answering after the power loss" answers_fast
kill_s=$(since "$t0")
new_owner=$(vm_field "$ask_host" web1 owner)
echo "RESULT: power loss of h$owner -> the client's first answer after $kill_s s (web1 cold-booted on h$new_owner; TCG)"
[[ $new_owner != "$owner" ]] || fail "web1 still owned by the dead h$owner"
[[ $(ask mac) == "mac=$MAC" ]] || fail "after the failover the guest says $(ask mac)"
[[ $(ask boot) != "$boot" ]] || fail "the same boot after a power loss?"
client ip neigh show "$GUEST_IP" | grep -qi "lladdr $MAC" || fail "the client's neighbour entry is not $MAC"
"$LAB" start "haven-h$owner" >/dev/null
start_havend "h$owner"
wait_for 30 "h$owner back" members_are "$ask_host" '[true,[1,2,3]]'

step "auditor and journal"
ctl "$ask_host" vm stop web1 >/dev/null
wait_for 30 "web1 stopped" phase_is "$ask_host" web1 stopped
"$AUDITOR" check "$TMP/audit" || fail "the auditor saw a VM on two hosts"
journal_ok "$ask_host"
echo "PASS"
