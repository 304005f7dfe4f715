#!/bin/bash
# test-lab-storage-move.sh — a VM whose host alone lost its storage moves
# (issue 20): web1 (journal on) runs on h2; `lab cut h2 storage` for 60 s →
# h2 reports san unreachable, h1 and h3 still reach it, and after the
# storage timeout (30 s, the default) the coordinator fences h2 off web1's
# volume and web1 starts on another host (after 48 s of h2's link flapping
# every 3 s, which moves nothing); `lab heal h2 storage` → h2 does
# not run web1 too, and h2's key is gone from the LUN. The auditor judges
# throughout; every acknowledged journal record is on the LUN.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
CHECK=$(realpath "${HAVEN_JOURNAL_CHECK:?set HAVEN_JOURNAL_CHECK}")
NHOSTS=3

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"

lab_test_begin storage-move

reach_is() {
	[[ $(status "$1" | jq -r --argjson n "$2" \
		'.storage[] | select(.node_id == $n) | .pools[] | select(.pool == "san") | .reachable') == "$3" ]]
}

step "3 hosts; web1 (journal on its LUN) running on h2"
lab_cluster 3
mkdir -p "$TMP/audit"
"$AUDITOR" start "$TMP/audit"
ctl h1 vm create web1 --memory 64M --volume web1-disk --stop-timeout 3 --prefer 2 \
	--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100 journal=on" >/dev/null
ctl h1 vm start web1 >/dev/null
wait_for 60 "web1 running" phase_is h1 web1 running
[[ $(vm_field h1 web1 owner) == 2 ]] || fail "web1 runs on $(vm_field h1 web1 owner), not h2"
uuid=$(vm_field h1 web1 uuid)
gen=$(vm_field h1 web1 generation)
has_ticks() { [[ -n $(ticks h2 web1) ]]; }
wait_for 30 "web1 ticking" has_ticks
all_reach() { reach_is h1 1 true && reach_is h1 2 true && reach_is h1 3 true; }
wait_for 20 "every host reporting san reachable" all_reach

step "h2's storage flapping (cut 3 s, healed 3 s, for 48 s): web1 ends up running"
for ((i = 0; i < 8; i++)); do
	"$LAB" cut h2 storage >/dev/null
	sleep 3
	"$LAB" heal h2 storage >/dev/null
	sleep 3
done
ticking_again() {
	local o t
	phase_is h1 web1 running || return 1
	o=$(vm_field h1 web1 owner)
	t=$(ticks "h$o" web1)
	[[ -n $t && $t != "${flap_ticks:-}" ]]
}
flap_ticks=$(ticks "h$(vm_field h1 web1 owner)" web1)
wait_for 60 "web1 running and ticking after the flapping" ticking_again
echo "after the flapping web1 runs on h$(vm_field h1 web1 owner) (generation $(vm_field h1 web1 generation))"
ctl h1 events | grep -E 'host 2 .*storage:' | tail -4 || true
wait_for 20 "h2 reporting san reachable" reach_is h1 2 true
if [[ $(vm_field h1 web1 owner) != 2 ]]; then
	echo "(web1 left h2 during the flapping; moved back for the next step)"
	ctl h1 vm migrate web1 --to 2 --quick >/dev/null
	wait_for 60 "web1 running on h2 again" bash -c "[[ \$('$LAB' exec h1 '$HAVENCTL' --json vm show web1 | jq -r '.phase + \" \" + (.owner|tostring)') == 'running 2' ]]"
fi
gen=$(vm_field h1 web1 generation)

step "lab cut h2 storage: after the storage timeout web1 runs elsewhere"
t0=$(now)
"$LAB" cut h2 storage >/dev/null
wait_for 15 "h2 reporting san unreachable" reach_is h1 2 false
echo "RESULT: cut -> h2's san unreachable in h1's replica after $(since "$t0") s"
# Not before the timeout: 25 s after the cut web1 is still h2's.
sleep 20
[[ $(vm_field h1 web1 owner) == 2 ]] || fail "web1 left h2 before the storage timeout ($(since "$t0") s)"
moved() { runs_elsewhere web1 2 h1; }
wait_for 40 "web1 running on another host" moved
owner=$(vm_field h1 web1 owner)
echo "RESULT: cut -> web1 running on h$owner after $(since "$t0") s (storage timeout 30 s)"
ticks_there() { [[ -n $(ticks "h$owner" web1) ]]; }
wait_for 30 "web1 ticking on h$owner" ticks_there
(( $(vm_field h1 web1 generation) > gen )) || fail "web1's generation did not move on"
ctl h1 events | grep -E 'vm web1 .*host 2 lost pool san .* fenced off its volumes, restarting elsewhere' ||
	fail "no event says why web1 left h2: $(ctl h1 events | tail -8)"
no_qemu_on_h2() { [[ -z $(qemu_pid h2 "$uuid") ]]; }
wait_for 15 "h2's QEMU for web1 gone" no_qemu_on_h2

step "the cut lasts 60 s; lab heal h2 storage: h2 does not run web1 too"
while awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { exit !(b - a < 60) }'; do sleep 0.5; done
"$LAB" heal h2 storage >/dev/null
wait_for 15 "h2 reporting san reachable again" reach_is h1 2 true
sleep 5
[[ -z $(qemu_pid h2 "$uuid") ]] || fail "h2 runs web1 again after its storage came back"
[[ $(vm_field h1 web1 owner) == "$owner" ]] && phase_is h1 web1 running ||
	fail "web1 is $(vm_field h1 web1 phase) on $(vm_field h1 web1 owner) after the heal"
keys=$(ctl h1 --json pr keys "$URL")
echo "keys on the LUN: $(jq -c '.keys' <<<"$keys")"
[[ $(jq -r --arg n "$(printf '%08x' 2)" '.keys | map(select(endswith($n))) | length' <<<"$keys") == 0 ]] ||
	fail "h2's key is registered on web1's LUN again: $keys"

step "journal intact; the auditor saw no VM twice"
ctl h1 vm stop web1 >/dev/null
wait_for 30 "web1 stopped" phase_is h1 web1 stopped
journal_ok h1
"$AUDITOR" check "$TMP/audit" || fail "the auditor saw a VM on two hosts at once"
echo "PASS"
