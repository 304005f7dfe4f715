#!/bin/bash
# test-lab-multipath.sh — iSCSI multipath (issue 17): the pool lists both
# of the SAN's portals (stor0 10.77.2.2, stor1 10.77.5.2), so web1's worker
# keeps a session on each, registered with its host's key. While the guest
# writes its journal, `lab cut h2 storage` (the first path): the guest keeps
# running (its counter advances, it never pauses), h2 still reports the
# pool reachable, through 1 of 2 paths; `lab heal h2 storage`: the path
# comes back, registered again. Then both paths cut: the VM pauses, and
# after the storage timeout it is fenced off its volume and runs on
# another host, as with one path (issue 20). Every acknowledged journal
# record is on the LUN; the auditor sees no VM twice.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
CHECK=$(realpath "${HAVEN_JOURNAL_CHECK:?set HAVEN_JOURNAL_CHECK}")
NHOSTS=3
LAB_UP_ARGS=--multipath
POOL_PORTALS="--portal 10.77.2.2:3260 --portal 10.77.5.2:3260"

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"

lab_test_begin multipath

# paths_up ASK NODE N — NODE reports pool san reachable through N paths.
paths_up() {
	[[ $(status "$1" | jq -r --argjson n "$2" '.storage[] | select(.node_id == $n) | .pools[]
		| select(.pool == "san") | select(.reachable) | .paths // [] | map(select(.reachable)) | length') == "$3" ]]
}
wlog() { "$LAB" exec h2 cat /var/log/haven/web1.worker.log 2>/dev/null || true; }

step "3 hosts, pool san on two portals; web1 (journal on its LUN) running on h2"
lab_cluster 3
ctl h1 --json pool list | jq -e '.[0].portals | length == 2' >/dev/null ||
	fail "pool san does not list both portals: $(ctl h1 --json pool list)"
mkdir -p "$TMP/audit"
"$AUDITOR" start "$TMP/audit"
ctl h1 vm create web1 --memory 64M --volume web1-disk --stop-timeout 3 --prefer 2 \
	--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100 journal=on" >/dev/null
ctl h1 vm start web1 >/dev/null
wait_for 60 "web1 running" phase_is h1 web1 running
[[ $(vm_field h1 web1 owner) == 2 ]] || fail "web1 runs on $(vm_field h1 web1 owner), not h2"
uuid=$(vm_field h1 web1 uuid)
has_ticks() { [[ -n $(ticks h2 web1) ]]; }
wait_for 30 "web1 ticking" has_ticks
boot=$(boot_of h2 web1)
wlog | grep -q "2 of 2 paths up" || fail "web1's worker did not log in on both paths: $(wlog | tail -5)"
wait_for 20 "h2 reporting san through 2 of 2 paths" paths_up h1 2 2
keys=$(ctl h1 --json pr keys "$URL")
echo "keys on the LUN: $(jq -c '.keys' <<<"$keys")"
[[ $(jq -r --arg n "$(printf '%08x' 2)" '.keys | map(select(endswith($n))) | length' <<<"$keys") -ge 2 ]] ||
	fail "h2's key is not registered on both nexuses: $keys"

step "lab cut h2 storage (the first path) for 20 s: web1 keeps running on h2"
before=$(ticks h2 web1)
t0=$(now)
"$LAB" cut h2 storage >/dev/null
while awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { exit !(b - a < 20) }'; do
	phase=$(vm_field h1 web1 phase)
	[[ $phase == running ]] || fail "web1 is '$phase' $(since "$t0") s after one path was cut: $(wlog | tail -6)"
	sleep 1
done
after=$(ticks h2 web1)
echo "RESULT: one path cut for 20 s: web1 ran on (tick $before -> $after)"
((after > before + 50)) || fail "web1's counter stalled with one path cut ($before -> $after)"
[[ $(vm_field h1 web1 owner) == 2 ]] || fail "web1 left h2 with one path cut"
wlog | grep -E "path 0 down" | head -2
wlog | grep -q "path 0 down" || fail "the worker did not take path 0 down: $(wlog | tail -6)"
wait_for 15 "h2 reporting san reachable through 1 of 2 paths" paths_up h1 2 1
ctl h1 node list | grep -E 'haven-h2' || true
if ctl h1 events | grep -E 'host 2 .*storage: pool san UNREACHABLE'; then
	fail "h2 reported pool san unreachable with one path left"
fi

step "lab heal h2 storage: the path comes back, registered again"
t0=$(now)
"$LAB" heal h2 storage >/dev/null
back() { wlog | grep -q "path 0 registered"; }
wait_for 30 "path 0 registered again" back
echo "RESULT: path 0 carrying I/O again $(since "$t0") s after the heal"
wait_for 20 "h2 reporting san through 2 of 2 paths" paths_up h1 2 2
phase_is h1 web1 running || fail "web1 is $(vm_field h1 web1 phase) after the heal"
[[ $(boot_of h2 web1) == "$boot" ]] || fail "web1 rebooted"

step "lab cut h2 storage2 then storage: web1 keeps running on path 0, then pauses; it runs elsewhere after the storage timeout"
"$LAB" cut h2 storage2 >/dev/null
sleep 8
phase_is h1 web1 running || fail "web1 is $(vm_field h1 web1 phase) with path 1 cut"
wlog | grep -q "path 1 down" || fail "the worker did not take path 1 down: $(wlog | tail -6)"
t0=$(now)
"$LAB" cut h2 storage >/dev/null
paused() { phase_is h1 web1 paused; }
wait_for 20 "web1 paused with both paths cut" paused
echo "RESULT: both paths cut -> web1 paused after $(since "$t0") s: $(vm_field h1 web1 paused_why)"
moved() { runs_elsewhere web1 2 h1; }
wait_for 75 "web1 running on another host" moved
owner=$(vm_field h1 web1 owner)
echo "RESULT: both paths cut -> web1 running on h$owner after $(since "$t0") s"
ticks_there() { [[ -n $(ticks "h$owner" web1) ]]; }
wait_for 30 "web1 ticking on h$owner" ticks_there
no_qemu_on_h2() { [[ -z $(qemu_pid h2 "$uuid") ]]; }
wait_for 20 "h2's QEMU for web1 gone" no_qemu_on_h2
"$LAB" heal h2 storage >/dev/null
"$LAB" heal h2 storage2 >/dev/null
sleep 5
[[ -z $(qemu_pid h2 "$uuid") ]] || fail "h2 runs web1 again after its storage came back"
keys=$(ctl h1 --json pr keys "$URL")
echo "keys on the LUN: $(jq -c '.keys' <<<"$keys")"
[[ $(jq -r --arg n "$(printf '%08x' 2)" '.keys | map(select(endswith($n))) | length' <<<"$keys") == 0 ]] ||
	fail "h2's key is still on web1's LUN (some nexus): $keys"

step "journal intact; the auditor saw no VM twice"
ctl h1 vm stop web1 >/dev/null
wait_for 30 "web1 stopped" phase_is h1 web1 stopped
journal_ok h1
"$AUDITOR" check "$TMP/audit" || fail "the auditor saw a VM on two hosts at once"
echo "PASS"
