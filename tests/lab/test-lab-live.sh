#!/bin/bash
# test-lab-live.sh — live migration on 3 lab hosts (real corosync, tgtd,
# QEMU; the never-twice auditor on, which judges a QEMU by whether its
# vCPUs run; web1's journal checked at the end):
#  1. a ticking guest moved live (the default): same boot id, the counter
#     continues, "live migration" and its downtime in the timeline; back
#     again with --json.
#  2. a guest that dirties RAM faster than the bandwidth allows does not
#     converge within its budget: Haven says so and moves it by quick
#     migration by itself (same boot id).
#  3. the target killed during the live migration: the VM runs on at the
#     source, then moves by quick migration to the host left.
#  4. the source killed during the live migration: the VM is failed over
#     (one runnable copy; the target's waiting QEMU never runs it).
#  5. the target's migration link cut mid-way: the stream stalls, the source
#     calls it off after 10 s of silence (not the 120 s budget) and the VM
#     moves by quick migration over the storage network.
#  6. vm stop mid-way: the migration is called off at once and the VM
#     stops at the source (no quick migration follows).
#  7. the handover stuck (the target's havend frozen once it is ready, so
#     the whole stream arrives but is never reported): the source asks the
#     cluster to call the migration off 10 s after the last pass began; the
#     VM runs again (same boot) and moves by quick migration.
#  8. the target's havend exits right after proposing 'received' (a
#     failpoint): the VM is the target's while no havend runs there; a new
#     havend adopts the worker and finishes the handover (same boot, once).
#  9. havend restarted on the source mid-way: the VM runs once, same boot;
#     the new havend neither sends it again nor keeps a second copy.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
CHECK=$(realpath "${HAVEN_JOURNAL_CHECK:?set HAVEN_JOURNAL_CHECK}")
NHOSTS=3

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"

lab_test_begin live

# live_waiting VM — the target listens (its endpoint is in the timeline).
live_waiting() {
	[[ $(ctl h1 --json vm show "$1" | jq -r .phase) == migrating ]] &&
		ctl h1 --json events | jq -e -s --arg s "vm $1" 'map(select(.subject == $s)) | last | .text | test("waits for the live migration")' >/dev/null
}

step "3 hosts; live1 (idle) on h1, web1 (256 MiB of RAM kept dirty) on h2"
STATE_SIZE=512M lab_cluster 3
mkdir -p "$TMP/audit"
"$AUDITOR" start "$TMP/audit"
new_lun live1
ctl h1 vm create live1 --memory 128M --volume live1-disk --prefer 1 --stop-timeout 3 \
	--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100 journal=on" >/dev/null
ctl h1 vm create web1 --memory 320M --volume web1-disk --prefer 2 --stop-timeout 3 \
	--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100 journal=on dirty=256 dirty_pages_per_tick=4096" >/dev/null
ctl h1 vm start live1 >/dev/null
ctl h1 vm start web1 >/dev/null
wait_for 60 "live1 running" phase_is h1 live1 running
wait_for 60 "web1 running" phase_is h1 web1 running
live_ticks() { [[ -n $(last_tick h1 live1) ]]; }
wait_for 30 "live1 ticking" live_ticks
sleep 1

