#!/bin/bash
# test-lab-auditor.sh — the auditor every lab test can run (tests/lab/auditor)
# catches a VM whose guest executes on two hosts at once, and nothing else.
# Fake QEMUs (comm qemu-system-x86, `-uuid U` in their command line, a vCPU
# thread "CPU 0/TCG" that executes or, with -S, sleeps) — U1 executing on h1,
# U2 on h2, a SIGSTOPped U1 on h2 and a paused U1 on h2 (-S -incoming defer,
# as a migration's target) — pass; the stopped U1 on h2 resumed for 0.5 s
# fails, naming U1, both hosts and both pids; U1 handed over between h1 and
# h2 (one vCPU stops, the other starts ~5 ms later) passes with near misses;
# the paused U1 on h2 executing for 0.5 s beside h1's fails.
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
# Like QEMU 7.2 with -name ...,debug-threads=on it has a vCPU thread named
# "CPU 0/TCG" (without debug-threads=on, the thread keeps the process's name).
# The vCPU executes the guest — 1 ms on a CPU every 5 ms — unless paused: from
# the start with -S (as QEMU with -incoming defer -S), and on SIGUSR2; SIGUSR1
# resumes it. It then sleeps in a futex wait, as a paused QEMU vCPU sleeps on
# its halt condition. Each change is a line "PID paused|running CLOCK_MONOTONIC"
# in $FAKE_QEMU_LOG (paused: when its last spin ended).
PYTHON=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')
mkdir -p "$WORK/bin"
{
	echo "#!$PYTHON"
	cat <<'EOF'
import os, signal, sys, threading, time
argv = sys.argv[1:]
name = argv[argv.index("-name") + 1].split(",") if "-name" in argv else []
go = threading.Event()      # set: the vCPU executes
halt = threading.Event()    # set: stop now (ends its sleep between spins)

def log(what, t):
    with open(os.environ["FAKE_QEMU_LOG"], "a") as f:
        f.write("%d %s %.6f\n" % (os.getpid(), what, t))

def vcpu():
    if "debug-threads=on" in name:
        with open("/proc/self/task/%d/comm" % threading.get_native_id(), "w") as f:
            f.write("CPU 0/TCG")
    last = time.monotonic()
    while True:
        if not go.is_set():
            log("paused", last)
            go.wait()
            log("running", time.monotonic())
        end = time.monotonic() + 0.001
        while time.monotonic() < end:
            pass
        last = time.monotonic()
        halt.wait(0.004)

def pause(signum, frame):
    go.clear()
    halt.set()

def run(signum, frame):
    halt.clear()
    go.set()

signal.signal(signal.SIGUSR1, run)
signal.signal(signal.SIGUSR2, pause)
if "-S" not in argv:
    go.set()
threading.Thread(target=vcpu, daemon=True).start()
while True:
    time.sleep(3600)
EOF
} >"$WORK/bin/qemu-system-x86_64"
chmod 755 "$WORK/bin/qemu-system-x86_64"
export FAKE_QEMU_LOG=$WORK/fakes.log
: >"$FAKE_QEMU_LOG"

