#!/bin/bash
# test-lab-bmc.sh — IPMI fencing against the lab's simulated BMCs (lab up
# --bmc): havenctl fence agents/metadata/validate through libstonithd, then
# fence/agent.c (haven-fence-run) running the real fence_ipmilan from h2
# against h1's BMC: a wrong password fails with the agent's message and
# touches nothing, the right one powers h1 off (its processes gone, its
# corosync out of the others' membership), fence_ipmilan -o on brings it
# back. Also the BMC's own power bookkeeping: lab kill/start, a SIGKILLed
# power holder, and the pacemaker level without a Pacemaker fencer.
# Prints measured times (RESULT: lines).
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
HAVENCTL=$BUILD/cli/havenctl
FENCE_RUN=$BUILD/tests/unit/haven-fence-run
T0=$EPOCHREALTIME

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
secs() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }
wait_q() { "$LAB" wait "$1" "$2" "$3" "${4:-20}" || fail "$1 did not become $2 with $3 members"; }
# wait_for LIMIT_S WHAT CMD... — bounded polling
wait_for() {
	local limit=$1 what=$2 t
	shift 2
	t=$EPOCHREALTIME
	until "$@"; do
		awk -v a="$t" -v b="$EPOCHREALTIME" -v l="$limit" 'BEGIN { exit !(b - a >= l) }' &&
			fail "timed out after ${limit}s waiting for $what"
		sleep 0.02
	done
}
host_down() { [[ -z $("$LAB" pids "$1") ]]; }
host_up() { [[ -n $("$LAB" pids "$1") ]]; }
bmc_json() { "$LAB" status --json | jq -c ".hosts[$(($1 - 1))].bmc"; }
power() { "$LAB" status --json | jq -r ".hosts[$(($1 - 1))].bmc.power"; }
power_off() { [[ $(power "$1") == off ]]; }
# ipmi HOST_FROM N ACTION — the real fence_ipmilan against hN's BMC
ipmi() {
	"$LAB" exec "$1" sh -c 'exec fence_ipmilan --ip=10.77.1.10'"$2"' --ipport=623 --username=haven \
		--password="$(cat /etc/haven/bmc.password)" --lanplus --cipher=3 -o '"$3"' 2>/dev/null'
}
pids_of() { "$LAB" pids "$1" | sort | tr '\n' ' '; }