step "1. vm migrate live1 --to h2 (live, the default): same boot, the counter continues"
boot=$(boot_of h1 live1)
tick=$(last_tick h1 live1)
ctl h3 vm migrate live1 --to haven-h2 | tee "$TMP/live.out"
grep -q "migrating live from host 1 to host 2" "$TMP/live.out" || fail "it did not go live"
grep -q "vCPUs stopped on host 1 for the switchover" "$TMP/live.out" || fail "no switchover in the timeline"
grep -q "handed over live from host 1 to host 2" "$TMP/live.out" || fail "no handover in the timeline"
grep -q "moved from host 1 to host 2 (live migration): downtime" "$TMP/live.out" || fail "no live downtime reported"
grep -q "quick migration" "$TMP/live.out" && fail "it fell back to quick migration"
[[ $(vm_field h1 live1 owner) == 2 ]] || fail "live1 is not on h2"
ticks_on_h2() { (( $(last_tick h2 live1 || echo 0) > tick + 2 )); }
wait_for 20 "live1 ticking on h2" ticks_on_h2
[[ $(boot_of h2 live1) == "$boot" ]] || fail "boot id changed: $boot -> $(boot_of h2 live1)"
t2=$(ctl h2 vm console live1 --tail 100000 | sed -n 's/.* tick=\([0-9]*\).*/\1/p' | head -1)
(( t2 > tick )) || fail "the counter restarted: $tick before, $t2 after"
echo "boot $boot: tick $tick on h1 -> $t2 on h2"
ctl h1 --json vm migrate live1 --to haven-h1 | tee "$TMP/live.json" | jq -c '{from, to, downtime_ms}'
[[ $(jq -r .to "$TMP/live.json") == 1 ]] || fail "live1 did not come back"

step "2. web1 cannot converge (16 MiB/s, 4 s): Haven falls back to quick migration"
ctl h1 cluster set --live-bandwidth-mib 16 --live-converge-s 4 >/dev/null
ctl h1 cluster show
boot=$(boot_of h2 web1)
ctl h1 vm migrate web1 --to haven-h3 | tee "$TMP/fallback.out"
grep -q "live migration to host 3 failed on host 2: it did not converge within 4 s" "$TMP/fallback.out" ||
	fail "no non-convergence reported"
grep -q "moved from host 2 to host 3 (quick migration): downtime" "$TMP/fallback.out" ||
	fail "it did not fall back to quick migration"
[[ $(vm_field h1 web1 owner) == 3 ]] || fail "web1 is not on h3"
fb_ticks() { [[ -n $(last_tick h3 web1) ]]; }
wait_for 20 "web1 ticking on h3" fb_ticks
[[ $(boot_of h3 web1) == "$boot" ]] || fail "boot id changed after the fallback"

step "3. the target killed during the live migration: web1 runs on, then moves by quick migration"
ctl h1 cluster set --live-converge-s 120 >/dev/null
boot=$(boot_of h3 web1)
ctl h1 vm migrate web1 --to haven-h2 --no-wait >/dev/null
wait_for 30 "h2 waiting for web1" live_waiting web1
# The source's progress reaches the state (vm migrate's bar on a TTY).
progress() { ctl h1 --json vm show web1 | jq -e '.live_total_bytes > 0 and .live_remaining_bytes <= .live_total_bytes' >/dev/null; }
wait_for 10 "web1's live progress in the state" progress
ctl h1 --json vm show web1 | jq -c '{phase, move, moving_to, live_remaining_bytes, live_total_bytes}'
"$LAB" kill haven-h2 >/dev/null
echo "killed h2 while web1 was sent to it"
moved_to_1() { [[ $(ctl h1 --json vm show web1 | jq -r '[.phase, .owner, .moving_to // 0] | join(" ")') == "running 1 0" ]]; }
wait_for 60 "web1 moved to h1 by quick migration" moved_to_1
ctl h1 --json events | jq -r -s 'map(select(.subject == "vm web1")) | .[-8:] | .[] | .text'
# Who sees it first: the source (its stream breaks), the coordinator (h2
# left the membership) or the state (h2 lost).
ctl h1 --json events | jq -e -s 'map(select(.subject == "vm web1") | .text) | any(test("^live migration (to host 2 failed|failed: its target host 2 is lost)"))' >/dev/null ||
	fail "the failed live migration is not in the timeline"
h1_ticks() { [[ -n $(last_tick h1 web1) ]]; }
wait_for 20 "web1 ticking on h1" h1_ticks
[[ $(boot_of h1 web1) == "$boot" ]] || fail "boot id changed: it was not moved by quick migration"
"$LAB" start haven-h2 >/dev/null
start_havend h2
wait_for 30 "h2 back" members_are h1 '[true,[1,2,3]]'

