#!/bin/bash
# test-lab-havend.sh — havend on every lab host over real corosync: its
# configuration checked with line numbers, every host's havenctl status
# quorate with 3 members, a killed host dropped, a host cut off from the
# management network not quorate (and back after heal), and a user with no
# role refused with a clear message.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
HAVEND=$BUILD/clusterd/havend
HAVENCTL=$BUILD/cli/havenctl

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
wait_for() {
	local limit=$1 what=$2 i
	shift 2
	for ((i = 0; i < limit * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	fail "timed out after ${limit}s waiting for $what"
}
status() { "$LAB" exec "$1" "$HAVENCTL" --json status 2>/dev/null; }
members_are() {
	local s
	s=$(status "$1") || return 1
	[[ $(jq -c '[.quorate, (.members | sort)]' <<<"$s") == "$2" ]]
}
start_havend() {
	"$LAB" exec "$1" setsid -f sh -c 'echo $$ >/run/havend.pid; exec "$@" >/var/log/havend.log 2>&1' \
		havend "$HAVEND" </dev/null
}

[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root"; exit 77; }
if "$LAB" status >/dev/null 2>&1; then
	fail "a lab is already up; run '$LAB down' first (not touching it)"
fi
trap '"$LAB" down >/dev/null || echo "WARNING: lab down failed" >&2' EXIT

step "lab up; haven.conf on every host"
"$LAB" up --hosts 3
for i in 1 2 3; do
	"$LAB" exec "h$i" sh -c "cat >/etc/haven/haven.conf" <<EOF
[node]
name = haven-h$i

[cluster]
name = haven-lab

[interfaces]
management = mgmt0
storage = stor0
migration = migr0

[watchdog]
device = none
EOF
	"$LAB" exec "h$i" "$HAVEND" --check-config || fail "h$i: haven.conf refused"
done

step "a broken configuration is refused with its line and field"
"$LAB" exec h1 sh -c 'printf "[node]\nname = haven-h1\n[interfaces]\nmanagement = mgmt0\nstorage = mgmt0\nbogus = 1\n" >/etc/haven/broken.conf'
if out=$("$LAB" exec h1 "$HAVEND" --check-config -c /etc/haven/broken.conf 2>&1); then
	fail "a broken haven.conf was accepted"
fi
echo "$out"
[[ $out == *"broken.conf:5"* || $out == *"broken.conf:6"* ]] || fail "no line number in: $out"
[[ $out == *"bogus"* ]] || fail "the unknown key is not named: $out"

step "havend on every host: quorate with 3 members"
for i in 1 2 3; do start_havend "h$i"; done
for i in 1 2 3; do
	wait_for 20 "h$i quorate with 3" members_are "h$i" '[true,[1,2,3]]'
done
status h2 | jq -c .

step "the replicated state: a VM created on h1 is seen by every host"
ctl() { local h=$1; shift; "$LAB" exec "$h" "$HAVENCTL" "$@"; }
vm_field() { ctl "$1" --json vm show "$2" 2>/dev/null | jq -r ".$3"; }
has_vm() { ctl "$1" --json vm list 2>/dev/null | jq -e --arg n "$2" 'map(.name) | index($n)' >/dev/null; }
wait_for 20 "3 hosts in the state" bash -c "[[ \$('$LAB' exec h3 '$HAVENCTL' --json node list | jq '.nodes | length') == 3 ]]"
ctl h1 vm create web1 --memory 64M --priority high
for i in 1 2 3; do wait_for 10 "web1 on h$i" has_vm "h$i" web1; done
ctl h3 vm list
ctl h2 vm start web1
wait_for 20 "web1 assigned by the coordinator" bash -c "[[ \$('$LAB' exec h3 '$HAVENCTL' --json vm show web1 | jq -r '.owner // empty') != '' ]]"
echo "web1: desired $(vm_field h3 web1 state), phase $(vm_field h3 web1 phase), owner $(vm_field h3 web1 owner), generation $(vm_field h3 web1 generation)"
[[ $(vm_field h1 web1 state) == running ]] || fail "desired state not replicated"
if ctl h2 vm create web1 --memory 64M 2>/dev/null; then fail "a duplicate VM name was accepted"; fi
events=$(ctl h3 --json events)
jq -e -s 'map(select(.subject == "vm web1")) | length >= 2' <<<"$events" >/dev/null ||
	fail "h3's event log lacks web1's history: $events"
ctl h3 events | tail -4

step "lab kill haven-h3: the others drop it and stay quorate"
"$LAB" kill haven-h3
t0=$EPOCHREALTIME
wait_for 20 "h1 with members 1,2" members_are h1 '[true,[1,2]]'
echo "h1 saw h3 leave after $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }') s"
wait_for 20 "h2 with members 1,2" members_are h2 '[true,[1,2]]'
"$LAB" start haven-h3
start_havend h3
wait_for 30 "h3 back" members_are h1 '[true,[1,2,3]]'

step "lab cut haven-h1 mgmt: h1 is not quorate; heal: back"
"$LAB" cut haven-h1 mgmt
wait_for 20 "h1 not quorate" bash -c "[[ \$('$LAB' exec h1 '$HAVENCTL' --json status | jq .quorate) == false ]]"
wait_for 20 "h2 with members 2,3" members_are h2 '[true,[2,3]]'
if out=$(ctl h1 vm create lonely --memory 32M 2>&1); then fail "a non-quorate host accepted a change"; fi
[[ $out == *"not quorate"* ]] || fail "unclear refusal on the cut-off host: $out"
echo "h1 (cut off): $out"
wait_for 20 "the majority to accept changes" ctl h2 vm create web2 --memory 32M
"$LAB" heal haven-h1 mgmt
wait_for 30 "h1 quorate again" members_are h1 '[true,[1,2,3]]'
wait_for 20 "h1 to receive web2 after healing" has_vm h1 web2
if has_vm h2 lonely; then fail "the cut-off host's change reached the cluster"; fi

step "a whole-cluster restart keeps the state"
for i in 1 2 3; do "$LAB" exec "h$i" sh -c 'kill "$(cat /run/havend.pid)"'; done
sleep 1
for i in 1 2 3; do start_havend "h$i"; done
for i in 1 2 3; do wait_for 20 "h$i back quorate" members_are "h$i" '[true,[1,2,3]]'; done
for i in 1 2 3; do has_vm "h$i" web1 && has_vm "h$i" web2 || fail "h$i lost VMs across the restart"; done

step "a host whose state directory was wiped receives the state"
"$LAB" exec h3 sh -c 'kill "$(cat /run/havend.pid)"; while kill -0 "$(cat /run/havend.pid)" 2>/dev/null; do sleep 0.1; done; rm -f /var/lib/haven/cluster.state'
start_havend h3
wait_for 20 "h3 back" members_are h3 '[true,[1,2,3]]'
wait_for 20 "h3 to receive the VMs" bash -c "'$LAB' exec h3 '$HAVENCTL' --json vm list | jq -e 'map(.name) | index(\"web2\")' >/dev/null"
echo "h3 after a wiped state dir: $(ctl h3 --json vm list | jq -c 'map(.name)')"

step "roles: each role against each request class, with real uids and groups"
as() { local uid=$1 groups=$2 g=(--clear-groups); shift 2
	[[ -n $groups ]] && g=(--groups "$groups")
	"$LAB" exec h1 setpriv --reuid "$uid" --regid "$uid" "${g[@]}" "$HAVENCTL" "$@" >/dev/null 2>&1; }
expect() { local want=$1; shift; local rc=0; as "$@" || rc=$?
	[[ $rc == "$want" ]] || fail "'$*' exited $rc, expected $want"; }
ctl h1 vm create db1 --memory 32M >/dev/null
ctl h1 role grant viewer uid:60401
ctl h1 role grant --vm 'web*' operator uid:60402
ctl h1 role grant admin gid:60500
wait_for 10 "the roles on h1" bash -c "[[ \$('$LAB' exec h1 '$HAVENCTL' --json role list | jq length) == 3 ]]"
ctl h3 role list
#      uid   groups  read           vm op in scope        vm op out of scope    admin
expect 0 60401 ""    status;   expect 0 60401 "" vm list
expect 4 60401 ""    vm stop web1; expect 4 60401 "" vm create v1 --memory 32M
expect 0 60402 ""    vm list;  expect 0 60402 "" vm stop web1
expect 4 60402 ""    vm stop db1;  expect 4 60402 "" vm create v2 --memory 32M
expect 0 60403 60500 vm list;  expect 0 60403 60500 vm stop db1
expect 0 60403 60500 vm create v3 --memory 32M; expect 0 60403 60500 role list
expect 4 60404 ""    status;   expect 4 60404 "" vm list
expect 4 60401 ""    debug log; expect 0 60403 60500 debug log
echo "viewer reads only; operator of web* acts on web1 and not db1; the admin group does everything; no role: nothing"
grep_audit() { "$LAB" exec h1 cat /var/log/haven/audit.log | jq -c "select($1)" | head -1; }
[[ -n $(grep_audit '.uid == 60401 and .result == "denied"') ]] || fail "the viewer's refused change is not in the audit log"
[[ -n $(grep_audit '.uid == 60403 and .request == "vm-create" and .result == "ok"') ]] || fail "the admin group's change is not audited"
echo "audit: $(grep_audit '.uid == 60402 and .target == "db1"')"
ctl h1 role revoke uid:60402
wait_for 10 "the revoke" bash -c "! '$LAB' exec h1 setpriv --reuid 60402 --regid 60402 --clear-groups '$HAVENCTL' vm list >/dev/null 2>&1"

step "havend's log ring, read from the running daemon"
ring=$(ctl h1 --json debug log)
jq -e 'length > 10 and all(.[]; (.time_us > 0) and (.level | length > 0))' <<<"$ring" >/dev/null ||
	fail "debug log: not a list of timed lines: $(head -c 300 <<<"$ring")"
jq -e 'map(.text) | any(test("quorate|coordinator|joined"))' <<<"$ring" >/dev/null ||
	fail "debug log: nothing of what havend did in this test"
ctl h1 debug log | tail -3

step "a user with no role is refused"
if out=$("$LAB" exec h1 setpriv --reuid 60400 --regid 60400 --clear-groups "$HAVENCTL" status 2>&1); then
	fail "uid 60400 was allowed: $out"
fi
[[ $out == *"may not"* && $out == *"role"* ]] || fail "unclear refusal: $out"
echo "$out"
for i in 1 2 3; do
	"$LAB" exec "h$i" sh -c 'kill -0 "$(cat /run/havend.pid)"' || fail "havend on h$i died"
done
echo "PASS"
