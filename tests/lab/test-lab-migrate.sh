#!/bin/bash
# test-lab-migrate.sh — planned moves on 3 lab hosts (real corosync, tgtd,
# QEMU; the never-twice auditor on; journals checked):
#  1. `havenctl vm migrate` (quick) of a ticking guest: same boot id, the
#     tick counter continues, the downtime is reported.
#  2. the target killed during the restore: the saved state is restored on
#     another host (same boot id).
#  2b. the target's storage link cut: its restore fails, and the saved
#     state is restored on another host (not a cold start).
#  3. the source killed during the save: the VM cold-starts on a survivor
#     (one runnable copy, no acknowledged write lost).
#  4. drain of a host running 4 VMs of mixed priority (high and medium
#     leave live, low by quick migration); resume --failback.
#  4b. a drain that cannot finish (anti-affinity) names the VM left.
#  5. [vm] shutdown = migrate: a clean stop of havend drains the host.
# Live migration's own cases are in test-lab-live.sh.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
CHECK=$(realpath "${HAVEN_JOURNAL_CHECK:?set HAVEN_JOURNAL_CHECK}")
NHOSTS=3

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"

lab_test_begin migrate

step "3 hosts; web1 (256 MiB of RAM kept dirty) on h1"
STATE_SIZE=512M lab_cluster 3
mkdir -p "$TMP/audit"
"$AUDITOR" start "$TMP/audit"
ctl h1 vm create web1 --memory 320M --volume web1-disk --prefer 1 --stop-timeout 3 \
	--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100 journal=on dirty=256 dirty_pages_per_tick=4096"
ctl h1 vm start web1 >/dev/null
wait_for 60 "web1 running" phase_is h1 web1 running
has_ticks() { [[ -n $(last_tick h1 web1) ]]; }
wait_for 30 "web1 ticking" has_ticks
sleep 1

# cpu_weight HOST VM — the CPU weight of VM's cgroup on lab host HOST, as
# its QEMU's /proc/PID/cgroup names it (cgroup v1 cpu.shares, or v2
# cpu.weight); cpu_weight_of N — N vCPUs'.
cpu_weight() {
	local pid dir
	pid=$(qemu_pid "$1" "$(vm_field h1 "$2" uuid)")
	[[ -n $pid ]] || return 0
	if [[ -e /sys/fs/cgroup/cgroup.controllers ]]; then
		dir=$(sed -n 's/^0:://p' "/proc/$pid/cgroup")
		cat "/sys/fs/cgroup$dir/cpu.weight" 2>/dev/null
	else
		dir=$(sed -n 's/^[0-9]*:\([^:]*,\)\{0,1\}cpu\(,[^:]*\)\{0,1\}:\(.*\)/\3/p' "/proc/$pid/cgroup")
		cat "/sys/fs/cgroup/cpu$dir/cpu.shares" 2>/dev/null
	fi
}
cpu_weight_of() { [[ -e /sys/fs/cgroup/cgroup.controllers ]] && echo $(($1 * 100)) || echo $(($1 * 1024)); }

step "1. vm migrate web1 --to h2 --quick: same boot, the counter continues"
boot=$(boot_of h1 web1)
tick=$(last_tick h1 web1)
ctl h3 vm migrate web1 --to haven-h2 --quick | tee "$TMP/migrate.out"
grep -q "moved from host 1 to host 2: downtime" "$TMP/migrate.out" || fail "no downtime reported"
[[ $(vm_field h1 web1 owner) == 2 ]] || fail "web1 is not on h2"
ticking_h2() { [[ -n $(last_tick h2 web1) ]]; }
wait_for 20 "web1 ticking on h2" ticking_h2
[[ $(boot_of h2 web1) == "$boot" ]] || fail "boot id changed: $boot -> $(boot_of h2 web1)"
t2=$(ctl h2 vm console web1 --tail 100000 | sed -n 's/.* tick=\([0-9]*\).*/\1/p' | head -1)
(( t2 > tick )) || fail "the counter restarted: $tick before, $t2 after"
grep -q "dirty FAIL" <(ctl h2 vm console web1 --tail 100000) && fail "dirty RAM corrupted"
echo "boot $boot: tick $tick on h1 -> $t2 on h2"
# The save and the restore ran at 8 times the VM's CPU weight (havend says
# so when it sets it); running, it is back to one vCPU's
# (clusterd/supervise.c, supervise_weigh).
for h in h1 h2; do
	"$LAB" exec "$h" grep -q "web1.*its cgroup weighs 8 vCPUs while its state streams" /var/log/havend.log ||
		fail "$h did not weigh web1's cgroup up for the stream"