step "4. the source killed during the live migration: web1 fails over"
ctl h3 vm migrate web1 --to haven-h2 --no-wait >/dev/null
wait_for 30 "h2 waiting for web1" live_waiting web1
sleep 1
"$LAB" kill haven-h1 >/dev/null
echo "killed h1 while it sent web1"
wait_for 60 "web1 running elsewhere" runs_elsewhere web1 1 h3
echo "web1 runs on node $(vm_field h3 web1 owner) (generation $(vm_field h3 web1 generation))"
"$LAB" start haven-h1 >/dev/null
start_havend h1
wait_for 30 "h1 back" members_are h3 '[true,[1,2,3]]'

step "5. the target's migration link cut mid-way: the stalled stream is called off long before the budget"
src=$(vm_field h3 web1 owner)
dst=$(( src % 3 + 1 ))
boot=$(boot_of "h$src" web1)
t0=$(now)
ctl "h$src" vm migrate web1 --to "haven-h$dst" --no-wait >/dev/null
wait_for 30 "h$dst waiting for web1" live_waiting web1
sleep 2
"$LAB" cut "h$dst" migration >/dev/null
echo "cut h$dst's migration link while web1 was sent to it (budget 120 s)"
moved_quick() { [[ $(ctl h3 --json vm show web1 | jq -r '[.phase, .owner, .moving_to // 0] | join(" ")') == "running $dst 0" ]]; }
wait_for 60 "web1 moved to h$dst by quick migration" moved_quick
echo "web1 on h$dst by quick migration $(since "$t0") s after the move began"
ctl h3 --json events | jq -e -s 'map(select(.subject == "vm web1") | .text) | any(test("stream to .* stalled: nothing sent for 1[0-9] s"))' >/dev/null ||
	fail "the stalled stream is not in the timeline"
"$LAB" heal "h$dst" migration >/dev/null
on_dst() { [[ -n $(last_tick "h$dst" web1) ]]; }
wait_for 20 "web1 ticking on h$dst" on_dst
[[ $(boot_of "h$dst" web1) == "$boot" ]] || fail "boot id changed after the stalled live migration"

step "6. vm stop during a live migration calls it off at once (not after the 120 s budget)"
src=$(vm_field h3 web1 owner)
dst=$(( src % 3 + 1 ))
ctl h3 vm migrate web1 --to "haven-h$dst" --no-wait >/dev/null
wait_for 30 "h$dst waiting for web1" live_waiting web1
sleep 2
t0=$(now)
ctl h3 vm stop web1 >/dev/null
wait_for 30 "web1 stopped" phase_is h3 web1 stopped
echo "web1 stopped $(since "$t0") s after vm stop, mid live migration"
ctl h3 --json events | jq -e -s 'map(select(.subject == "vm web1") | .text) | any(test("^live migration to host [0-9] called off: the VM is to stop; it stops at host"))' >/dev/null ||
	fail "the called-off live migration is not in the timeline"
ctl h3 --json events | jq -e -s 'map(select(.subject == "vm web1") | .text) | .[-6:] | any(test("^saving"))' >/dev/null &&
	fail "a stopping VM was moved by quick migration"

step "7. the handover stuck (the target's havend frozen after it got ready): called off after 10 s; no VM is lost"
# Under a 60 s downtime limit at 8 MiB/s QEMU goes to the switchover after
# its first 100 ms; the target's worker gets the whole stream but its
# havend, frozen, never says so. The source may not cancel by itself after
# the last pass began: it asks the cluster to call the migration off.
new_lun stuck
ctl h1 vm create stuck --memory 192M --volume stuck-disk --prefer 1 --stop-timeout 3 \
	--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100 dirty=128 dirty_pages_per_tick=4096" >/dev/null
