#!/bin/bash
# test-lab-failover.sh — automatic failover on 3 lab hosts with real
# corosync, tgtd and QEMU, the never-twice auditor sampling every host's
# QEMUs throughout, and the guest's journal checked at the end (no
# acknowledged write lost):
#  1. lab kill the VM's owner → fenced (storage level) → the VM runs on a
#     survivor; the event timeline shows lost, fenced, placed, running; the
#     hosts' [alert] program (one file for all) got host-lost, fenced and
#     failover-done, once each, in that order, with the failover's duration;
#     h1's and h2's metrics (promtool-clean) count it, before 0, after 1.
#  2. lab cut the owner's management NIC → the isolated host stops the VM by
#     itself, its key is preempted from the LUN, a survivor runs the VM.
#  3. lab pause the owner past the failover → its watchdog (the lab's
#     stand-in, 2 s, every host has one) resets it before the VM may start
#     on a survivor: the auditor judges this scenario like every other, with
#     no window exempted.
#  4. two of three hosts lost → the last one is not quorate and starts
#     nothing (and stops what it ran).
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
CHECK=$(realpath "${HAVEN_JOURNAL_CHECK:?set HAVEN_JOURNAL_CHECK}")
NHOSTS=3
LAB_WATCHDOG=2

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"

lab_test_begin failover

step "3 hosts, havend everywhere; web1 (journal on a LUN) prefers h3"
# The alert program: every event it is given, one JSON line each.
printf '#!/bin/sh\n{ cat; echo; } >>%s/alerts.jsonl\n' "$TMP" >"$TMP/alert"
chmod 755 "$TMP/alert"
lab_cluster 3 "
[alert]
program = $TMP/alert
timeout_s = 5"
mkdir -p "$TMP/audit"
"$AUDITOR" start "$TMP/audit"
ctl h1 vm create web1 --memory 96M --volume web1-disk --prefer 3 --stop-timeout 3 \
	--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100 journal=on"
ctl h2 vm start web1 >/dev/null
wait_for 60 "web1 running" phase_is h1 web1 running
[[ $(vm_field h1 web1 owner) == 3 ]] || fail "web1 is not on its preferred host 3"
uuid=$(vm_field h1 web1 uuid)
has_ticks() { [[ -n $(ticks h3 web1) ]]; }
wait_for 30 "the guest ticking on h3" has_ticks