done
[[ $(cpu_weight h2 web1) == "$(cpu_weight_of 1)" ]] ||
	fail "web1's cgroup on h2 weighs $(cpu_weight h2 web1) running, not $(cpu_weight_of 1)"
echo "web1's cgroup weighed 8 vCPUs while its state streamed; $(cpu_weight h2 web1) running on h2"
ctl h2 --json vm migrate web1 --to haven-h3 --quick | jq -c '{from, to, downtime_ms}'
# Every member counts both moves, with their downtime (havend's metrics).
m=$("$LAB" exec h1 curl -sf --max-time 5 http://127.0.0.1:9731/metrics) || fail "no metrics from h1"
grep -E '^haven_migration(s_total|_downtime_seconds_(sum|count))\{kind="quick"' <<<"$m"
grep -qx 'haven_migrations_total{kind="quick",outcome="done"} 2' <<<"$m" ||
	fail "h1's metrics do not count the two quick moves"
grep -qx 'haven_migration_downtime_seconds_count{kind="quick"} 2' <<<"$m" ||
	fail "h1's metrics lack the two moves' downtime"
# h2 restored web1, then saved it: its own counters of both moved, and
# their ratio is the throughput.
m=$("$LAB" exec h2 curl -sf --max-time 5 http://127.0.0.1:9731/metrics) || fail "no metrics from h2"
grep -E '^haven_vm_(save|restore)' <<<"$m"
for k in save restore; do
	grep -qx "haven_vm_${k}s_total 1" <<<"$m" || fail "h2's metrics do not count its $k"
	b=$(sed -n "s/^haven_vm_${k}_bytes_total //p" <<<"$m")
	s=$(sed -n "s/^haven_vm_${k}_seconds_total //p" <<<"$m")
	awk -v b="$b" -v s="$s" 'BEGIN { exit !(b > 0 && s > 0) }' ||
		fail "h2's $k counters did not move: $b bytes in $s s"
	awk -v k="$k" -v b="$b" -v s="$s" 'BEGIN { printf "h2 %s: %.1f MiB in %.3f s, %.1f MiB/s\n", k, b / 1048576, s, b / 1048576 / s }'
done

step "2. the target killed during the restore: the saved state is restored elsewhere"
src=$(vm_field h1 web1 owner)
ctl h1 vm migrate web1 --to haven-h2 --quick --no-wait >/dev/null
restoring_on_h2() { [[ $(ctl h1 --json vm show web1 | jq -r '[.phase,.owner]|join(" ")') == "restoring 2" ]]; }
wait_for 30 "web1 restoring on h2" restoring_on_h2
"$LAB" kill haven-h2 >/dev/null
echo "killed h2 while it restored web1"
wait_for 60 "web1 running elsewhere" runs_elsewhere web1 2 h1
new=$(vm_field h1 web1 owner)
wait_for 20 "web1 ticking on h$new" bash -c "[[ -n \$('$LAB' exec h$new '$HAVENCTL' vm console web1 --tail 4000 2>/dev/null | grep tick=) ]]"
[[ $(boot_of "h$new" web1) == "$boot" ]] || fail "web1 was not restored (boot $boot -> $(boot_of "h$new" web1))"
echo "web1 restored on node $new from the saved state (same boot $boot)"
"$LAB" start haven-h2 >/dev/null
start_havend h2
wait_for 30 "h2 back" members_are h1 '[true,[1,2,3]]'

step "2b. the target cannot reach the SAN (its storage link cut): the saved state is restored on another host"
src=$(vm_field h1 web1 owner)
dst=$(( src % 3 + 1 ))
"$LAB" cut "h$dst" storage >/dev/null
ctl h1 vm migrate web1 --to "haven-h$dst" --quick | tee "$TMP/cut.out" || true
"$LAB" heal "h$dst" storage >/dev/null
runs_not_dst() { runs_elsewhere web1 "$dst" h1; }
wait_for 30 "web1 running off h$dst" runs_not_dst
new=$(vm_field h1 web1 owner)
grep -q "the saved state is kept for another host" "$TMP/cut.out" ||
	fail "the failed restore on h$dst is not in the timeline"
grep -q "starting on host" "$TMP/cut.out" && fail "web1 was cold-started, its saved state thrown away"
wait_for 20 "web1 ticking on h$new" bash -c "[[ -n \$('$LAB' exec h$new '$HAVENCTL' vm console web1 --tail 4000 2>/dev/null | grep tick=) ]]"
[[ $(boot_of "h$new" web1) == "$boot" ]] || fail "web1 was not restored (boot $boot -> $(boot_of "h$new" web1))"
echo "web1 restored on node $new after h$dst failed to (same boot $boot)"

step "3. the source killed during the save: web1 cold-starts on a survivor"
src=$(vm_field h1 web1 owner)
ask=h$(( src == 1 ? 2 : 1 ))
dst=$(( src == 3 ? 2 : 3 ))
[[ $dst != "$src" ]] || dst=1
ctl "$ask" vm migrate web1 --to "haven-h$dst" --quick --no-wait >/dev/null
saving() { [[ $(ctl "$ask" --json vm show web1 | jq -r .phase) == saving ]]; }
wait_for 30 "web1 saving" saving
"$LAB" kill "haven-h$src" >/dev/null
echo "killed h$src while it saved web1"
wait_for 60 "web1 running elsewhere" runs_elsewhere web1 "$src" "$ask"
echo "web1 runs on node $(vm_field "$ask" web1 owner) (generation $(vm_field "$ask" web1 generation))"
"$LAB" start "haven-h$src" >/dev/null
start_havend "h$src"
wait_for 30 "h$src back" members_are "$ask" '[true,[1,2,3]]'

step "4. drain h3 running 4 VMs of mixed priority; resume --failback"
prio=(high high medium low)
for i in 1 2 3 4; do
	new_lun "d$i"
	ctl h1 vm create "d$i" --memory 64M --volume "d$i-disk" --prefer 3 --priority "${prio[$((i - 1))]}" \
		--stop-timeout 3 --disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100 journal=on" >/dev/null
	ctl h1 vm start "d$i" >/dev/null
done
all_on_3() { [[ $(ctl h1 --json vm list | jq '[.[] | select(.name | startswith("d")) | select(.phase == "running" and .owner == 3)] | length') == 4 ]]; }
wait_for 90 "d1..d4 running on h3" all_on_3
t0=$(now)
ctl h1 node drain haven-h3 --wait
echo "drained in $(since "$t0") s"
ctl h1 vm list
order=$(ctl h1 --json events | jq -r -s 'map(select(.subject | startswith("vm d")) | select(.text | test("^(saving|migrating live)"))) | map(.subject) | join(" ")')
echo "departure order: $order"
[[ $order == "vm d1 vm d2 "* || $order == "vm d2 vm d1 "* ]] || fail "the high-priority VMs did not leave first: $order"
how() { ctl h1 --json events | jq -r -s --arg s "vm $1" 'map(select(.subject == $s) | select(.text | test("^(saving|migrating live)"))) | last | .text | split(" ")[0]'; }
for d in d1 d2 d3; do [[ $(how "$d") == migrating ]] || fail "$d (high or medium) did not leave live"; done
[[ $(how d4) == saving ]] || fail "d4 (low) did not leave by quick migration"
echo "d1 d2 d3 left live, d4 by quick migration"
ctl h1 node resume haven-h3 --failback
wait_for 120 "d1..d4 back on h3" all_on_3
echo "resume --failback: all four back on h3"

step "4b. a drain that cannot finish says which VM has nowhere to go"
for i in 1 2 3; do
	new_lun "x$i"
	ctl h1 vm create "x$i" --memory 64M --volume "x$i-disk" --prefer "$i" --anti-affinity xs \
		--stop-timeout 3 --disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100" >/dev/null
	ctl h1 vm start "x$i" >/dev/null
done
x_spread() { [[ $(ctl h1 --json vm list | jq -r '[.[] | select(.name | startswith("x")) | select(.phase == "running") | .owner] | sort | join(",")') == "1,2,3" ]]; }
wait_for 60 "x1..x3 running on h1, h2, h3" x_spread
t0=$(now)
rc=0
ctl h1 node drain haven-h3 --wait 2>"$TMP/drain.err" || rc=$?
cat "$TMP/drain.err"
(( rc != 0 )) || fail "drain --wait succeeded though x3 cannot leave h3"
grep -q "x3 has nowhere to go" "$TMP/drain.err" || fail "the drain did not name x3"
echo "drain --wait gave up in $(since "$t0") s (exit $rc), naming x3"
[[ $(vm_field h1 x3 owner) == 3 && $(vm_field h1 x3 phase) == running ]] || fail "x3 does not run on h3 any more"
for d in d1 d2 d3 d4; do [[ $(vm_field h1 "$d" owner) != 3 ]] || fail "$d is still on h3"; done
ctl h1 node resume haven-h3 --failback
for i in 1 2 3; do ctl h1 vm stop "x$i" >/dev/null; done
wait_for 120 "d1..d4 back on h3" all_on_3

step "5. a clean stop of havend with [vm] shutdown = migrate drains the host first"
"$LAB" exec h3 sh -c 'printf "shutdown = migrate\n" >>/etc/haven/haven.conf'
"$LAB" exec h3 sh -c 'p=$(cat /run/havend.pid); kill "$p"; while kill -0 "$p" 2>/dev/null; do sleep 0.1; done'
start_havend h3
wait_for 30 "h3 back" members_are h1 '[true,[1,2,3]]'
wait_for 20 "h3 to adopt its VMs" "$LAB" exec h3 grep -q "adopted its worker" /var/log/havend.log
t0=$(now)
"$LAB" exec h3 sh -c 'kill "$(cat /run/havend.pid)"'
havend_gone() { ! "$LAB" exec h3 sh -c 'kill -0 "$(cat /run/havend.pid)"' 2>/dev/null; }
wait_for 120 "h3's havend to drain and stop" havend_gone
none_on_3() { [[ $(ctl h1 --json vm list | jq '[.[] | select(.owner == 3 and .phase != "stopped")] | length') == 0 ]]; }
none_on_3 || fail "VMs are still on h3 after its havend stopped"
running_d() { [[ $(ctl h1 --json vm list | jq '[.[] | select(.name | startswith("d")) | select(.phase == "running")] | length') == 4 ]]; }
wait_for 30 "d1..d4 running elsewhere" running_d
echo "havend on h3 drained the host and stopped in $(since "$t0") s; d1..d4 run on $(ctl h1 --json vm list | jq -r '[.[] | select(.name | startswith("d")) | .owner] | join(",")')"

step "the auditor saw no VM twice; web1's journal is intact"
"$AUDITOR" check "$TMP/audit" || fail "the auditor saw a VM on two hosts at once"
journal_ok h1
echo "PASS"
