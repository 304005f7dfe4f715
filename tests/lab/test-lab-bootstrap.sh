#!/bin/bash
# test-lab-bootstrap.sh — a cluster made only with havenctl (issue 17), on
# 3 lab hosts with nothing configured (lab up --bare): no corosync.conf is
# written by hand anywhere.
#  1. cluster init on h1 (corosync.conf, authkey, haven.conf, a token);
#     cluster join on h2 with it; a reused token and a wrong one are
#     refused on h3 with what to do, and change nothing there; a new token
#     (cluster token) joins h3. Every member runs the same corosync.conf,
#     the pool's CHAP file came with the join, corosync counts 3 votes.
#  2. a VM on h3 fails over when h3 loses power (lab kill).
#  3. node remove of an up host is refused; of the powered-off h3, it
#     leaves corosync expecting 2 votes, quorate, and the state 2 hosts.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
NHOSTS=3

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"

lab_test_begin bootstrap

step "lab up --bare: 3 hosts, nothing configured"
"$LAB" up --bare --hosts 3 >/dev/null
for i in 1 2 3; do
	for f in /etc/corosync/corosync.conf /etc/corosync/authkey /etc/haven/haven.conf; do
		"$LAB" exec "h$i" test ! -e "$f" || fail "h$i has $f after up --bare"
	done
done
# What differs per host, and only that, is the operator's: the NICs, the
# watchdog, how VMs run. init and join write [node] and [cluster].
cat >"$TMP/host.conf" <<CONF
[interfaces]
management = mgmt0
storage = stor0
migration = migr0
vm = haven-vm$(printf ' %s' $(cat "${HAVEN_LAB_DIR:-/run/haven-lab}/vm-vlan-bridges" 2>/dev/null))

[watchdog]
device = none

[vm]
accel = tcg
adopt_timeout_s = 30
CONF
chmod 644 "$TMP/host.conf"
cp "$KERNEL" "$TMP/guest.elf"
chmod 644 "$TMP/guest.elf"

