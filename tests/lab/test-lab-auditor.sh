#!/bin/bash
# test-lab-auditor.sh — the auditor every lab test can run (tests/lab/auditor)
# catches a VM running on two hosts at once, and nothing else: fake QEMUs
# (comm qemu-system-x86, `-uuid U` in their command line) — U1 on h1, U2 on
# h2 and a SIGSTOPped U1 on h2 — pass; the stopped U1 on h2 resumed for 0.5 s
# fails, naming U1, both hosts and both pids.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

HERE=$(dirname "$0")
LAB=$HERE/lab
AUDITOR=$HERE/auditor

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

[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root"; exit 77; }
command -v python3 >/dev/null || fail "needs python3"
if "$LAB" status >/dev/null 2>&1; then
	fail "a lab is already up; run '$LAB down' first (not touching it)"
fi

WORK=$(mktemp -d /tmp/haven-auditor.XXXXXX)
FAKES=()
cleanup() {
	local p
	for p in "${FAKES[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	# A sampler left running by a failed step (ours: its pid file is in WORK).
	for p in "$WORK"/*/auditor.pid; do
		if [[ -f $p ]]; then "$AUDITOR" check "$(dirname "$p")" >/dev/null 2>&1 || true; fi
	done
	"$LAB" down >/dev/null || echo "WARNING: lab down failed" >&2
	rm -rf "$WORK"
}
trap cleanup EXIT

# A fake QEMU: a script named qemu-system-x86_64 run by the real python
# binary (not through env or a shim, which would exec again and rename the
# process): its comm is the script's name cut to 15 characters,
# "qemu-system-x86", as a real QEMU's is, and its command line carries -uuid.
PYTHON=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')
mkdir -p "$WORK/bin"
cat >"$WORK/bin/qemu-system-x86_64" <<EOF
#!$PYTHON
import time
while True:
    time.sleep(3600)
EOF
chmod 755 "$WORK/bin/qemu-system-x86_64"

# fake_qemu HOST UUID — start a fake QEMU in HOST; sets FAKE to its pid. `lab
# exec` execs nsenter, which execs the command: the background job's pid is
# the fake QEMU's once the execs are done.
fake_qemu() {
	"$LAB" exec "$1" "$WORK/bin/qemu-system-x86_64" -name "guest=fake-$2" -uuid "$2" \
		</dev/null >/dev/null 2>&1 &
	FAKE=$!
	FAKES+=("$FAKE")
	wait_for 5 "the fake QEMU $2 on $1 (pid $FAKE)" is_fake_qemu "$FAKE"
}
is_fake_qemu() {
	[[ $(cat "/proc/$1/comm" 2>/dev/null) == qemu-system-x86 ]] &&
		tr '\0' ' ' <"/proc/$1/cmdline" | grep -q -- '-uuid '
}
state_of() { awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat"; }
has_state() { [[ $(state_of "$1") == "$2" ]]; }
in_host() { "$LAB" pids "$1" | grep -qx "$2"; }

step "lab up (2 hosts)"
"$LAB" up --hosts 2

step "fakes: U1 on h2 stopped first, then U1 on h1 and U2 on h2; audited for 1 s"
U1=8f2c1d4e-0000-4000-8000-000000000001
U2=8f2c1d4e-0000-4000-8000-000000000002
fake_qemu h2 "$U1"
STOPPED=$FAKE
kill -STOP "$STOPPED"
wait_for 5 "the U1 copy on h2 to be stopped" has_state "$STOPPED" T
in_host h2 "$STOPPED" || fail "the fake QEMU $STOPPED is not in h2 (lab pids h2)"
"$AUDITOR" start "$WORK/a1"
fake_qemu h1 "$U1"
RUNNING=$FAKE
in_host h1 "$RUNNING" || fail "the fake QEMU $RUNNING is not in h1 (lab pids h1)"
fake_qemu h2 "$U2"
OTHER=$FAKE
sleep 1 # the audited interval itself, not a wait for anything
has_state "$STOPPED" T || fail "the stopped U1 on h2 is running"
out=$("$AUDITOR" check "$WORK/a1") || { echo "$out"; fail "the auditor failed a lab with no VM on two hosts"; }
echo "$out"
grep -q 'at most 2 VMs running at once' <<<"$out" ||
	fail "the auditor did not see exactly 2 running VMs (U1 on h1, U2 on h2; the stopped U1 must not count)"
samples=$(jq .samples "$WORK/a1/summary.json")
((samples >= 10)) || fail "only $samples samples in 1 s"
echo "RESULT: auditor: $(jq -r '"\(.samples) samples in \(.duration_s) s, mean interval \(.mean_interval_ms) ms, longest gap \(.max_gap_ms) ms, \(.mean_sample_ms) ms a sample, CPU \(.cpu_percent)% of one core"' "$WORK/a1/summary.json")"

step "U1 on h2 resumed for 0.5 s while U1 runs on h1: a violation"
"$AUDITOR" start "$WORK/a2"
kill -CONT "$STOPPED"
sleep 0.5 # the overlap itself
kill -KILL "$STOPPED"
wait "$STOPPED" 2>/dev/null || true
if out=$("$AUDITOR" check "$WORK/a2"); then
	echo "$out"
	fail "the auditor passed with U1 on h1 and h2 at once"
fi
# Its FAIL line is this step's expected outcome: shown indented.
while IFS= read -r l; do echo "    $l"; done <<<"$out"
line=$(grep 'VIOLATION' <<<"$out" | head -1)
[[ -n $line ]] || fail "no VIOLATION line in the auditor's summary"
for want in "$U1" "haven-h1 (pid $RUNNING)" "haven-h2 (pid $STOPPED)"; do
	[[ $line == *"$want"* ]] || fail "the violation does not name '$want': $line"
done
[[ $line != *"$U2"* ]] || fail "U2 (on h2 only) was reported: $line"
grep -q "VIOLATION: VM $U1 runs on haven-h1 (pid $RUNNING) and haven-h2 (pid $STOPPED)" "$WORK/a2/violations" ||
	fail "OUTDIR/violations does not log it: $(cat "$WORK/a2/violations")"
secs=$(jq '.violations[0].seconds' "$WORK/a2/summary.json")
awk -v s="$secs" 'BEGIN { exit !(s >= 0.3 && s <= 1.0) }' ||
	fail "the violation lasted $secs s by the auditor's samples, expected about 0.5 s"
echo "RESULT: auditor caught U1 on two hosts; seen for $secs s of the 0.5 s overlap"

step "U1 on h1 and U2 on h2 alone again: passes"
"$AUDITOR" start "$WORK/a3"
sleep 0.3 # the audited interval
"$AUDITOR" check "$WORK/a3" || fail "the auditor failed after the overlap ended"

for p in "$RUNNING" "$OTHER"; do
	kill -KILL "$p"
	wait "$p" 2>/dev/null || true
done
FAKES=()
echo "PASS"
