#!/bin/bash
# test-lab-upgrade.sh — a rolling upgrade across two builds (issue 17): h3
# runs havend built from an earlier commit of main (PREV_COMMIT, a build
# from before the protocol field: protocol 1), h1 and h2 this tree's.
#  0. The earlier commit built once into the build tree (git archive,
#     -DHAVEN_TESTS=OFF) and reused by later runs; RESULT: its build time.
#  1. h3 starts first, then h1 and h2: the cluster runs at protocol 1
#     (cluster show), node list says 2, 2, 1; web1 runs on h3 (the old
#     build's worker), web2 on h2; every member holds one state (the same
#     seq and digest of its state file, the same node list and status).
#  2. What protocol 1 cannot apply is refused with the host to upgrade
#     (cluster set --cpu-model; vm create's default virtio disk bus); h1's
#     and h2's QEMU reports wait.
#  3. The documented procedure: node drain h3 (web1 leaves it), havend
#     stopped on h3 and this build's started, node resume h3 --failback:
#     the cluster runs at this build's protocol, the waiting QEMU reports are in, the
#     refused request now works, web1 migrates back onto h3; web2's QEMU on
#     h2 never changed.
#  4. havend restarted on h3 once more: web1 is adopted, its QEMU kept.
#  One state again, every acknowledged journal record on its LUN, the
#  auditor quiet. Exit 0 on pass; 77 (skip) when not root or without the
#  repository's history; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
CHECK=$(realpath "${HAVEN_JOURNAL_CHECK:?set HAVEN_JOURNAL_CHECK}")
NHOSTS=3
# main before the protocol field (README: validate compares the hosts'
# machine types): what a member of the previous release runs.
PREV_COMMIT=656b4e4b78748441376c592299ca2b3f7efa5278

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"

