#!/bin/bash
# test-lab-san-access.sh — the SAN admits Haven only (issue 15, deliverable
# 1), on the lab's real tgtd, which requires CHAP and lists each host's one
# initiator name and address: root's havenctl and havend log in with the
# chap file (havend's probes report san reachable; keys are derived from the
# cluster's secret, not from its name); an unprivileged uid cannot read the
# chap file or the key secret, and its logins, reads, registrations, writes
# and preemptions of a cluster LUN all fail with a clear reason, changing
# nothing; a wrong secret and a foreign initiator name are refused with
# their own message; havend refuses to start on a chap file of mode 0644 or
# a malformed one (one line), and starts again once it is fixed.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
NHOSTS=2
T0=$EPOCHREALTIME

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"

lab_test_begin san-access

# as_nobody HOST CMD... — CMD on HOST as uid/gid 65534, no groups.
as_nobody() {
	local h=$1
	shift
	"$LAB" exec "$h" setpriv --reuid=65534 --regid=65534 --clear-groups \
		--inh-caps=-all "$@"
}
reach_is() {
	[[ $(status "$1" | jq -r --argjson n "$2" \
		'.storage[] | select(.node_id == $n) | .pools[] | select(.pool == "san") | .reachable') == "$3" ]]
}
both_reach() { reach_is h1 1 true && reach_is h1 2 true; }
h2_back() { reach_is h1 2 true && reach_is h2 2 true; }
# expected_key HOST NODE — the key of NODE as DESIGN §4 and issue 15 derive
# it, computed here independently from HOST's copy of the cluster secret:
# tag = HMAC-SHA256(SHA-256(authkey), "haven-pr\0" cluster "\0" node_be32).
expected_key() {
	"$LAB" exec "$1" /usr/bin/python3 -c '
import hashlib, hmac, struct, sys
key = hashlib.sha256(open("/etc/corosync/authkey", "rb").read()).digest()
node = int(sys.argv[1])
tag = hmac.new(key, b"haven-pr\0haven-lab\0" + struct.pack(">I", node), hashlib.sha256).digest()[:4]
print("0x%08x%08x" % (struct.unpack(">I", tag)[0], node))' "$2"
}
# refused OUTPUT WANT WHAT — the command failed and said WANT.
refused() {
	[[ $1 == *"$2"* ]] || fail "$3: expected '$2', got: $1"
	echo "refused as expected ($3): $(grep -m1 -F "$2" <<<"$1")"
}
keys_json() { ctl h1 --json pr keys "$URL"; }

step "2 hosts, CHAP and per-host ACLs on the target; root's havenctl formats web1-disk; havend on both"
lab_cluster 2
"$LAB" exec san tgtadm --lld iscsi --op show --mode target | tee "$TMP/target.txt" | sed -n '/Account information/,$p'
grep -q 'haven-lab' "$TMP/target.txt" || fail "the target has no CHAP account bound"
grep -q 'iqn.2026-11.io.haven:haven-h1' "$TMP/target.txt" || fail "the target's ACL does not name h1's initiator"
sed -n '/ACL information/,$p' "$TMP/target.txt" | grep -qx '[[:space:]]*ALL' &&
	fail "the target still admits ALL initiators"
wait_for 20 "both havends' probes to log in and report san reachable" both_reach
echo "havend's probes log in with CHAP on both hosts"

step "root's havenctl reads the keys; they derive from the cluster's secret"
before=$(keys_json) || fail "root's havenctl cannot read the keys"
key1=$(jq -r '.keys[0]' <<<"$before")
echo "keys: $(jq -c .keys <<<"$before")"
crc=$(python3 -c 'import zlib; print("%08x" % zlib.crc32(b"haven-lab"))')
[[ $key1 == *00000001 ]] || fail "node 1's key $key1 does not end in its node id"
[[ $key1 != "0x${crc}00000001" ]] || fail "node 1's key is the guessable CRC of the cluster name"
[[ $key1 == $(expected_key h1 1) ]] || fail "node 1's key $key1 is not $(expected_key h1 1), the secret's"
[[ $(expected_key h2 2) != "0x${crc}00000002" && $(expected_key h2 2) != "0x${key1:2:8}00000002" ]] ||
	fail "node 2's key shares node 1's tag or the CRC's"

