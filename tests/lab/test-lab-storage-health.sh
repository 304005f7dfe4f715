#!/bin/bash
# test-lab-storage-health.sh — every host's havend probes each pool over its
# storage network and reports transitions only (issue 20): with 3 hosts and
# pool san, all report it reachable and stay quiet while steady; `lab cut h2
# storage` makes h2's san unreachable in the replicated state as h1 sees it
# within 10 s (h1 and h3 still reach it), `lab heal` brings it back; one
# event each way, none per probe; a frozen SAN (`lab pause san`) is lost by
# every host and found again. Prints RESULT: lines with the times.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
NHOSTS=3

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"

lab_test_begin storage-health

# reach ASK_HOST NODE POOL — "true", "false" or "" (no report yet), as
# ASK_HOST's replica holds NODE's storage health.
reach() {
	status "$1" | jq -r --argjson n "$2" --arg p "$3" \
		'.storage[] | select(.node_id == $n) | .pools[] | select(.pool == $p) | .reachable'
}
reach_is() { [[ $(reach "$1" "$2" "$3") == "$4" ]]; }
all_reach() { reach_is h1 1 san true && reach_is h1 2 san true && reach_is h1 3 san true; }
storage_events() { ctl h1 --json events | jq -s --arg s "$1" '[.[] | select(.subject == $s and (.text | startswith("storage:")))] | length'; }

step "3 hosts, pool san with one volume: every host reports san reachable"
lab_cluster 3
wait_for 20 "every host reporting san reachable" all_reach
ctl h1 status
ctl h1 status | grep -q '^  haven-h2 (2): san: reachable$' || fail "status does not say h2 reaches san"

step "steady: 5 s of probes (15 of them) change nothing"
seq0=$(ctl h1 --json events | jq -s "map(.seq) | max")
ev0=$(storage_events "host 2")
sleep 5
seq1=$(ctl h1 --json events | jq -s 'map(.seq) | max')
[[ $seq1 == "$seq0" ]] || fail "the state changed while storage was steady (seq $seq0 -> $seq1)"
[[ $(storage_events "host 2") == "$ev0" ]] || fail "h2 reported storage while steady"

step "lab cut h2 storage: h2's san unreachable as h1 sees it, within 10 s"
t0=$(now)
"$LAB" cut h2 storage >/dev/null
wait_for 15 "h2's san unreachable in h1's replica" reach_is h1 2 san false
down=$(since "$t0")
echo "RESULT: h2's storage cut -> unreachable in h1's replica after $down s"
awk -v d="$down" 'BEGIN { exit !(d <= 10) }' || fail "unreachable only after $down s (more than 10 s)"
reach_is h1 1 san true || fail "h1 lost san too"
reach_is h1 3 san true || fail "h3 lost san too"
reach_is h3 2 san false || fail "h3's replica does not say h2 lost san"
ctl h1 status | grep -E '^  haven-h2 \(2\): san: unreachable for [0-9]+ s$' ||
	fail "status does not say h2 lost san: $(ctl h1 status)"
ctl h1 --json node list | jq -e '.nodes[] | select(.node_id == 2) | .storage[0].reachable == false' >/dev/null ||
	fail "node list does not say h2 lost san"
"$LAB" exec h2 grep -q 'storage: pool san UNREACHABLE from this host' /var/log/havend.log ||
	fail "h2's havend did not log the loss"
sleep 3
reach_is h1 2 san false || fail "h2's san came back while still cut"

step "lab heal h2 storage: reachable again"
t0=$(now)
"$LAB" heal h2 storage >/dev/null
wait_for 15 "h2's san reachable in h1's replica" reach_is h1 2 san true
echo "RESULT: h2's storage healed -> reachable in h1's replica after $(since "$t0") s"
n=$(( $(storage_events "host 2") - ev0 ))
[[ $n == 2 ]] || fail "expected 2 storage events for h2 (lost, back), got $n: $(ctl h1 events | grep storage)"
ctl h1 events | grep 'host 2.*storage:' | tail -2
step "the SAN frozen (tgtd SIGSTOPped): every host loses san, then has it back"
# Reads hang on open sessions and logins never end: the probes' own
# deadline must end them (storage/probe.c).
none_reach() { reach_is h1 1 san false && reach_is h1 2 san false && reach_is h1 3 san false; }
t0=$(now)
"$LAB" pause san >/dev/null
if ! (wait_for 15 "every host reporting san unreachable" none_reach); then
	"$LAB" resume san >/dev/null
	fail "not every host lost san while the SAN was frozen: $(ctl h1 status)"
fi
echo "RESULT: SAN frozen -> every host's san unreachable after $(since "$t0") s"
"$LAB" resume san >/dev/null
t0=$(now)
wait_for 15 "every host reporting san reachable again" all_reach
echo "RESULT: SAN thawed -> every host's san reachable after $(since "$t0") s"
for h in h1 h2 h3; do
	"$LAB" exec "$h" sh -c 'kill -0 "$(cat /run/havend.pid)"' || fail "$h's havend is gone"
done

# The probes say little while cut: a line per transition, not per probe.
"$LAB" exec h2 grep -E 'storage:|iscsi' /var/log/havend.log | tail -12
n=$("$LAB" exec h2 grep -c -E 'storage:|iscsi' /var/log/havend.log)
(( n <= 30 )) || fail "h2's havend logged $n storage lines for one cut (a line per probe?)"
echo "PASS"
