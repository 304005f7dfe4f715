#!/bin/bash
# test-lab-cluster.sh — membership and quorum under the lab's faults:
# kill/start, cut/heal of the management NIC, pause/resume.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
T0=$EPOCHREALTIME

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
secs() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }
# wait_q HOST quorate|inquorate MEMBERS [TIMEOUT]
wait_q() { "$LAB" wait "$1" "$2" "$3" "${4:-20}" || fail "$1 did not become $2 with $3 members"; }

[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root"; exit 77; }
command -v jq >/dev/null || fail "needs jq (apt-get install jq)"
if "$LAB" status >/dev/null 2>&1; then
	fail "a lab is already up; run '$LAB down' first (not touching it)"
fi
trap '"$LAB" down >/dev/null || echo "WARNING: lab down failed" >&2' EXIT

step "lab up"
"$LAB" up
for h in 1 2 3; do wait_q haven-h$h quorate 3 5; done

step "corosync listens only on the management address"
for h in 1 2 3; do
	socks=$("$LAB" exec h$h ss -Hulnp | awk '/"corosync"/ { print $4 }')
	[[ $socks == "10.77.1.1$h:5405" ]] || fail "corosync on h$h listens on '$socks', expected 10.77.1.1$h:5405"
done

step "markers: volatile (/run, /dev/shm) and persistent (/var/lib/haven, /etc/haven) on h3"
"$LAB" exec h3 sh -c 'touch /run/marker /dev/shm/marker /var/lib/haven/marker /etc/haven/marker'
# and they are private to h3
"$LAB" exec h1 sh -c '! test -e /run/marker && ! test -e /var/lib/haven/marker' ||
	fail "h3's files are visible on h1"

step "lab kill haven-h3 (power loss)"
t=$EPOCHREALTIME
"$LAB" kill haven-h3
wait_q haven-h1 quorate 2 15
drop=$(secs "$t")
wait_q haven-h2 quorate 2 5
[[ $("$LAB" status --json | jq -r '.hosts[2].state') == down ]] || fail "status does not show h3 down"
echo "RESULT: killed haven-h3 left haven-h1's membership after $drop s"

step "lab start haven-h3 (power on)"
"$LAB" start haven-h3
for h in 3 1 2; do wait_q haven-h$h quorate 3 20; done
"$LAB" exec h3 sh -c '! test -e /run/marker && ! test -e /dev/shm/marker' ||
	fail "h3's /run or /dev/shm survived the power cycle"
"$LAB" exec h3 sh -c 'test -e /var/lib/haven/marker && test -e /etc/haven/marker' ||
	fail "h3's /var/lib/haven or /etc/haven did not survive the power cycle"

step "lab cut haven-h1 mgmt"
"$LAB" cut haven-h1 mgmt
wait_q haven-h1 inquorate 1 15
wait_q haven-h2 quorate 2 15
wait_q haven-h3 quorate 2 15
[[ $("$LAB" status --json | jq -r '.hosts[0].nics.mgmt0') == down ]] || fail "status does not show h1 mgmt0 down"

step "lab heal haven-h1 mgmt"
"$LAB" heal haven-h1 mgmt
for h in 1 2 3; do wait_q haven-h$h quorate 3 20; done

step "lab pause haven-h2"
"$LAB" pause haven-h2
[[ $("$LAB" status --json | jq -r '.hosts[1].state') == paused ]] || fail "status does not show h2 paused"
wait_q haven-h1 quorate 2 15
wait_q haven-h3 quorate 2 15

step "lab resume haven-h2"
"$LAB" resume haven-h2
# h1 and h3 first: right after SIGCONT, h2 still reports its stale view
wait_q haven-h1 quorate 3 20
wait_q haven-h3 quorate 3 20
wait_q haven-h2 quorate 3 20

step "lab down"
"$LAB" down
trap - EXIT
[[ -z $(ip netns list | grep haven || true) ]] || fail "haven namespaces left after down"
echo "PASS: test-lab-cluster ($(secs "$T0") s)"
