#!/bin/bash
# test-lab-replica.sh — issue 14's replicated state under faults, on 3 lab
# hosts with real corosync, tgtd and QEMU:
#  1. The erased cluster: host 3's management link cut, its havend stopped,
#     its state file removed (a reinstalled host), havend restarted on it a
#     few times while cut off, then the link healed. Host 3 is never
#     quorate alone, joins as a learner, and adopts the others' state: host
#     1 still lists its VM, pool and volume, and so does host 3. (Before
#     issue 14 every host adopted host 3's empty state.)
#  2. Changes delivered during a sync: host 3 behind (havend stopped while
#     the others change the state), then restarted while host 2's havend
#     is paused with client requests waiting; resumed, host 2 sends them
#     around the configuration change. Every request is answered, and
#     every host ends with the same pools and the same events.
#  3. A silent member: host 2's havend frozen while host 3's restart opens a
#     sync; after 5 s hosts 1 and 3 go on without it and answer a request;
#     host 2, resumed, joins afresh and has the change.
#  4. Host 3's state directory read-only: it cannot persist a change, says
#     so, leaves and refuses requests; writable again, it joins and has
#     the change it missed.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
CHECK=$(realpath "${HAVEN_JOURNAL_CHECK:?set HAVEN_JOURNAL_CHECK}")
NHOSTS=3

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"

lab_test_begin replica
havend_pid() { "$LAB" exec "$1" cat /run/havend.pid 2>/dev/null; }
havend_alive() { "$LAB" exec "$1" sh -c 'kill -0 "$(cat /run/havend.pid)"' 2>/dev/null; }
stop_havend() {
	"$LAB" exec "$1" sh -c 'kill -TERM "$(cat /run/havend.pid)"' 2>/dev/null || true
	gone() { ! havend_alive "$1"; }
	wait_for 15 "$1's havend to stop" gone "$1"
}
synced_lines() { "$LAB" exec "$1" grep -c "synced:" /var/log/havend.log 2>/dev/null || echo 0; }
# what a host lists: VMs, pools, volumes (names) and its events
listing() {
	echo "vms $(ctl "$1" --json vm list | jq -c '[.[].name] | sort')"
	echo "pools $(ctl "$1" --json pool list | jq -c '[.[].name] | sort')"
	echo "volumes $(ctl "$1" --json volume list | jq -c '[.[].name] | sort')"
}
events_of() { ctl "$1" --json events | jq -c -s '[.[] | [.seq, .subject, .text]]'; }

step "3 hosts, havend everywhere; web1 running on h1"
lab_cluster 3
mkdir -p "$TMP/audit"
"$AUDITOR" start "$TMP/audit"
ctl h1 vm create web1 --memory 96M --volume web1-disk --prefer 1 --stop-timeout 3 \
	--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100 journal=on" >/dev/null
ctl h1 vm start web1 >/dev/null
wait_for 60 "web1 running" phase_is h1 web1 running
[[ $(vm_field h1 web1 owner) == 1 ]] || fail "web1 is not on h1"
before=$(listing h1)
echo "$before"

step "1. h3 cut off, its state file removed, havend restarted alone 10 times, then healed"
"$LAB" cut haven-h3 mgmt >/dev/null
wait_for 30 "h1 without h3" members_are h1 '[true,[1,2]]'
stop_havend h3
"$LAB" exec h3 rm -f /var/lib/haven/cluster.state
# Each start alone counts one more epoch on h3: more than h1 and h2 have
# counted, as in issue 14 ("epoch 7").
for i in 1 2 3 4 5 6 7 8 9 10; do
	n0=$(synced_lines h3)
	start_havend h3
	more_synced() { (($(synced_lines h3) > n0)); }
	wait_for 20 "h3's havend to sync alone" more_synced
	"$LAB" exec h3 grep "synced:" /var/log/havend.log | tail -1
	[[ $(status h3 | jq .quorate) == false ]] || fail "h3 alone with an empty state says quorate"
	if ((i < 10)); then stop_havend h3; fi
done
"$LAB" heal haven-h3 mgmt >/dev/null
wait_for 45 "h3 back" members_are h1 '[true,[1,2,3]]'
wait_for 20 "h3 agrees" members_are h3 '[true,[1,2,3]]'
after=$(listing h1)
[[ $after == "$before" ]] || fail "h1 lost its state: before: $before; after: $after"
[[ $(listing h3) == "$before" ]] || fail "h3 did not adopt the cluster's state: $(listing h3)"
phase_is h1 web1 running || fail "web1 is not running after the heal"
ctl h1 --json events | jq -e -s 'map(select(.subject == "vm web1")) | length > 0' >/dev/null ||
	fail "h1's events about web1 are gone"
"$LAB" exec h3 grep -q "joins as a learner\|adopted node" /var/log/havend.log ||
	fail "h3 did not adopt a snapshot"
echo "h1 and h3 list: $after"

