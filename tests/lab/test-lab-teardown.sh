#!/bin/bash
# test-lab-teardown.sh — `lab down` leaves the machine exactly as it found it:
# after a clean up, after up crashed half-way (HAVEN_LAB_FAIL_AFTER), and after
# up failed half-way by itself; and `down` is safe to run twice.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
STATE=${HAVEN_LAB_DIR:-/run/haven-lab}
T0=$EPOCHREALTIME
WORK=$(mktemp -d /tmp/haven-lab-teardown.XXXXXX)

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
secs() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }

# snapshot FILE — what the lab may touch on this machine
snapshot() {
	{
		echo "# netns"
		ip netns list
		echo "# root links"
		ip -br link
		echo "# mounts"
		cat /proc/self/mountinfo
		echo "# paths"
		for p in /run/netns "$STATE" /etc/haven /var/lib/haven; do
			[[ -e $p ]] && echo "exists $p"
		done
		echo "# processes in namespaces"
		local ns
		for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }'); do
			echo "$ns: $(ip netns pids "$ns" | sort -n | tr '\n' ' ')"
		done
	} >"$1"
}

# lab_pids — pids of every process in the lab's namespaces right now
lab_pids() {
	local ns
	for ns in $(ip netns list | awk '$1 ~ /^haven-/ { print $1 }'); do
		ip netns pids "$ns"
	done | sort -n | tr '\n' ' '
}

# check_clean WHAT PIDS — compare with the first snapshot; PIDS must be gone
check_clean() {
	local what=$1 pids=$2 p st
	snapshot "$WORK/after"
	if ! diff -u "$WORK/before" "$WORK/after" >"$WORK/diff"; then
		cat "$WORK/diff" >&2
		fail "$what: the machine differs from before (diff above)"
	fi
	grep -q haven /proc/self/mountinfo && fail "$what: a haven mount is left"
	for p in $pids; do
		# the lab's processes were reparented to init; allow it a moment to reap
		for _ in $(seq 50); do
			st=$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null || true)
			[[ -z $st || $st == Z ]] && break
			sleep 0.1
		done
		[[ -z $st || $st == Z ]] || fail "$what: process $p ($(cat "/proc/$p/comm" 2>/dev/null)) is still alive"
	done
	echo "$what: clean"
}

[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root"; exit 77; }
if "$LAB" status >/dev/null 2>&1; then
	fail "a lab is already up; run '$LAB down' first (not touching it)"
fi
cleanup() {
	"$LAB" down >/dev/null 2>&1 || "$LAB" down || echo "WARNING: lab down failed" >&2
	rm -rf "$WORK"
}
trap cleanup EXIT
snapshot "$WORK/before"

step "up + down"
"$LAB" up
pids=$(lab_pids)
[[ -n $pids ]] || fail "no processes in the lab after up"
if "$LAB" up 2>"$WORK/err"; then fail "a second 'lab up' succeeded"; fi
grep -q "lab down" "$WORK/err" || fail "second 'lab up' does not suggest 'lab down': $(cat "$WORK/err")"
"$LAB" down
check_clean "up+down" "$pids"

step "down again"
out=$("$LAB" down) || fail "second 'lab down' failed"
[[ $out == "lab: nothing to tear down" ]] || fail "second 'lab down' printed '$out'"

for stage in san services; do
	step "crash: up killed after stage '$stage', then down"
	rc=0
	(HAVEN_LAB_FAIL_AFTER=$stage "$LAB" up) 2>/dev/null || rc=$?
	((rc == 137)) || fail "up with HAVEN_LAB_FAIL_AFTER=$stage exited $rc, expected 137 (SIGKILL)"
	[[ -e /run/netns/haven-san ]] || fail "after the crash, haven-san does not exist (the hook fired too early?)"
	pids=$(lab_pids)
	[[ -n $pids ]] || fail "after the crash at '$stage', no lab process is running (tgtd expected)"
	"$LAB" down
	check_clean "crash after $stage" "$pids"
done

step "failure: up fails after stage 'hosts' and cleans up by itself"
rc=0
HAVEN_LAB_FAIL_AFTER=hosts:error "$LAB" up 2>"$WORK/err" || rc=$?
((rc != 0)) || fail "up with HAVEN_LAB_FAIL_AFTER=hosts:error succeeded"
grep -q "tearing down" "$WORK/err" || fail "failed up did not say it tears down: $(cat "$WORK/err")"
check_clean "failed up" ""
out=$("$LAB" down) || fail "'lab down' after a failed up failed"
[[ $out == "lab: nothing to tear down" ]] || fail "'lab down' after a self-cleaned failed up printed '$out'"

echo "PASS: test-lab-teardown ($(secs "$T0") s)"
