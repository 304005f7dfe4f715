#!/bin/bash
# test-lab-watchdog.sh — the lab's watchdog (tests/lab/watchdog-standin) for
# h2 with a 2 s timeout, petted from inside h2 through a FIFO under /tmp:
# while petted h2 stays up; when the petting writer is killed h2 loses power
# (`lab kill`) about 2 s after the last pet; a writer that closes without
# 'V' and a new one that opens in time (havend restarting) keep h2 up; a
# writer that ends with 'V' disarms it and h2 stays up.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

HERE=$(dirname "$0")
LAB=$HERE/lab
STANDIN=$HERE/watchdog-standin
TIMEOUT_S=2

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
# wait_for SECONDS WHAT CMD... — bounded polling, every 0.05 s
wait_for() {
	local limit=$1 what=$2 i
	shift 2
	for ((i = 0; i < limit * 20; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	fail "timed out after ${limit}s waiting for $what"
}
secs() { awk -v a="$1" -v b="${2:-$EPOCHREALTIME}" 'BEGIN { printf "%.2f", b - a }'; }

[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root"; exit 77; }
command -v python3 >/dev/null || fail "needs python3"
if "$LAB" status >/dev/null 2>&1; then
	fail "a lab is already up; run '$LAB down' first (not touching it)"
fi

# /tmp is shared by the machine and every lab host: the FIFO is seen by the
# stand-in (here) and by the writer in h2 (as havend would, from
# `[watchdog] device = $WORK/h2`).
WORK=$(mktemp -d /tmp/haven-wd.XXXXXX)
FIFO=$WORK/h2
KIDS=()
cleanup() {
	local p
	for p in "${KIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	"$LAB" down >/dev/null || echo "WARNING: lab down failed" >&2
	rm -rf "$WORK"
}
trap cleanup EXIT

alive() { kill -0 "$1" 2>/dev/null; }
h2_up() { [[ -n $("$LAB" pids h2) ]]; }
h2_down() { [[ -z $("$LAB" pids h2) ]]; }
logged() { grep -q "$2" "$1"; }

# standin LOG — start the stand-in for h2 in the background; sets SP
standin() {
	"$STANDIN" haven-h2 "$FIFO" "$TIMEOUT_S" >"$1" 2>&1 &
	SP=$!
	KIDS+=("$SP")
	wait_for 5 "the stand-in to wait for a writer" logged "$1" "waiting for a writer"
	[[ -p $FIFO ]] || fail "the stand-in did not make $FIFO a FIFO"
}
# writer SCRIPT — run sh -c SCRIPT in h2 with the FIFO open as fd 3 (never
# handed to its children: a sleep holding it would outlive a killed writer);
# sets WP
writer() {
	"$LAB" exec h2 sh -c "exec 3>\"\$1\"; $1" sh "$FIFO" </dev/null >/dev/null 2>&1 &
	WP=$!
	KIDS+=("$WP")
}
PET='while :; do printf . >&3; sleep 0.5 3>&-; done'
# stays_up SECONDS — h2 keeps its processes and the stand-in has not fired
stays_up() {
	local t0=$EPOCHREALTIME
	while awk -v a="$t0" -v b="$EPOCHREALTIME" -v s="$1" 'BEGIN { exit !(b - a < s) }'; do
		h2_up || fail "h2 went down after $(secs "$t0") s while it should stay up; stand-in: $(cat "$LOG")"
		! logged "$LOG" expired || fail "the stand-in fired: $(cat "$LOG")"
		sleep 0.2
	done
}

step "lab up (2 hosts)"
"$LAB" up --hosts 2

step "stand-in for h2 (timeout $TIMEOUT_S s), not armed before a writer opens it"
LOG=$WORK/standin1.log
standin "$LOG"
stays_up 2.5
alive "$SP" || fail "the stand-in exited before any writer: $(cat "$LOG")"

step "petted every 0.5 s from inside h2: h2 stays up for 4 s"
writer "$PET"
wait_for 5 "the stand-in to be armed" logged "$LOG" "armed (first byte"
stays_up 4

step "the petting writer killed: h2 is reset"
# (stderr: no "Killed" job notice from bash)
{
	kill -KILL "$WP"
	t_kill=$EPOCHREALTIME
	wait "$WP" || true
} 2>/dev/null
wait_for 6 "h2 to lose power" h2_down
t_down=$EPOCHREALTIME
rc=0
wait "$SP" || rc=$?
((rc == 3)) || fail "the stand-in exited $rc, expected 3 (expired, host killed): $(cat "$LOG")"
cat "$LOG"
grep -q "watchdog expired: haven-h2 reset" "$LOG" || fail "no 'watchdog expired: haven-h2 reset' in the log"
after=$(secs "$t_kill" "$t_down")
# The last pet came 0..0.5 s before the kill: expiry 1.5..2 s after it, plus
# lab kill's own time.
awk -v s="$after" 'BEGIN { exit !(s >= 1.4 && s <= 3.0) }' ||
	fail "h2 went down $after s after the writer was killed, expected 1.5-2.5 s"
late=$(sed -n 's/.*without a pet, \([0-9]*\) ms late.*/\1/p' "$LOG")
echo "RESULT: watchdog: writer killed -> h2 down after $after s (timeout $TIMEOUT_S s, last pet up to 0.5 s before the kill); timer fired $late ms late"
"$LAB" wait h1 quorate 1 15 >/dev/null || fail "h1 did not see h2 leave"

step "power h2 on again"
"$LAB" start h2
"$LAB" wait h2 quorate 2 20 >/dev/null || fail "h2 did not rejoin"

step "a writer that goes without 'V' and a new one that opens in time (a restart): h2 stays up"
LOG=$WORK/standin2.log
standin "$LOG"
writer 'printf ... >&3; sleep 1 3>&-; printf . >&3'
wait "$WP" || fail "the first writer failed"
wait_for 2 "the stand-in to see the writer go" logged "$LOG" "writer closed without 'V'"
sleep 0.5 # the restart gap, well inside the 2 s timeout
writer 'for i in 1 2 3 4 5 6; do printf . >&3; sleep 0.5 3>&-; done; printf V >&3'
stays_up 3.5
wait "$WP" || fail "the second writer failed"
wait_for 3 "the stand-in to disarm" logged "$LOG" "disarmed"
rc=0
wait "$SP" || rc=$?
((rc == 0)) || fail "the stand-in exited $rc after a disarm: $(cat "$LOG")"
cat "$LOG"

step "after the disarm h2 stays up past the timeout"
stays_up 3
echo "PASS"