# scrape HOST — its havend's Prometheus metrics ([metrics] listen's
# default, in the host's own network namespace), checked by promtool.
scrape() {
	local m
	m=$("$LAB" exec "$1" curl -sf --max-time 5 http://127.0.0.1:9731/metrics) ||
		fail "no metrics from $1"
	if command -v promtool >/dev/null; then
		promtool check metrics <<<"$m" >&2 || fail "promtool finds problems in $1's metrics"
	fi
	echo "$m"
}
m=$(scrape h1)
grep -qx 'haven_failover_duration_seconds_count 0' <<<"$m" || fail "h1 counts a failover already"
grep -qx 'haven_vm_phase{vm="web1",phase="running"} 1' <<<"$m" || fail "h1's metrics lack web1 running"

step "1. lab kill haven-h3 (the owner): web1 runs on a survivor"
t0=$(now)
"$LAB" kill haven-h3 >/dev/null
wait_for 30 "web1 running elsewhere" runs_elsewhere web1 3 h1
took=$(since "$t0")
owner=$(vm_field h1 web1 owner)
echo "web1 runs on node $owner $took s after the kill"
ctl h1 events | grep -E 'host 3|vm web1' | tail -6
ctl h1 --json events | jq -e -s 'map(select(.subject == "host 3" and (.text | test("^fenced by level storage")))) | length > 0' >/dev/null ||
	fail "no 'fenced by level storage' event for host 3"
[[ -n $(qemu_pid "h$owner" "$uuid") ]] || fail "no QEMU for web1 on h$owner"
alerted() { [[ $(jq -s 'map(select(.kind == "failover-done")) | length' "$TMP/alerts.jsonl" 2>/dev/null) -ge 1 ]]; }
wait_for 20 "the failover-done alert" alerted
jq -c '{seq, kind, subject, reporter, duration_ms, fence_ms, restart_ms}' "$TMP/alerts.jsonl"
kinds=$(jq -s -r 'sort_by(.seq) | map(.kind + ":" + .subject) | join(",")' "$TMP/alerts.jsonl")
[[ $kinds == "host-lost:host 3,fenced:host 3,failover-done:vm web1" ]] ||
	fail "the alerts were $kinds, not host-lost, fenced, failover-done once each"
jq -s -e --arg o "haven-h$owner" 'map(select(.kind == "failover-done"))[0] |
	.from_node_id == 3 and .duration_ms > 0 and .duration_ms < 30000 and .reporter == $o and .vm == "web1"' \
	"$TMP/alerts.jsonl" >/dev/null || fail "the failover-done alert is not web1's from host 3, by its new owner"
# Every survivor counts the failover, with its duration.
for h in h1 h2; do
	m=$(scrape "$h")
	grep -E '^haven_(failover_(duration|phase)_seconds_(count|sum)|hosts_lost_total|fences_total)' <<<"$m" | sed "s/^/$h: /"
	grep -qx 'haven_failover_duration_seconds_count 1' <<<"$m" || fail "$h does not count one failover"
	grep -qx 'haven_failover_phase_seconds_count{phase="fence"} 1' <<<"$m" ||
		fail "$h does not count the failover's fence phase"
	grep -qx 'haven_hosts_lost_total 1' <<<"$m" || fail "$h does not count host 3 lost"
	grep -qx 'haven_fences_total{level="storage",outcome="fenced"} 1' <<<"$m" ||
		fail "$h does not count host 3 fenced by storage"
	grep -qx "haven_vm_owner{vm=\"web1\"} $owner" <<<"$m" || fail "$h does not show web1 on node $owner"
done
has_ticks_owner() { [[ -n $(ticks "h$owner" web1) ]]; }
wait_for 30 "the guest ticking on h$owner" has_ticks_owner
"$LAB" start haven-h3 >/dev/null
start_havend h3
wait_for 30 "h3 back" members_are h1 '[true,[1,2,3]]'
wait_for 20 "h3 unfenced after rejoining" bash -c "[[ \$('$LAB' exec h1 '$HAVENCTL' --json node list | jq -r '.nodes[] | select(.node_id == 3) | .fence') == none ]]"

step "2. lab cut the owner's management NIC: it stops web1 itself; a survivor runs it"
victim=$owner
t0=$(now)
"$LAB" cut "haven-h$victim" mgmt >/dev/null
ask=h$(( victim == 1 ? 2 : 1 ))
no_qemu_on_victim() { [[ -z $(qemu_pid "h$victim" "$uuid") ]]; }
wait_for 15 "the isolated host to stop its QEMU" no_qemu_on_victim
echo "isolated h$victim stopped web1's QEMU $(since "$t0") s after the cut"
wait_for 30 "web1 running elsewhere" runs_elsewhere web1 "$victim" "$ask"
owner=$(vm_field "$ask" web1 owner)
echo "web1 runs on node $owner $(since "$t0") s after the cut"
keys=$(ctl "$ask" --json pr keys "$URL")
echo "keys on the LUN: $(jq -c '.keys' <<<"$keys")"
[[ $(jq -r --arg n "$(printf '%08x' "$victim")" '.keys | map(select(endswith($n))) | length' <<<"$keys") == 0 ]] ||
	fail "the isolated host's key is still registered: $keys"
"$LAB" heal "haven-h$victim" mgmt >/dev/null
wait_for 30 "h$victim back" members_are h1 '[true,[1,2,3]]'

step "3. lab pause the owner past the failover: its watchdog resets it first"
victim=$owner
ask=h$(( victim == 1 ? 2 : 1 ))
t0=$(now)
"$LAB" pause "haven-h$victim" >/dev/null
wait_for 30 "web1 running elsewhere" runs_elsewhere web1 "$victim" "$ask"
owner=$(vm_field "$ask" web1 owner)
echo "web1 runs on node $owner $(since "$t0") s after the pause"
watchdog_fired "h$victim" || fail "h$victim's watchdog did not fire: $(cat "$TMP/watchdog-h$victim.log")"
[[ -z $(qemu_pid "h$victim" "$uuid") ]] || fail "the frozen host's QEMU for web1 survived its watchdog"
grep "watchdog expired" "$TMP/watchdog-h$victim.log"
"$LAB" exec "$ask" grep -h "fencing node $victim\|web1.*running" /var/log/havend.log | tail -3
"$LAB" start "haven-h$victim" >/dev/null
start_havend "h$victim"
wait_for 30 "h$victim back" members_are h1 '[true,[1,2,3]]'

step "every acknowledged journal record is on the LUN; the auditor saw no VM twice"
journal_ok "$ask"
"$AUDITOR" check "$TMP/audit" || fail "the auditor saw a VM on two hosts at once"

step "4. two of three hosts lost: the last one is not quorate and starts nothing"
last=$owner
others=()
for i in 1 2 3; do [[ $i == "$last" ]] || others+=("$i"); done
"$LAB" kill "haven-h${others[0]}" >/dev/null
"$LAB" kill "haven-h${others[1]}" >/dev/null
no_qemu_on_last() { [[ -z $(qemu_pid "h$last" "$uuid") ]]; }
wait_for 20 "the last host to stop web1" no_qemu_on_last
wait_for 20 "h$last not quorate" bash -c "[[ \$('$LAB' exec h$last '$HAVENCTL' --json status | jq .quorate) == false ]]"
sleep 3
[[ -z $(qemu_pid "h$last" "$uuid") ]] || fail "the last host runs web1 without quorum"
if ctl "h$last" vm start web1 2>/dev/null; then fail "a lone host accepted a change"; fi
echo "h$last alone: not quorate, web1 stopped, changes refused"
echo "PASS"