step "an unprivileged uid: no secret to read, no login, no read, register, write or preempt"
as_nobody h1 cat /etc/haven/chap >/dev/null 2>&1 && fail "uid 65534 can read /etc/haven/chap"
as_nobody h1 cat /etc/corosync/authkey >/dev/null 2>&1 && fail "uid 65534 can read the cluster's secret"
want="the target refused the login (CHAP): run as root with the chap file readable"
out=$(as_nobody h1 "$HAVENCTL" pr keys "$URL" 2>&1) && fail "uid 65534 read the keys: $out"
refused "$out" "$want" "pr keys"
[[ $out == *"/etc/haven/chap: cannot read: Permission denied"* ]] || fail "pr keys does not say why: $out"
out=$(as_nobody h1 "$HAVENCTL" disk info "$URL" 2>&1) && fail "uid 65534 read the disk: $out"
refused "$out" "$want" "disk info"
out=$(as_nobody h1 "$HAVENCTL" pr register --key 0x4141414100000009 "$URL" 2>&1) && fail "uid 65534 registered: $out"
refused "$out" "$want" "pr register"
out=$(as_nobody h1 "$HAVENCTL" --key 0x4141414100000009 disk create "$URL" --size 4M 2>&1) && fail "uid 65534 wrote: $out"
refused "$out" "$want" "disk create (a write)"
out=$(as_nobody h1 "$HAVENCTL" pr preempt --key 0x4141414100000009 --victim "$key1" "$URL" 2>&1) &&
	fail "uid 65534 preempted node 1: $out"
refused "$out" "$want" "pr preempt"
out=$(as_nobody h1 "$HAVENCTL" pr preempt --key 0x4141414100000009 --victim haven-lab:1 "$URL" 2>&1) &&
	fail "uid 65534 derived node 1's key: $out"
refused "$out" "cannot derive the key haven-lab:1" "a key by name"
# libiscsi itself, with the host's own initiator name and no secret.
out=$(as_nobody h1 timeout 10 iscsi-readcapacity16 -i iqn.2026-11.io.haven:haven-h1 "$URL" 2>&1) &&
	fail "uid 65534 logged in with iscsi-readcapacity16: $out"
echo "refused as expected (iscsi-readcapacity16): $(head -1 <<<"$out")"
[[ $(keys_json) == "$before" ]] || fail "the keys changed: $(keys_json)"

step "a wrong secret and a foreign initiator name are refused, each with its reason"
"$LAB" exec h1 sh -c 'cp -p /etc/haven/chap /etc/haven/chap.good &&
	awk "{ print \$1, \$2, \"wrongsecret0123\" }" /etc/haven/chap.good >/etc/haven/chap'
out=$(ctl h1 pr keys "$URL" 2>&1) && fail "a wrong secret logged in: $out"
refused "$out" "the target refused the login (CHAP)" "wrong secret"
"$LAB" exec h1 mv /etc/haven/chap.good /etc/haven/chap
out=$(HAVEN_INITIATOR=iqn.2026-11.io.haven:intruder ctl h1 pr keys "$URL" 2>&1) &&
	fail "a foreign initiator name logged in: $out"
refused "$out" "the target does not admit initiator iqn.2026-11.io.haven:intruder" "foreign initiator"
keys_json >/dev/null || fail "root's havenctl cannot log in after the chap file came back"

step "havend refuses a chap file of mode 0644, and a malformed one, with one line"
pid=$("$LAB" exec h2 cat /run/havend.pid)
"$LAB" exec h2 kill "$pid"
wait_for 15 "h2's havend to stop" bash -c "! kill -0 $pid 2>/dev/null"
"$LAB" exec h2 chmod 0644 /etc/haven/chap
rc=0
out=$("$LAB" exec h2 timeout 10 "$HAVEND" 2>&1) || rc=$?
[[ $rc == 1 ]] || fail "havend with a 0644 chap file exited $rc: $out"
[[ $(wc -l <<<"$out") == 1 ]] || fail "havend said more than one line: $out"
refused "$out" "havend: /etc/haven/chap: readable or writable by group or others (mode 0644); run chmod 600 /etc/haven/chap" "mode 0644"
"$LAB" exec h2 sh -c 'cp -p /etc/haven/chap /etc/haven/chap.good && chmod 600 /etc/haven/chap &&
	echo "iqn.2026-11.lab.haven:other haven-lab" >>/etc/haven/chap'
rc=0
out=$("$LAB" exec h2 timeout 10 "$HAVEND" --check-config 2>&1) || rc=$?
[[ $rc == 1 ]] || fail "havend --check-config took a malformed chap file (exit $rc): $out"
refused "$out" "havend: /etc/haven/chap:2: expected 'TARGET USER SECRET' (three fields)" "malformed"
[[ $out != *"$(cat "${HAVEN_LAB_DIR:-/run/haven-lab}/san/chap.secret")"* ]] || fail "havend printed the secret"
"$LAB" exec h2 sh -c 'mv /etc/haven/chap.good /etc/haven/chap && chmod 600 /etc/haven/chap'
start_havend h2
wait_for 30 "h2's havend back, reporting san reachable" h2_back
for h in h1 h2; do
	if "$LAB" exec $h grep -rqF "$(cat "${HAVEN_LAB_DIR:-/run/haven-lab}/san/chap.secret")" /var/log /var/lib/haven /run/haven 2>/dev/null; then
		fail "the CHAP secret appears in $h's logs or state"
	fi
done
awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "PASS (%.1f s)\n", b - a }'
