#!/bin/bash
# test-lab-storage-giveup.sh — the storage giveup (issue 20): with
# `cluster set --storage-giveup-s 15`, the SAN frozen (SIGSTOP of tgtd, as
# lab.san-freeze) past the giveup while web1 (on h2) and web2 (on h3) write
# their journals. Both pause; no host reaches the SAN, so nothing moves;
# 15 s after each paused (by the event log, not before) the coordinator
# stops it: phase stopped, its QEMU gone, an event that says why and what
# to do. `vm start web2` while the SAN is still frozen is taken but waits.
# Once the SAN answers, a member fences each VM's old host off its volume
# (its key gone from the LUN) before anything starts: web2 then starts by
# itself; web1 stays stopped (as documented) until `vm start web1`, and
# boots afresh. No acknowledged journal record is lost; the auditor saw no
# VM twice. Also checked: the settings in cluster show / status and a VM's
# own storage timeout in vm show; and `vm stop` of a VM paused on a frozen
# SAN stops it at once, like a giveup: it starts again only after its old
# host was fenced off its volume.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
CHECK=$(realpath "${HAVEN_JOURNAL_CHECK:?set HAVEN_JOURNAL_CHECK}")
NHOSTS=3
GIVEUP=15

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"

lab_test_begin storage-giveup
# A SAN left frozen by a failure would hang the lab's teardown.
lab_test_extra_cleanup() { "$LAB" resume san >/dev/null 2>&1 || true; }

step "3 hosts, storage giveup $GIVEUP s; web1 on h2, web2 (its own storage timeout) on h3"
lab_cluster 3
new_lun web2
URL2=$("$LAB" lun list | awk '$2 == "web2" { print $4 }')
[[ -n $URL2 ]] || fail "no LUN web2"
ctl h1 cluster set --storage-giveup-s "$GIVEUP" >/dev/null
[[ $(ctl h1 --json cluster show | jq -r .storage_giveup_s) == "$GIVEUP" ]] ||
	fail "cluster show does not give the giveup: $(ctl h1 --json cluster show)"
ctl h1 cluster show | grep -q "storage giveup: after $GIVEUP s" || fail "cluster show: $(ctl h1 cluster show)"
[[ $(status h2 | jq -r .storage_giveup_s) == "$GIVEUP" ]] || fail "status does not give the giveup"
ctl h1 cluster set --storage-giveup-s 10x >/dev/null 2>&1 && fail "cluster set took --storage-giveup-s 10x"
mkdir -p "$TMP/audit"
"$AUDITOR" start "$TMP/audit"
declare -A home uuid
home[web1]=2
home[web2]=3
ctl h1 vm create web1 --memory 64M --volume web1-disk --stop-timeout 3 --prefer 2 \
	--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100 journal=on" >/dev/null
ctl h1 vm create web2 --memory 64M --volume web2-disk --stop-timeout 3 --prefer 3 \
	--storage-timeout-s 90 --disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100 journal=on" >/dev/null
[[ $(vm_field h1 web2 storage_timeout_s) == 90 ]] || fail "vm show does not give web2's storage timeout"
ctl h1 vm show web1 | grep -q "storage timeout:  the cluster's" || fail "vm show web1: no storage timeout line"
for vm in web1 web2; do
	ctl h1 vm start "$vm" >/dev/null
	uuid[$vm]=$(vm_field h1 "$vm" uuid)
done
for vm in web1 web2; do
	wait_for 60 "$vm running" phase_is h1 "$vm" running
	[[ $(vm_field h1 "$vm" owner) == "${home[$vm]}" ]] || fail "$vm runs on $(vm_field h1 "$vm" owner)"
	has_ticks() { [[ -n $(ticks "h${home[$1]}" "$1") ]]; }
	wait_for 30 "$vm ticking" has_ticks "$vm"
done
boot1=$(boot_of h2 web1)