step "2. changes delivered during a sync are applied by every host"
stop_havend h3
ctl h1 pool add behind --portal 10.77.2.2:3260 --target iqn.2026-11.lab.haven:behind >/dev/null
# h2's havend paused while clients send it pool adds and h3 (behind)
# returns: once resumed, h2 may send some of them before it has seen the
# configuration change, and they are delivered during the sync (they
# used to be dropped by every member, their clients never answered);
# others are queued and sent as h2's sync ends, possibly reaching h3
# while it waits for h1's snapshot (they used to be dropped there).
"$LAB" exec h2 sh -c 'kill -STOP "$(cat /run/havend.pid)"'
pids=()
for i in 1 2 3 4 5 6 7 8; do
	timeout 30 "$LAB" exec h2 "$HAVENCTL" pool add "during$i" --portal 10.77.2.2:3260 \
		--target "iqn.2026-11.lab.haven:d$i" >/dev/null &
	pids+=($!)
done
start_havend h3
sleep 1
"$LAB" exec h2 sh -c 'kill -CONT "$(cat /run/havend.pid)"'
for p in "${pids[@]}"; do wait "$p" || fail "a pool add sent during the sync got no answer or failed"; done
wait_for 30 "h3 back" members_are h1 '[true,[1,2,3]]'
for i in 1 2 3 4 5 6 7 8; do
	ctl h1 --json pool list | jq -e --arg n "during$i" 'map(select(.name == $n)) | length == 1' >/dev/null ||
		fail "pool during$i, acknowledged, is not in the state"
done
want=$(listing h1)
for h in h2 h3; do
	same() { [[ $(listing "$1") == "$want" ]]; }
	wait_for 10 "$h to list what h1 lists" same "$h"
done
[[ $(events_of h2) == "$(events_of h1)" ]] || fail "h2's events differ from h1's"
[[ $(events_of h3) == "$(events_of h1)" ]] || fail "h3's events differ from h1's"
echo "every host: $want"

step "3. a member silent in a sync is left out: the others go on without it"
# h2's havend frozen (its corosync runs on): the sync that h3's restart
# opens never hears from h2. After 5 s the others go on without it, and a
# request made meanwhile is answered; h2, resumed, joins afresh. (Before,
# the sync waited for h2 for as long as it stayed frozen.)
"$LAB" exec h2 sh -c 'kill -STOP "$(cat /run/havend.pid)"'
stop_havend h3
start_havend h3
t0=$(now)
timeout 25 "$LAB" exec h1 "$HAVENCTL" pool add silent1 --portal 10.77.2.2:3260 \
	--target iqn.2026-11.lab.haven:s1 >/dev/null ||
	{ "$LAB" exec h2 sh -c 'kill -CONT "$(cat /run/havend.pid)"'; fail "no answer while h2 was silent"; }
echo "answered $(since "$t0") s after h3's restart, h2 still frozen"
"$LAB" exec h1 grep -q "sent nothing for 5 s: going on without it" /var/log/havend.log ||
	fail "h1 did not say it went on without the silent node"
"$LAB" exec h2 sh -c 'kill -CONT "$(cat /run/havend.pid)"'
wait_for 30 "h2 back in the group" members_are h1 '[true,[1,2,3]]'
has_silent1() { ctl h2 --json pool list | jq -e 'map(select(.name == "silent1")) | length == 1' >/dev/null; }
wait_for 20 "h2 to have the change made without it" has_silent1
phase_is h1 web1 running || fail "web1 is not running"

step "4. a host that cannot persist leaves rather than diverge, and comes back"
"$LAB" exec h3 mount -o remount,bind,ro /var/lib/haven
ctl h1 pool add ro1 --portal 10.77.2.2:3260 --target iqn.2026-11.lab.haven:ro1 >/dev/null
h3_left() { "$LAB" exec h3 grep -q "this host leaves the cluster until it can" /var/log/havend.log; }
wait_for 10 "h3 to say it cannot persist and leaves" h3_left
if out=$(ctl h3 pool add ro2 --portal 10.77.2.2:3260 --target iqn.2026-11.lab.haven:ro2 2>&1); then
	fail "h3 accepted a change it cannot persist"
fi
echo "h3 refuses: $out"
"$LAB" exec h3 mount -o remount,bind,rw /var/lib/haven
h3_joins() { "$LAB" exec h3 grep -q "persists again: joining" /var/log/havend.log; }
wait_for 15 "h3 to persist again and join" h3_joins
h3_writes() { ctl h3 pool add ro2 --portal 10.77.2.2:3260 --target iqn.2026-11.lab.haven:ro2 >/dev/null 2>&1; }
wait_for 20 "h3 to take changes again" h3_writes
has_ro() { ctl "$1" --json pool list | jq -e 'map(select(.name == "ro1" or .name == "ro2")) | length == 2' >/dev/null; }
wait_for 10 "h1 and h3 to agree" bash -c "$(declare -f ctl has_ro); LAB='$LAB' HAVENCTL='$HAVENCTL'; has_ro h1 && has_ro h3"
"$AUDITOR" check "$TMP/audit" || fail "the auditor saw a VM on two hosts at once"
echo "PASS"
