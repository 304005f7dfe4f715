#!/bin/bash
# test-lab-fence-volumes.sh — the storage fence covers every volume of the
# cluster, however many: 3 lab hosts, a second SAN target with 300 small
# LUNs defined as volumes (pool "many"), then a VM on a volume defined after
# them (the 302nd). Its owner is killed: the storage level must preempt the
# victim's key on all 302 volumes (it stopped at 256 before, so the VM's
# own volume kept the lost host's key), the VM runs elsewhere, and the
# victim's key is gone from its volume. LUNs above 255 are addressed as
# such (libiscsi sent LUN 257 as LUN 1).
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
NHOSTS=3
NMANY=300
MANY_IQN=iqn.2026-11.lab.haven:many

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"
lab_test_begin fence-volumes

step "3 hosts; a second target with $NMANY LUNs, each a volume of pool 'many'"
lab_cluster 3
"$LAB" exec san sh -c "
	set -e
	tgtadm --lld iscsi --op new --mode target --tid 2 -T $MANY_IQN
	tgtadm --lld iscsi --op bind --mode target --tid 2 -I ALL
	for i in \$(seq 1 $NMANY); do
		truncate -s 8M /run/luns/many-\$i.img
		tgtadm --lld iscsi --op new --mode logicalunit --tid 2 --lun \$i -b /run/luns/many-\$i.img --bstype rdwr
	done"
ctl h1 pool add many --portal 10.77.2.2:3260 --target "$MANY_IQN" >/dev/null

step "LUNs above 255 are their own (flat addressing), not LUN N-256"
many=iscsi://10.77.2.2:3260/$MANY_IQN
ctl h1 --key haven-lab:1 disk format --cluster haven-lab --state-size 2M "$many/257" >/dev/null
ctl h1 --key haven-lab:1 disk create "$many/257" --size 4M >/dev/null
if out=$(ctl h1 disk info "$many/1" 2>&1); then
	fail "formatting LUN 257 wrote LUN 1: $out"
fi
ctl h1 disk info "$many/257" >/dev/null || fail "LUN 257 does not hold the volume just formatted there"
echo "LUN 257 formatted; LUN 1: $(tail -1 <<<"$out")"

step "$NMANY volumes on pool 'many'"
t0=$(now)
for i in $(seq 1 "$NMANY"); do
	ctl h1 volume add "many-$i" --pool many --lun "$i" --size 8M >/dev/null
done
echo "$NMANY volumes defined in $(since "$t0") s"
new_lun web2
nvol=$(ctl h1 --json volume list | jq 'length')
(( nvol == NMANY + 2 )) || fail "$nvol volumes in the state, expected $((NMANY + 2))"
url2=$("$LAB" lun list | awk '$2 == "web2"' | grep -o 'iscsi://[^ ]*')
[[ -n $url2 ]] || fail "no URL for web2's LUN"

step "web2 on the last volume; its owner killed: fenced on every volume, web2 runs elsewhere"
ctl h1 vm create web2 --memory 64M --volume web2-disk --stop-timeout 3 \
	--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100"
ctl h1 vm start web2 >/dev/null
wait_for 60 "web2 running" phase_is h1 web2 running
owner=$(vm_field h1 web2 owner)
ask=h$(( owner % 3 + 1 ))
holder=$(ctl "$ask" --json pr keys "$url2" | jq -r '.holder // empty')
[[ -n $holder ]] || fail "web2's volume has no reservation holder while web2 runs on node $owner"
echo "web2 runs on node $owner; its volume's reservation is held by $holder"
"$LAB" kill "haven-h$owner" >/dev/null
t0=$(now)
wait_for 60 "web2 running elsewhere" runs_elsewhere web2 "$owner" "$ask"
echo "web2 running on node $(vm_field "$ask" web2 owner) $(since "$t0") s after the kill"
fenced=$(ctl "$ask" events | grep -i "fenced" | grep -i "preempted" | tail -1)
echo "fence: $fenced"
[[ $fenced =~ of\ ([0-9]+)\ volumes ]] || fail "no storage fence event with a volume count"
(( BASH_REMATCH[1] == NMANY + 2 )) || fail "the storage fence covered ${BASH_REMATCH[1]} of $((NMANY + 2)) volumes"
ctl "$ask" --json pr keys "$url2" >"$TMP/keys.json" || fail "cannot read web2's keys after the fence"
echo "web2's volume after the fence: $(jq -c . "$TMP/keys.json")"
jq -e --arg k "$holder" '.keys | index($k) == null' "$TMP/keys.json" >/dev/null ||
	fail "the lost node $owner's key $holder is still registered on web2's volume"
echo "PASS"