# event_us VM TEXT — the time (us) of VM's last event containing TEXT.
event_us() {
	ctl h1 --json events | jq -r -s --arg s "vm $1" --arg t "$2" \
		'map(select(.subject == $s and (.text | contains($t)))) | .[-1].time_us // empty'
}
paused_for_storage() {
	[[ $(vm_field h1 "$1" phase) == paused ]] &&
		[[ $(vm_field h1 "$1" paused_why) == *"storage lost at"* ]]
}
stopped_here() { phase_is h1 "$1" stopped && [[ -z $(qemu_pid "h${home[$1]}" "${uuid[$1]}") ]]; }

step "the SAN frozen: both pause; nothing moves; $GIVEUP s later each is stopped, not before"
t0=$(now)
"$LAB" pause san >/dev/null
for vm in web1 web2; do wait_for 20 "$vm paused for its storage" paused_for_storage "$vm"; done
tp=$(now)
echo "both paused $(since "$t0") s after the freeze"
# 10 s into the pause (of the later one, seen here): still paused, still home.
while awk -v a="$tp" -v b="$EPOCHREALTIME" 'BEGIN { exit !(b - a < 10) }'; do sleep 0.5; done
for vm in web1 web2; do
	[[ $(vm_field h1 "$vm" phase) == paused && $(vm_field h1 "$vm" owner) == "${home[$vm]}" ]] ||
		fail "$vm is $(vm_field h1 "$vm" phase) on $(vm_field h1 "$vm" owner) $(since "$tp") s into the pause (giveup $GIVEUP s)"
done
for vm in web1 web2; do wait_for 20 "$vm stopped by the giveup" stopped_here "$vm"; done
echo "both stopped $(since "$t0") s after the freeze"
for vm in web1 web2; do
	p=$(event_us "$vm" "storage lost at")
	g=$(event_us "$vm" "stopped by storage_giveup_s")
	[[ -n $p && -n $g ]] || fail "no pause or giveup event for $vm: $(ctl h1 events | tail -6)"
	held=$(awk -v p="$p" -v g="$g" 'BEGIN { printf "%.1f", (g - p) / 1e6 }')
	echo "RESULT: $vm given up $held s after it paused (storage_giveup_s $GIVEUP)"
	awk -v h="$held" -v s="$GIVEUP" 'BEGIN { exit !(h >= s && h < s + 5) }' ||
		fail "$vm was given up $held s after it paused, not $GIVEUP-$((GIVEUP + 5)) s"
	ctl h1 events | grep -E "vm $vm .*stopped by storage_giveup_s; start it with 'havenctl vm start $vm' when the SAN is back" ||
		fail "the giveup event of $vm does not say why and what to do"
	[[ $(vm_field h1 "$vm" state) == stopped ]] || fail "$vm is still meant to run after the giveup"
	[[ $(ctl h1 --json vm show "$vm" | jq -r .storage_giveup.host) == "${home[$vm]}" ]] ||
		fail "vm show does not say $vm waits for h${home[$vm]} to be fenced: $(ctl h1 --json vm show "$vm" | jq -c .storage_giveup)"
done
ctl h1 vm list
ctl h1 vm list | grep -q "given up: .*host 2 is fenced off its volumes" || fail "vm list does not say why web1 waits"

step "vm start web2 while the SAN is still frozen: taken, but it waits for the fence"
ctl h1 vm start web2 >/dev/null
sleep 4
[[ $(vm_field h1 web2 state) == running && $(vm_field h1 web2 phase) == stopped ]] ||
	fail "web2 is $(vm_field h1 web2 state)/$(vm_field h1 web2 phase) while nobody reaches the SAN"
for i in 1 2 3; do
	[[ -z $(qemu_pid "h$i" "${uuid[web2]}") ]] || fail "web2 runs on h$i while its old host's writes may be pending"
done

