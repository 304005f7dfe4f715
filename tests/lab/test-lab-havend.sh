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
"$LAB" heal haven-h1 mgmt
wait_for 30 "h1 quorate again" members_are h1 '[true,[1,2,3]]'

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