ctl h1 vm start stuck >/dev/null
wait_for 60 "stuck running" phase_is h1 stuck running
stuck_dirty() { ctl h1 vm console stuck --tail 100000 2>/dev/null | grep -q 'dirty pass=1 ok'; }
wait_for 120 "stuck's RAM dirty" stuck_dirty
ctl h1 cluster set --live-downtime-ms 60000 --live-bandwidth-mib 8 >/dev/null
readies() { ctl "$1" --json events | jq -s 'map(select(.subject == "vm stuck") | select(.text | test("waits for the live migration"))) | length'; }
stalled() { ctl "$1" --json events | jq -e -s 'map(select(.subject == "vm stuck") | .text) | any(test("switchover did not finish within 10 s"))' >/dev/null; }
settled() { [[ $(ctl "$1" --json vm show stuck | jq -r '[.phase, (.moving_to // 0)] | join(" ")') == "running 0" ]]; }
# move_stuck_freezing_target — stuck migrates live from its owner (so) to
# the next host (sd), asked on the third (ask); sd's havend is frozen once
# its worker listens, so the stream arrives but is not reported. Sets so,
# sd, ask, boot (stuck's boot id) and t0 (the freeze).
move_stuck_freezing_target() {
	local n0
	so=$(vm_field h1 stuck owner)
	sd=$(( so % 3 + 1 ))
	ask=h$(( 6 - so - sd ))
	boot=$(boot_of "h$so" stuck)
	n0=$(readies "$ask")
	ctl "$ask" vm migrate stuck --to "haven-h$sd" --no-wait >/dev/null
	ready() { (( $(readies "$ask") > n0 )); }
	wait_for 30 "h$sd ready for stuck" ready
	"$LAB" exec "h$sd" sh -c 'kill -STOP "$(cat /run/havend.pid)"'
	t0=$(now)
}
caught=
for try in 1 2 3; do
	move_stuck_freezing_target
	echo "try $try: froze h$sd's havend once it was ready (stuck from h$so)"
	done_or_stalled() { stalled "$ask" || [[ $(vm_field "$ask" stuck owner) == "$sd" ]]; }
	wait_for 60 "the handover or its call-off" done_or_stalled
	"$LAB" exec "h$sd" sh -c 'kill -CONT "$(cat /run/havend.pid)"'
	wait_for 60 "stuck settled" settled "$ask"
	if stalled "$ask"; then
		caught=1
		echo "called off $(since "$t0") s after the freeze; stuck runs on node $(vm_field "$ask" stuck owner)"
		break
	fi
	echo "the handover beat the freeze; again"
done
[[ -n $caught ]] || fail "could not freeze the target's havend before the handover in 3 tries"
ctl "$ask" --json events | jq -r -s 'map(select(.subject == "vm stuck")) | .[-9:] | .[] | .text'
now_on=$(vm_field "$ask" stuck owner)
stuck_ticks() { [[ -n $(last_tick "h$now_on" stuck) ]]; }
wait_for 20 "stuck ticking on h$now_on" stuck_ticks
[[ $(boot_of "h$now_on" stuck) == "$boot" ]] || fail "stuck's boot id changed: its RAM was lost"
ctl h1 cluster set --live-downtime-ms 300 --live-bandwidth-mib 0 >/dev/null