[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root"; exit 77; }
command -v jq >/dev/null || fail "needs jq (apt-get install jq)"
for t in ipmi_sim ipmitool fence_ipmilan; do
	command -v "$t" >/dev/null || fail "needs $t (scripts/deps: openipmi, ipmitool, fence-agents)"
done
[[ -x $HAVENCTL && -x $FENCE_RUN ]] || fail "build havenctl and haven-fence-run in $BUILD first"
if "$LAB" status >/dev/null 2>&1; then
	fail "a lab is already up; run '$LAB down' first (not touching it)"
fi
trap '"$LAB" down >/dev/null || echo "WARNING: lab down failed" >&2' EXIT

step "lab up --bmc: three hosts, a BMC each"
"$LAB" up --hosts 3 --bmc
for i in 1 2 3; do
	b=$(bmc_json "$i")
	[[ $(jq -r '[.address, .port, .user, .state, .power] | join(" ")' <<<"$b") == "10.77.1.10$i 623 haven up on" ]] ||
		fail "status --json: h$i's BMC is $b"
	"$LAB" exec "h$i" test -f /etc/haven/bmc.password || fail "h$i has no /etc/haven/bmc.password"
	[[ $("$LAB" exec "h$i" stat -c %a /etc/haven/bmc.password) == 600 ]] || fail "h$i's BMC password file is not mode 0600"
done
# The BMCs live beside the hosts, not in them.
"$LAB" pids bmc | grep -qx "$(jq -r .pid <<<"$(bmc_json 1)")" || fail "h1's ipmi_sim is not in the BMC namespace"
"$LAB" pids h1 | grep -qx "$(jq -r .pid <<<"$(bmc_json 1)")" && fail "h1's ipmi_sim runs inside h1"
[[ $(ipmi h2 1 status) == "Status: ON" ]] || fail "fence_ipmilan -o status of h1 from h2 is not ON"

step "havenctl fence agents / metadata"
"$LAB" exec h2 "$HAVENCTL" fence agents | grep -qx fence_ipmilan || fail "fence agents does not list fence_ipmilan"
meta=$("$LAB" exec h2 "$HAVENCTL" fence metadata fence_ipmilan --json)
jq -e 'map(select(.name == "ip")) | length == 1' <<<"$meta" >/dev/null || fail "fence_ipmilan's metadata has no ip parameter"
jq -e 'map(select(.name == "lanplus" and .type == "boolean")) | length == 1' <<<"$meta" >/dev/null ||
	fail "fence_ipmilan's metadata: no boolean lanplus"
"$LAB" exec h2 "$HAVENCTL" fence metadata fence_ipmilan | head -3
if "$LAB" exec h2 "$HAVENCTL" fence metadata fence_haven_none 2>/dev/null; then
	fail "metadata of a missing agent succeeded"
fi

step "haven.conf with [fence:ipmi] on h2; havenctl fence validate"
"$LAB" exec h2 sh -c 'umask 077; cat >/etc/haven/haven.conf' <<'EOF'
[node]
name = haven-h2

[cluster]
name = haven-lab

[interfaces]
management = mgmt0
storage = stor0
migration = migr0

[watchdog]
device = none

[fence:ipmi]
agent = fence_ipmilan
ip = 10.77.1.10{node}
ipport = 623
username = haven
password_file = /etc/haven/bmc.password
lanplus = 1
cipher = 3
power_wait = 0

[fence:wrongpw]
agent = fence_ipmilan
ip = 10.77.1.10{node}
ipport = 623
username = haven
password = not-the-password
lanplus = 1
cipher = 3
power_wait = 0

[fence:pcmk]
agent = pacemaker
EOF
out=$("$LAB" exec h2 "$HAVENCTL" fence validate) || fail "fence validate failed: $out"
echo "$out"
grep -q '^\[fence:ipmi\] .* ok$' <<<"$out" || fail "[fence:ipmi] is not ok: $out"
grep -q '^\[fence:pcmk\] .* ok (built in)$' <<<"$out" || fail "[fence:pcmk] is not built in: $out"
v=$("$LAB" exec h2 "$HAVENCTL" fence validate ipmi --json)
[[ $(jq -c 'map([.name, .valid])' <<<"$v") == '[["ipmi",true]]' ]] || fail "fence validate ipmi --json: $v"
# Without an address the agent itself complains; exit 3 (a check found problems).
"$LAB" exec h2 sh -c 'umask 077; sed "s/^ip = .*//" /etc/haven/haven.conf >/etc/haven/noip.conf'
rc=0
out=$("$LAB" exec h2 "$HAVENCTL" fence validate -c /etc/haven/noip.conf ipmi) || rc=$?
[[ $rc == 3 ]] || fail "a section without ip: exit $rc, expected 3: $out"
echo "$out"
[[ $out == *"invalid: Failed: You have to enter fence address"* ]] || fail "no agent complaint in: $out"

step "haven-fence-run -o status: the runner against the real agent"
out=$("$LAB" exec h2 "$FENCE_RUN" -o status ipmi haven-h1 1) || fail "status failed: $out"
echo "$out"
[[ $out == "result=ok "*"detail=fence_ipmilan status succeeded: Status: ON" ]] || fail "status: $out"

step "a wrong password: failure with the agent's message, nobody touched"
before1=$(pids_of h1) before3=$(pids_of h3)
if out=$("$LAB" exec h2 "$FENCE_RUN" wrongpw haven-h1 1); then
	fail "fencing with a wrong password succeeded: $out"
fi
echo "$out"
[[ $out == "result=failed "*"detail=fence_ipmilan exited 1: "* ]] || fail "wrong password: $out"
[[ $out == *not-the-password* ]] && fail "the password is in the detail: $out"
[[ $(pids_of h1) == "$before1" && $(pids_of h3) == "$before3" ]] || fail "h1 or h3 changed after a failed fence"
[[ $(power 1) == on ]] || fail "h1's BMC says power $(power 1) after a failed fence"

step "the pacemaker level without a Pacemaker fencer"
t=$EPOCHREALTIME
if out=$("$LAB" exec h2 "$FENCE_RUN" pcmk haven-h1 1); then fail "pacemaker level succeeded: $out"; fi
echo "$out"
[[ $out == *"detail=no Pacemaker fencer is running on this host"* ]] || fail "pacemaker level: $out"
awk -v s="$(secs "$t")" 'BEGIN { exit !(s < 5) }' || fail "the pacemaker level took $(secs "$t") s to fail"

step "fence h1 from h2 through its BMC"
before3=$(pids_of h3)
t=$EPOCHREALTIME
"$LAB" exec h2 "$FENCE_RUN" ipmi haven-h1 1 >"$BUILD/test-lab-bmc.out" &
runner=$!
wait_for 15 "h1's processes to go" host_down h1
dead=$(secs "$t")
wait "$runner" || fail "fencing h1 failed: $(cat "$BUILD/test-lab-bmc.out")"
out=$(cat "$BUILD/test-lab-bmc.out")
rm -f "$BUILD/test-lab-bmc.out"
echo "$out"
[[ $out == "result=ok "*"detail=fence_ipmilan off succeeded: Success: Powered OFF" ]] || fail "fence: $out"
off_s=$(sed -n 's/.*elapsed=\([0-9.]*\).*/\1/p' <<<"$out")
host_down h1 || fail "h1 runs after a successful fence"
[[ $("$LAB" status --json | jq -r '.hosts[0].state') == down ]] || fail "lab status does not show h1 down"
[[ $(power 1) == off ]] || fail "h1's BMC says power $(power 1)"
wait_q h2 quorate 2
wait_q h3 quorate 2
left=$(secs "$t")
[[ $(pids_of h3) == "$before3" ]] || fail "h3 was touched"
st=$(ipmi h3 1 status || true)
[[ $st == "Status: OFF" ]] || fail "h1's BMC status from h3: $st"
echo "RESULT: haven-fence-run (fence_ipmilan off, power_wait 0) reported h1 off after $off_s s; h1's processes were gone after $dead s; h2 and h3 had it out of their membership after $left s"

step "power h1 on again with fence_ipmilan -o on"
t=$EPOCHREALTIME
[[ $(ipmi h2 1 on) == "Success: Powered ON" ]] || fail "fence_ipmilan -o on failed"
on_s=$(secs "$t")
host_up h1 || fail "h1 has no processes after power on"
[[ $("$LAB" status --json | jq -r '.hosts[0].state') == up ]] || fail "lab status does not show h1 up"
[[ $(power 1) == on ]] || fail "h1's BMC says power $(power 1) after on"
wait_q h1 quorate 3
wait_q h2 quorate 3
echo "RESULT: fence_ipmilan -o on (default power_wait 2 s) took $on_s s; h1 back in a 3-member membership after $(secs "$t") s"

step "the default power_wait: fence_ipmilan -o off by hand"
t=$EPOCHREALTIME
[[ $(ipmi h2 1 off) == "Success: Powered OFF" ]] || fail "fence_ipmilan -o off failed"
off2_s=$(secs "$t")
host_down h1 || fail "h1 runs after fence_ipmilan -o off"
echo "RESULT: fence_ipmilan -o off with its default power_wait (2 s) took $off2_s s"
"$LAB" start h1
wait_q h1 quorate 3

step "the BMC follows lab kill / lab start"
"$LAB" kill h1
[[ $(power 1) == off ]] || fail "h1's BMC says power $(power 1) after lab kill"
[[ $(ipmi h2 1 status || true) == "Status: OFF" ]] || fail "BMC status after lab kill is not OFF"
"$LAB" start h1 | grep -q "through its BMC" || fail "lab start h1 did not go through its BMC"
[[ $(power 1) == on ]] || fail "h1's BMC says power $(power 1) after lab start"
wait_q h1 quorate 3

step "a SIGKILLed power holder still takes the host down (its watcher)"
holder=$(jq -r .holder_pid <<<"$(bmc_json 1)")
[[ $holder =~ ^[0-9]+$ ]] || fail "no holder pid for h1: $(bmc_json 1)"
t=$EPOCHREALTIME
kill -KILL "$holder"
wait_for 5 "h1 to die after its power holder was SIGKILLed" host_down h1
echo "RESULT: SIGKILL of h1's power holder: h1 gone after $(secs "$t") s"
wait_for 5 "h1's BMC to report power off" power_off 1
"$LAB" start h1 >/dev/null
wait_q h1 quorate 3

echo "PASS: test-lab-bmc.sh in $(secs "$T0") s"