step "the SAN answers: each old host is fenced off its volume; web2 starts, web1 stays stopped"
ts=$(now)
"$LAB" resume san >/dev/null
echo "SAN frozen for $(awk -v a="$t0" -v b="$ts" 'BEGIN { printf "%.0f", b - a }') s"
no_giveup() { [[ $(ctl h1 --json vm show "$1" | jq -r '.storage_giveup // "none"') == none ]]; }
for vm in web1 web2; do wait_for 30 "h${home[$vm]} fenced off $vm's volume" no_giveup "$vm"; done
echo "both old hosts fenced $(since "$ts") s after the SAN answered"
ctl h1 events | grep -E "vm web1 .*host 2's key is off its volumes" || fail "no event says h2 was fenced off web1's volume"
wait_for 30 "web2 running again" phase_is h1 web2 running
echo "RESULT: web2 (started during the outage) runs on h$(vm_field h1 web2 owner) $(since "$ts") s after the SAN answered"
keys=$(ctl h1 --json pr keys "$URL")
echo "keys on web1's LUN: $(jq -c '.keys' <<<"$keys")"
[[ $(jq -r --arg n "$(printf '%08x' 2)" '.keys | map(select(endswith($n))) | length' <<<"$keys") == 0 ]] ||
	fail "h2's key is still registered on web1's LUN: $keys"
while awk -v a="$ts" -v b="$EPOCHREALTIME" 'BEGIN { exit !(b - a < 10) }'; do sleep 0.5; done
[[ $(vm_field h1 web1 phase) == stopped && $(vm_field h1 web1 state) == stopped ]] ||
	fail "web1 is $(vm_field h1 web1 phase) 10 s after the SAN answered; a VM given up stays stopped"
for i in 1 2 3; do
	[[ -z $(qemu_pid "h$i" "${uuid[web1]}") ]] || fail "web1 runs on h$i after its giveup"
done

step "vm start web1: it boots afresh; journals intact; the auditor saw no VM twice"
ctl h1 vm start web1 >/dev/null
wait_for 60 "web1 running" phase_is h1 web1 running
o=$(vm_field h1 web1 owner)
ticks_there() { [[ -n $(ticks "h$o" web1) ]]; }
wait_for 30 "web1 ticking on h$o" ticks_there
[[ $(boot_of "h$o" web1) != "$boot1" ]] || fail "web1 did not boot afresh"

step "vm stop of web2 paused on a frozen SAN: stopped at once; its host fenced before it starts again"
home[web2]=$(vm_field h1 web2 owner)
"$LAB" pause san >/dev/null
wait_for 20 "web2 paused for its storage" paused_for_storage web2
t1=$(now)
ctl h1 vm stop web2 >/dev/null
wait_for 10 "web2 stopped, its QEMU gone" stopped_here web2
echo "RESULT: web2 stopped $(since "$t1") s after vm stop, the SAN still frozen"
[[ $(ctl h1 --json vm show web2 | jq -r .storage_giveup.host) == "${home[web2]}" ]] ||
	fail "web2's old host h${home[web2]} is not marked to be fenced: $(ctl h1 --json vm show web2 | jq -c .storage_giveup)"
ctl h1 events | grep -q "vm web2 .*stopped while paused for its storage" || fail "no event says why web2 waits"
ctl h1 vm start web2 >/dev/null
sleep 2
[[ $(vm_field h1 web2 phase) == stopped ]] || fail "web2 started while its old host's writes may be pending"
"$LAB" resume san >/dev/null
wait_for 30 "h${home[web2]} fenced off web2's volume" no_giveup web2
wait_for 30 "web2 running again" phase_is h1 web2 running
keys=$(ctl h1 --json pr keys "$URL2")
[[ $(jq -r --arg n "$(printf '%08x' "${home[web2]}")" '.keys | map(select(endswith($n))) | length' <<<"$keys") == 0 ||
	$(vm_field h1 web2 owner) == "${home[web2]}" ]] ||
	fail "h${home[web2]}'s key is still on web2's LUN while web2 runs elsewhere: $keys"
wait_for 30 "web1 running after the freeze" phase_is h1 web1 running
for vm in web1 web2; do ctl h1 vm stop "$vm" >/dev/null; done
for vm in web1 web2; do wait_for 30 "$vm stopped" phase_is h1 "$vm" stopped; done
journal_ok h1 web1 "$URL"
journal_ok h1 web2 "$URL2"
"$AUDITOR" check "$TMP/audit" || fail "the auditor saw a VM on two hosts at once"
echo "PASS"