votes() { # HOST FIELD: corosync-quorumtool's "Expected votes" etc.
	"$LAB" exec "$1" corosync-quorumtool -s 2>/dev/null | sed -n "s/^$2:[[:space:]]*//p"
}
join() { # HOST TOKEN: cluster join, the token on stdin
	local i=${1#h}
	"$LAB" exec "$1" "$HAVENCTL" cluster join --token - --link "10.77.1.$((10 + i))" \
		--node-name "haven-$1" --host-conf "$TMP/host.conf" --no-start <<<"$2"
}

step "1. cluster init on h1"
token=$(ctl h1 cluster init --name haven-lab --link 10.77.1.11 --node-name haven-h1 \
	--host-conf "$TMP/host.conf" --logfile /var/log/corosync.log --no-start)
[[ $token == haven1:10.77.1.11:* ]] || fail "init printed no token: '$token'"
[[ $("$LAB" exec h1 stat -c %a /etc/corosync/authkey) == 400 ]] || fail "the authkey is not 0400"
[[ $("$LAB" exec h1 stat -c %a /var/lib/haven/join-tokens) == 600 ]] || fail "the tokens are not 0600"
! "$LAB" exec h1 grep -rqs "${token##*:}" /var/log /etc/haven || fail "the token's secret is in a log or haven.conf"
"$LAB" services h1 >/dev/null
start_havend h1
wait_for 30 "h1 quorate alone" members_are h1 "[true,[1]]"

step "1. cluster join on h2"
t0=$(now)
join h2 "$token" || fail "h2 could not join"
"$LAB" services h2 >/dev/null
start_havend h2
wait_for 30 "h1 and h2 members" members_are h1 "[true,[1,2]]"
echo "h2 joined and is a member $(since "$t0") s after cluster join"
cmp <("$LAB" exec h1 cat /etc/corosync/corosync.conf) <("$LAB" exec h2 cat /etc/corosync/corosync.conf) ||
	fail "h1 and h2 run different corosync.conf files"

step "1. a reused token and a wrong one are refused on h3, which stays bare"
if out=$(join h3 "$token" 2>&1); then fail "a used token joined h3"; fi
echo "$out"
grep -q "used already" <<<"$out" || fail "the reused token's error does not say it was used"
token3=$(ctl h1 cluster token)
wrong=${token3%?}$([[ ${token3: -1} == 0 ]] && echo 1 || echo 0)
if out=$(join h3 "$wrong" 2>&1); then fail "a wrong token joined h3"; fi
echo "$out"
grep -q "secret does not match" <<<"$out" || fail "the wrong token's error does not say so"
if out=$(join h3 "haven1:10.77.1.11:5408:nonsense" 2>&1); then fail "a malformed token joined h3"; fi
grep -q "not a join token" <<<"$out" || fail "a malformed token's error does not say so"
for f in /etc/corosync/corosync.conf /etc/corosync/authkey /etc/haven/haven.conf /etc/haven/chap; do
	"$LAB" exec h3 test ! -e "$f" || fail "a refused join left $f on h3"
done

step "1. cluster join on h3 with a new token"
join h3 "$token3" || fail "h3 could not join"
"$LAB" services h3 >/dev/null
start_havend h3
for h in h1 h2 h3; do
	wait_for 30 "$h sees 3 members" members_are "$h" "[true,[1,2,3]]"
done
for h in h2 h3; do
	cmp <("$LAB" exec h1 cat /etc/corosync/corosync.conf) <("$LAB" exec "$h" cat /etc/corosync/corosync.conf) ||
		fail "h1 and $h run different corosync.conf files"
done
[[ $("$LAB" exec h3 stat -c %a /etc/haven/chap) == 600 ]] || fail "h3 has no CHAP file of mode 0600 from the join"
[[ $(votes h1 "Expected votes") == 3 ]] || fail "corosync does not expect 3 votes: $(votes h1 'Expected votes')"
wait_for 20 "3 hosts in the state" bash -c "[[ \$('$LAB' exec h1 '$HAVENCTL' --json node list | jq '.nodes | length') == 3 ]]"

step "2. a VM on h3 fails over when h3 loses power"
URL=$("$LAB" lun add web1 1G)
ctl h1 --key haven-lab:1 disk format --cluster haven-lab --state-size 256M "$URL" >/dev/null
ctl h1 --key haven-lab:1 disk create "$URL" --size 64M >/dev/null
ctl h1 pool add san --portal 10.77.2.2:3260 --target iqn.2026-11.lab.haven:san >/dev/null
ctl h1 volume add web1-disk --pool san --lun "${URL##*/}" --size 1G >/dev/null
mkdir -p "$TMP/audit"
"$AUDITOR" start "$TMP/audit"
ctl h1 vm create web1 --memory 96M --volume web1-disk --prefer 3 --stop-timeout 3 \
	--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100" >/dev/null
ctl h1 vm start web1 >/dev/null
wait_for 60 "web1 running" phase_is h1 web1 running
[[ $(vm_field h1 web1 owner) == 3 ]] || fail "web1 is not on its preferred host 3"
t0=$(now)
"$LAB" kill h3 >/dev/null
wait_for 30 "web1 running elsewhere" runs_elsewhere web1 3 h1
echo "web1 runs on node $(vm_field h1 web1 owner) $(since "$t0") s after h3 lost power"
"$AUDITOR" check "$TMP/audit" || fail "the auditor saw a VM on two hosts at once"

step "3. node remove: an up host refused, the powered-off h3 retired"
rc=0
ctl h1 node remove haven-h2 >/dev/null 2>&1 || rc=$?
[[ $rc == 4 ]] || fail "node remove of the up h2 was not refused (exit $rc)"
[[ $(votes h1 "Expected votes") == 3 ]] || fail "a refused node remove changed the expected votes"
ctl h1 node remove haven-h3
wait_for 20 "corosync expecting 2 votes" bash -c "[[ \$('$LAB' exec h1 corosync-quorumtool -s 2>/dev/null | sed -n 's/^Expected votes:[[:space:]]*//p') == 2 ]]"
for h in h1 h2; do
	[[ $(votes "$h" "Expected votes") == 2 ]] || fail "$h's corosync does not expect 2 votes"
	[[ $(votes "$h" "Quorate") == Yes ]] || fail "$h is not quorate after node remove"
	"$LAB" exec "$h" grep -q "haven-h3" /etc/corosync/corosync.conf && fail "$h's corosync.conf still has haven-h3"
done
"$LAB" exec h1 corosync-quorumtool -s | sed -n '/^Votequorum/,/^Quorum:/p'
[[ $(ctl h1 --json node list | jq '.nodes | length') == 2 ]] || fail "the state still has 3 hosts"
members_are h1 "[true,[1,2]]" || fail "h1 is not quorate with h1 and h2"
echo "PASS"