# fake_qemu HOST UUID NAME [ARGS...] — start a fake QEMU in HOST with
# `-name NAME -uuid UUID ARGS...`; sets FAKE to its pid. `lab exec` execs
# nsenter, which execs the command: the background job's pid is the fake
# QEMU's once the execs are done.
fake_qemu() {
	local host=$1 uuid=$2 name=$3
	shift 3
	"$LAB" exec "$host" "$WORK/bin/qemu-system-x86_64" -name "$name" -uuid "$uuid" "$@" \
		</dev/null >/dev/null 2>&1 &
	FAKE=$!
	FAKES+=("$FAKE")
	wait_for 5 "the fake QEMU $uuid on $host (pid $FAKE)" is_fake_qemu "$FAKE"
	if [[ $name == *debug-threads=on* ]]; then
		wait_for 5 "the fake QEMU $FAKE's vCPU thread" has_vcpu_thread "$FAKE"
	fi
}
is_fake_qemu() {
	[[ $(cat "/proc/$1/comm" 2>/dev/null) == qemu-system-x86 ]] &&
		tr '\0' ' ' <"/proc/$1/cmdline" | grep -q -- '-uuid '
}
has_vcpu_thread() { cat /proc/"$1"/task/*/comm 2>/dev/null | grep -qx 'CPU 0/TCG'; }
state_of() { awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat"; }
has_state() { [[ $(state_of "$1") == "$2" ]]; }
in_host() { "$LAB" pids "$1" | grep -qx "$2"; }

step "lab up (2 hosts)"
"$LAB" up --hosts 2

step "fakes: U1 on h2 stopped first, then U1 on h1, U1 paused on h2 (-S -incoming defer), U2 on h2 (unnamed threads); audited for 1 s"
U1=8f2c1d4e-0000-4000-8000-000000000001
U2=8f2c1d4e-0000-4000-8000-000000000002
fake_qemu h2 "$U1" "guest=fake-u1,debug-threads=on"
STOPPED=$FAKE
kill -STOP "$STOPPED"
wait_for 5 "the U1 copy on h2 to be stopped" has_state "$STOPPED" T
in_host h2 "$STOPPED" || fail "the fake QEMU $STOPPED is not in h2 (lab pids h2)"
"$AUDITOR" start "$WORK/a1"
fake_qemu h1 "$U1" "guest=fake-u1,debug-threads=on"
RUNNING=$FAKE
in_host h1 "$RUNNING" || fail "the fake QEMU $RUNNING is not in h1 (lab pids h1)"
fake_qemu h2 "$U1" "guest=fake-u1,debug-threads=on" -S -incoming defer
PAUSED=$FAKE
# Without debug-threads=on its thread has no vCPU name: the rule by state.
fake_qemu h2 "$U2" "guest=fake-u2"
OTHER=$FAKE
sleep 1 # the audited interval itself, not a wait for anything
has_state "$STOPPED" T || fail "the stopped U1 on h2 is running"
out=$("$AUDITOR" check "$WORK/a1") || { echo "$out"; fail "the auditor failed a lab with no VM on two hosts"; }
echo "$out"
grep -q 'at most 2 VMs running at once' <<<"$out" ||
	fail "the auditor did not see exactly 2 running VMs (U1 on h1, U2 on h2; the stopped and the paused U1 must not count)"
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

step "U1 on h1 (U1 paused on h2) and U2 on h2 alone again: passes"
"$AUDITOR" start "$WORK/a3"
sleep 0.3 # the audited interval
"$AUDITOR" check "$WORK/a3" || fail "the auditor failed after the overlap ended"

# handover FROM TO — FROM's vCPU stops, TO's starts about 5 ms later (a
# migration's switchover, only quicker: QEMU's downtime is tens of ms).
handover() {
	kill -USR2 "$1"
	sleep 0.005
	kill -USR1 "$2"
}
# 0.23 s apart: each handover falls 30 ms later in the auditor's 50 ms
# sampling grid than the one before, so 5 in a row meet it at every phase
# (a handover that fits between two samples is not even a near miss).
step "U1 handed over h1 -> h2 -> h1, three times, 0.23 s apart: passes (near misses at most)"
mark=$(wc -l <"$FAKE_QEMU_LOG")
"$AUDITOR" start "$WORK/a4"
for i in 1 2 3; do
	sleep 0.23 # U1 executes on one host meanwhile
	handover "$RUNNING" "$PAUSED"
	sleep 0.23
	handover "$PAUSED" "$RUNNING"
done
sleep 0.23
out=$("$AUDITOR" check "$WORK/a4") || { echo "$out"; fail "the auditor failed U1 handed over between hosts"; }
echo "$out"
# Each handover, from the fakes' own log: FROM's last spin ended, then TO's
# first began. A negative gap would be an overlap made by this test.
gaps=$(tail -n +"$((mark + 1))" "$FAKE_QEMU_LOG" |
	awk '$2 == "paused" { t = $3 } $2 == "running" && t { printf "%.1f\n", ($3 - t) * 1000; t = 0 }')
gaps_line=$(paste -sd ' ' <<<"$gaps")
(($(wc -l <<<"$gaps") == 6)) || fail "expected 6 handovers in the fakes' log, got: $gaps"
awk '$1 <= 0 || $1 >= 50 { bad = 1 } END { exit bad }' <<<"$gaps" ||
	fail "a handover was not one (vCPU gaps in ms: $gaps_line)"
nm=$(jq .near_misses "$WORK/a4/summary.json")
((nm >= 1)) || fail "no near miss in 6 handovers: the confirmation was never exercised"
echo "RESULT: 6 handovers (vCPU idle between them: $gaps_line ms): $nm near misses, no violation"

step "U1 paused on h2 starts executing for 0.5 s while U1 runs on h1: a violation"
"$AUDITOR" start "$WORK/a5"
kill -USR1 "$PAUSED"
sleep 0.5 # the overlap itself
kill -USR2 "$PAUSED"
sleep 0.2 # U1 on h1 alone: the violation ends
if out=$("$AUDITOR" check "$WORK/a5"); then
	echo "$out"
	fail "the auditor passed with U1 executing on h1 and h2 at once"
fi
while IFS= read -r l; do echo "    $l"; done <<<"$out"
grep -q "VIOLATION: VM $U1 runs on haven-h1 (pid $RUNNING) and haven-h2 (pid $PAUSED)" "$WORK/a5/violations" ||
	fail "OUTDIR/violations does not log it: $(cat "$WORK/a5/violations")"
grep -q "ended: VM $U1 on one host again" "$WORK/a5/violations" ||
	fail "the violation did not end when U1 on h2 was paused again: $(cat "$WORK/a5/violations")"
secs=$(jq '.violations[0].seconds' "$WORK/a5/summary.json")
awk -v s="$secs" 'BEGIN { exit !(s >= 0.3 && s <= 1.0) }' ||
	fail "the violation lasted $secs s by the auditor's samples, expected about 0.5 s"
echo "RESULT: auditor caught the paused U1 executing beside h1's; seen for $secs s of 0.5 s"

for p in "$RUNNING" "$PAUSED" "$OTHER"; do
	kill -KILL "$p"
	wait "$p" 2>/dev/null || true
done
FAKES=()
echo "PASS"
