#!/bin/bash
# test-lab-recovery.sh — the other ways a VM comes back, on 3 lab hosts
# (real corosync, tgtd, QEMU; the auditor on):
#  1. its QEMU dies: restarted in place (max_restarts 1), then, when it dies
#     again, on another host.
#  2. havend hangs on the owner (SIGSTOP; corosync still fine, so nobody
#     notices): its watchdog — the lab's stand-in on a FIFO — is no longer
#     petted and resets the host; the VM fails over.
#  3. admission control: with one host failure to tolerate, a VM that would
#     not fit after the largest host fails is refused with a clear message.
#  4. failback: a VM with --failback returns to its preferred host once that
#     host is back.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")
CHECK=$(realpath "${HAVEN_JOURNAL_CHECK:?set HAVEN_JOURNAL_CHECK}")
NHOSTS=3
STANDIN=$(dirname "$0")/watchdog-standin
WD_PID=

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"

lab_test_extra_cleanup() {
	[[ -z $WD_PID ]] || kill "$WD_PID" 2>/dev/null || true
}
lab_test_begin recovery

step "3 hosts; h3's havend pets a watchdog (the lab's stand-in, 4 s); the others fence by waiting it out"
mkdir -p "$TMP/wd"
lab_cluster 3 '
[fence:wd]
agent = watchdog'
for i in 1 2; do
	"$LAB" exec "h$i" sh -c "sed -i 's|^device = none|device = none\ntimeout_s = 4|' /etc/haven/haven.conf"
	"$LAB" exec "h$i" sh -c 'p=$(cat /run/havend.pid); kill "$p"; while kill -0 "$p" 2>/dev/null; do sleep 0.1; done'
	start_havend "h$i"
done
"$LAB" exec h3 sh -c "sed -i 's|^device = none|device = $TMP/wd/h3\ntimeout_s = 4|' /etc/haven/haven.conf"
"$STANDIN" haven-h3 "$TMP/wd/h3" 4 >"$TMP/wd/h3.log" 2>&1 &
WD_PID=$!
for _ in $(seq 1 50); do [[ -p $TMP/wd/h3 ]] && break; sleep 0.1; done
"$LAB" exec h3 sh -c 'p=$(cat /run/havend.pid); kill "$p"; while kill -0 "$p" 2>/dev/null; do sleep 0.1; done'
start_havend h3
wait_for 30 "h3 back" members_are h1 '[true,[1,2,3]]'
"$LAB" exec h3 grep -q "watchdog $TMP/wd/h3 armed" /var/log/havend.log || fail "h3's havend did not arm the watchdog"
mkdir -p "$TMP/audit"
"$AUDITOR" start "$TMP/audit"

step "1. QEMU dies: restarted in place, then on another host"
ctl h1 vm create web1 --memory 64M --volume web1-disk --prefer 2 --max-restarts 1 --stop-timeout 3 \
	--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100 journal=on"
ctl h1 vm start web1 >/dev/null
wait_for 60 "web1 running" phase_is h1 web1 running
uuid=$(vm_field h1 web1 uuid)
gen=$(vm_field h1 web1 generation)
q=$(qemu_pid h2 "$uuid")
[[ -n $q ]] || fail "no QEMU on h2"
kill -KILL "$q"
regen() { phase_is h1 web1 running && [[ $(vm_field h1 web1 generation) != "$1" ]]; }
wait_for 30 "web1 restarted" regen "$gen"
[[ $(vm_field h1 web1 owner) == 2 ]] || fail "web1 was not restarted in place"
echo "QEMU killed: web1 restarted on node 2 (generation $(vm_field h1 web1 generation), restarts $(vm_field h1 web1 restarts))"
gen=$(vm_field h1 web1 generation)
q=$(qemu_pid h2 "$uuid")
kill -KILL "$q"
wait_for 30 "web1 restarted again" regen "$gen"
[[ $(vm_field h1 web1 owner) != 2 ]] || fail "web1 stayed on node 2 after its restart limit"
echo "killed again: web1 moved to node $(vm_field h1 web1 owner)"

step "2. havend on the owner hangs: its watchdog resets the host; web1 fails over"
# web2 on its own LUN runs on h3, the host with the watchdog.
url2=$("$LAB" lun add web2 512M)
ctl h1 --key haven-lab:1 disk format --cluster haven-lab --state-size 128M "$url2" >/dev/null
ctl h1 --key haven-lab:1 disk create "$url2" --size 64M >/dev/null
ctl h1 volume add web2-disk --pool san --lun "${url2##*/}" >/dev/null
ctl h1 vm create web2 --memory 64M --volume web2-disk --prefer 3 --failback --stop-timeout 3 \
	--disk-bus ide --kernel "$TMP/guest.elf" --append "tick_ms=100 journal=on"
ctl h1 vm start web2 >/dev/null
on_h3() { [[ $(ctl h1 --json vm show web2 | jq -r '[.phase,.owner]|join(" ")') == "running 3" ]]; }
wait_for 60 "web2 running on h3" on_h3
t0=$(now)
"$LAB" exec h3 sh -c 'kill -STOP "$(cat /run/havend.pid)"'
wait_for 60 "web2 running elsewhere" runs_elsewhere web2 3 h1
echo "web2 on node $(vm_field h1 web2 owner) $(since "$t0") s after havend hung on h3"
grep -q "expired" "$TMP/wd/h3.log" || fail "the watchdog did not fire: $(cat "$TMP/wd/h3.log")"
tail -1 "$TMP/wd/h3.log"
text=$(ctl h1 --json events | jq -r -s 'map(select(.subject == "host 3")) | last | .text')
echo "host 3: $text"
[[ $text == "fenced by level wd"* ]] || fail "host 3 was not fenced by the watchdog level: $text"
[[ -z $("$LAB" pids h3) ]] || fail "h3 still has processes after its watchdog fired"

step "4. failback: h3 back, web2 (--failback, prefers 3) returns to it"
"$LAB" start haven-h3 >/dev/null
WD_PID=
"$LAB" exec h3 sh -c "sed -i 's|^device = .*|device = none|' /etc/haven/haven.conf"
start_havend h3
wait_for 30 "h3 back" members_are h1 '[true,[1,2,3]]'
wait_for 90 "web2 back on h3" on_h3
ctl h1 events | grep 'vm web2' | tail -4

step "3. admission control: one host failure to tolerate"
ctl h1 cluster set --host-failures-to-tolerate 1
ctl h1 cluster show
mem=$(ctl h1 --json node list | jq '[.nodes[].memory_mib] | min')
ctl h1 vm create huge --memory "$((mem * 2))M" >/dev/null
if out=$(ctl h1 vm start huge 2>&1); then fail "a VM that breaks admission control was started"; fi
echo "refused: $out"
[[ $out == *"admission control"* && $out == *"host failure"* ]] || fail "unclear refusal: $out"
ctl h1 cluster set --host-failures-to-tolerate 0 >/dev/null

step "the auditor saw no VM twice; every acknowledged record is on the LUN"
"$AUDITOR" check "$TMP/audit" || fail "the auditor saw a VM on two hosts at once"
ctl h1 vm stop web1 >/dev/null
wait_for 30 "web1 stopped" phase_is h1 web1 stopped
journal_ok h1
echo "PASS"