# restart_havend HOST — SIGKILL its havend (frozen or not), start a new one.
restart_havend() {	# HOST [VAR=VALUE...] — the new havend's environment
	local h=$1
	shift
	"$LAB" exec "$h" sh -c 'kill -KILL "$(cat /run/havend.pid)"' 2>/dev/null || true
	sleep 0.5
	( [[ $# == 0 ]] || export "$@"; start_havend "$h" )
}
stuck_runs_once_on() {	# HOST UUID — stuck runs on HOST, ticking, and nowhere else
	local h o
	[[ $(vm_field h1 stuck phase) == running && $(vm_field h1 stuck owner) == "$1" ]] || return 1
	[[ -n $(qemu_pid "h$1" "$2") ]] || return 1
	for h in 1 2 3; do
		[[ $h == "$1" || -z $(qemu_pid "h$h" "$2") ]] || return 1
	done
}

step "8. the target's havend exits right after it proposed 'received': the new one switches over"
# The cluster applies 'received' (the VM is the target's, restoring) while
# no havend runs on the target to tell its worker to run the vCPUs; a
# havend started again adopts the worker, learns from it that the stream
# is in and that it was told INCOMING, and finishes the handover.
uuid=$(vm_field h1 stuck uuid)
so=$(vm_field h1 stuck owner)
sd=$(( so % 3 + 1 ))
ask=h$(( 6 - so - sd ))
boot=$(boot_of "h$so" stuck)
ctl h1 cluster set --live-downtime-ms 60000 --live-bandwidth-mib 256 >/dev/null
restart_havend "h$sd" HAVEN_FAILPOINTS=havend-exit-after-received
wait_for 30 "all three quorate" members_are h1 '[true,[1,2,3]]'
ctl "$ask" vm migrate stuck --to "haven-h$sd" --no-wait >/dev/null
t0=$(now)
exited() { "$LAB" exec "h$sd" grep -q "failpoint havend-exit-after-received" /var/log/havend.log; }
wait_for 60 "h$sd's havend to exit after proposing received" exited
restoring_on_target() { [[ $(vm_field "$ask" stuck owner) == "$sd" ]]; }
wait_for 30 "the cluster to give stuck to h$sd" restoring_on_target
echo "stuck is h$sd's ($(vm_field "$ask" stuck phase)) while no havend runs there; starting it again"
start_havend "h$sd"
runs_on_sd() { stuck_runs_once_on "$sd" "$uuid"; }
wait_for 60 "stuck running on h$sd alone" runs_on_sd
echo "stuck runs on h$sd $(since "$t0") s after the migrate"
stuck_ticks_sd() { [[ -n $(last_tick "h$sd" stuck) ]]; }
wait_for 20 "stuck ticking on h$sd" stuck_ticks_sd
[[ $(boot_of "h$sd" stuck) == "$boot" ]] || fail "stuck's boot id changed: its RAM was lost"
wait_for 30 "all three quorate" members_are h1 '[true,[1,2,3]]'

step "9. havend restarted on the live source mid-way: the VM runs once, its RAM kept"
# The target's havend frozen once ready holds the move after the stream;
# the source's havend is killed and started again meanwhile.
move_stuck_freezing_target
sleep 2
restart_havend "h$so"
"$LAB" exec "h$sd" sh -c 'kill -CONT "$(cat /run/havend.pid)"'
echo "restarted h$so's havend (the source) $(since "$t0") s after the freeze"
runs_once() { local o; o=$(vm_field "$ask" stuck owner); [[ -n $o ]] && stuck_runs_once_on "$o" "$uuid" && settled "$ask"; }
wait_for 60 "stuck running once" runs_once
now_on=$(vm_field "$ask" stuck owner)
echo "stuck runs on h$now_on $(since "$t0") s after the freeze"
ctl "$ask" --json events | jq -r -s 'map(select(.subject == "vm stuck")) | .[-4:] | .[] | .text'
stuck_ticks_now() { [[ -n $(last_tick "h$now_on" stuck) ]]; }
wait_for 20 "stuck ticking on h$now_on" stuck_ticks_now
[[ $(boot_of "h$now_on" stuck) == "$boot" ]] || fail "stuck's boot id changed: its RAM was lost"
wait_for 30 "all three quorate" members_are h1 '[true,[1,2,3]]'
ctl h1 cluster set --live-downtime-ms 300 --live-bandwidth-mib 0 >/dev/null

step "the auditor saw no VM twice; web1's journal is intact"
"$AUDITOR" check "$TMP/audit" || fail "the auditor saw a VM on two hosts at once"
journal_ok h3
echo "PASS"