[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root"; exit 77; }

# --- 0. the previous build, cached in the build tree ----------------------
PREV=$BUILD/upgrade-prev/$PREV_COMMIT
PREV_HAVEND=$PREV/build/clusterd/havend
if [[ ! -x $PREV_HAVEND ]]; then
	SRC=$(git -C "$(dirname "$0")" rev-parse --show-toplevel 2>/dev/null) &&
		git -C "$SRC" cat-file -e "$PREV_COMMIT^{commit}" 2>/dev/null ||
		{ echo "SKIP: commit $PREV_COMMIT is not in this repository's history"; exit 77; }
	rm -rf "$PREV"
	mkdir -p "$PREV/src"
	t0=$(now)
	git -C "$SRC" archive "$PREV_COMMIT" | tar -x -C "$PREV/src"
	{ cmake -S "$PREV/src" -B "$PREV/build" -DCMAKE_C_COMPILER=gcc \
		-DHAVEN_TESTS=OFF -DHAVEN_LAB_TESTS=OFF &&
		cmake --build "$PREV/build" -j2; } >"$PREV/build.log" 2>&1 ||
		{ tail -20 "$PREV/build.log"; rm -rf "$PREV/build"; fail "the build of $PREV_COMMIT failed"; }
	echo "RESULT: built $PREV_COMMIT (HAVEN_TESTS=OFF, -j2) in $(since "$t0") s"
else
	echo "the build of $PREV_COMMIT is cached in $PREV"
fi

lab_test_begin upgrade

exe_of() { "$LAB" exec "$1" sh -c 'readlink "/proc/$(cat /run/havend.pid)/exe"'; }
havend_alive() { "$LAB" exec "$1" sh -c 'kill -0 "$(cat /run/havend.pid)"' 2>/dev/null; }
stop_havend() {
	"$LAB" exec "$1" sh -c 'kill -TERM "$(cat /run/havend.pid)"' 2>/dev/null || true
	gone() { ! havend_alive "$1"; }
	wait_for 15 "$1's havend to stop" gone "$1"
}
running_protocol() { ctl "$1" --json cluster show | jq -r '.protocol'; }
protocol_is() { [[ $(running_protocol "$1") == "$2" ]]; }
node_field() { ctl "$1" --json node list | jq -r ".nodes[] | select(.node_id == $2) | .$3"; }
# The seq and digest of HOST's state file: SHA-256 of the packed
# ClusterState without its member-local fields (epoch 1, last quorate
# epoch 3), which is what cluster_digest hashes.
state_digest() {
	"$LAB" exec "$1" cat /var/lib/haven/cluster.state | python3 -c '
import hashlib, struct, sys
d = sys.stdin.buffer.read()
n = struct.unpack_from("<Q", d, 8)[0]
p = d[48:48 + n]
def varint(b, i):
    r = s = 0
    while True:
        c = b[i]; i += 1; r |= (c & 0x7f) << s; s += 7
        if c < 0x80:
            return r, i
i, out, seq = 0, bytearray(), 0
while i < len(p):
    start = i
    key, i = varint(p, i)
    f, w = key >> 3, key & 7
    v = 0
    if w == 0:
        v, i = varint(p, i)
    elif w == 2:
        l, i = varint(p, i); i += l
    elif w == 1:
        i += 8
    elif w == 5:
        i += 4
    else:
        sys.exit("wire type %d" % w)
    if f == 2:
        seq = v
    if f not in (1, 3):
        out += p[start:i]
print(seq, hashlib.sha256(out).hexdigest())'
}
# one_state — every member's state file the same seq and digest, and the
# same node list and quorate membership from each havend.
one_state() {
	local a b c
	a=$(state_digest h1) b=$(state_digest h2) c=$(state_digest h3) || return 1
	[[ $a == "$b" && $b == "$c" ]] || return 1
	for h in h1 h2 h3; do
		members_are "$h" '[true,[1,2,3]]' || exit 1
		ctl "$h" --json node list | jq -c '[.nodes[] | [.node_id, .name, .membership, .maintenance, .fence]]'
	done | sort -u | [[ $(wc -l) == 1 ]]
}
show_state() {
	local h
	for h in h1 h2 h3; do echo "$h: $(state_digest "$h")"; done
}

step "1. h3 on the build of $PREV_COMMIT, started first; h1 and h2 on this one"
HAVEND_h3=$PREV_HAVEND LAB_HAVEND_ORDER="3 1 2" lab_cluster 3
[[ $(exe_of h3) == "$PREV_HAVEND" ]] || fail "h3 runs $(exe_of h3), not the previous build"
[[ $(exe_of h1) == "$(realpath "$HAVEND")" ]] || fail "h1 runs $(exe_of h1)"
mkdir -p "$TMP/audit"
"$AUDITOR" start "$TMP/audit"
wait_for 20 "the cluster at protocol 1" protocol_is h1 1
# This build's protocol, as h1 announces it (proto/proto.h HAVEN_PROTOCOL).
NEW=$(node_field h1 1 protocol)
(( NEW >= 2 )) || fail "h1 announces protocol '$NEW'"
[[ $(node_field h1 2 protocol) == "$NEW" && $(node_field h1 3 protocol) == 1 ]] ||
	fail "node list's protocols are not $NEW, $NEW, 1"
ctl h1 node list
ctl h1 cluster show | grep '^protocol'
new_lun web2
for vm in web1 web2; do
	ctl h1 vm create "$vm" --memory 64M --volume "$vm-disk" --prefer "$([[ $vm == web1 ]] && echo 3 || echo 2)" \
		--stop-timeout 3 --disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100 journal=on" >/dev/null
	ctl h1 vm start "$vm" >/dev/null
done
wait_for 60 "web1 running" phase_is h1 web1 running
wait_for 60 "web2 running" phase_is h1 web2 running
[[ $(vm_field h1 web1 owner) == 3 && $(vm_field h1 web2 owner) == 2 ]] ||
	fail "web1 is on $(vm_field h1 web1 owner), web2 on $(vm_field h1 web2 owner) (expected 3 and 2)"
uuid1=$(vm_field h1 web1 uuid) uuid2=$(vm_field h1 web2 uuid)
[[ -n $(qemu_pid h3 "$uuid1") ]] || fail "no QEMU of web1 on h3"
wait_for 20 "one state on all three" one_state
show_state
"$LAB" exec h3 grep -q "unknown kind" /var/log/havend.log && fail "h3 refused a change of a kind it does not know"
qpid2=$(qemu_pid h2 "$uuid2")
t2=$(ticks h2 web2)

step "2. what protocol 1 cannot apply is refused, naming the host to upgrade"
out=$(ctl h1 cluster set --cpu-model Westmere-v1 2>&1) && fail "cluster set --cpu-model was accepted at protocol 1"
grep -q "host haven-h3 runs protocol 1; upgrade it before using --cpu-model" <<<"$out" ||
	fail "cluster set --cpu-model refused without naming h3: $out"
echo "refused: $out"
out=$(ctl h1 vm create web9 --memory 64M --kernel "$TMP/guest.elf" 2>&1) && fail "a VM on virtio disks was created at protocol 1"
grep -q "runs protocol 1; upgrade it before using --disk-bus virtio" <<<"$out" ||
	fail "vm create (virtio) refused without saying why: $out"
echo "refused: $out"
"$LAB" exec h1 grep -q "this host's QEMU report waits" /var/log/havend.log || fail "h1's QEMU report did not wait"
[[ -z $(node_field h3 1 qemu_version) ]] || fail "h1's QEMU was reported at protocol 1"
wait_for 10 "one state after the refusals" one_state

step "3. node drain h3, this build's havend on h3, node resume h3 --failback"
t0=$(now)
ctl h1 node drain haven-h3 >/dev/null
wait_for 90 "web1 off h3" runs_elsewhere web1 3 h1
echo "drained: web1 on h$(vm_field h1 web1 owner) after $(since "$t0") s"
[[ -z $(qemu_pid h3 "$uuid1") ]] || fail "web1's QEMU still runs on the drained h3"
stop_havend h3
start_havend h3
[[ $(exe_of h3) == "$(realpath "$HAVEND")" ]] || fail "h3 runs $(exe_of h3) after the upgrade"
wait_for 30 "h3 back" members_are h3 '[true,[1,2,3]]'
wait_for 20 "the cluster at protocol $NEW" protocol_is h1 "$NEW"
[[ $(node_field h1 3 protocol) == "$NEW" ]] || fail "node list does not say h3 speaks protocol $NEW"
reported() { [[ -n $(node_field h3 1 qemu_version) && -n $(node_field h3 2 qemu_version) ]]; }
wait_for 20 "h1's and h2's QEMU reports" reported
echo "QEMU reports in: h1 $(node_field h3 1 qemu_version), h2 $(node_field h3 2 qemu_version)"
ctl h1 cluster set --cpu-model Westmere-v1 >/dev/null || fail "cluster set --cpu-model refused at protocol $NEW"
ctl h1 cluster show | grep -q '^cpu model: Westmere-v1 (VMs' || fail "the CPU model was not set"
ctl h1 node resume haven-h3 --failback >/dev/null
t0=$(now)
back() { phase_is h1 web1 running && [[ $(vm_field h1 web1 owner) == 3 && -n $(qemu_pid h3 "$uuid1") ]]; }
wait_for 90 "web1 back on h3" back
echo "web1 back on h3 after $(since "$t0") s"
ctl h1 node list
[[ $(qemu_pid h2 "$uuid2") == "$qpid2" ]] || fail "web2's QEMU on h2 changed during the upgrade"
(( $(ticks h2 web2) > t2 )) || fail "web2's guest stopped ticking"

step "4. havend restarted on h3: web1 is adopted, its QEMU kept"
qpid1=$(qemu_pid h3 "$uuid1")
gen=$(vm_field h1 web1 generation)
stop_havend h3
[[ $(qemu_pid h3 "$uuid1") == "$qpid1" ]] || fail "web1's QEMU did not outlive havend"
start_havend h3
wait_for 30 "h3 back" members_are h3 '[true,[1,2,3]]'
wait_for 20 "the adoption" "$LAB" exec h3 grep -q "adopted its worker" /var/log/havend.log
[[ $(qemu_pid h3 "$uuid1") == "$qpid1" && $(vm_field h1 web1 generation) == "$gen" ]] ||
	fail "web1 was not adopted as it ran"
wait_for 20 "one state at the end" one_state
show_state
for h in h1 h2 h3; do
	"$LAB" exec "$h" grep -h "DIVERGENCE\|does not match its digest" /var/log/havend.log &&
		fail "$h saw the members' states differ"
done

step "every acknowledged journal record is on the LUN; the auditor saw no VM twice"
journal_ok h3 web1 "$URL"
"$AUDITOR" check "$TMP/audit" || fail "the auditor saw a VM on two hosts at once"
echo "PASS"
