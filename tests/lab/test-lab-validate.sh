#!/bin/bash
# test-lab-validate.sh — havenctl validate, the cluster validation wizard,
# on a good lab (3 hosts, simulated BMCs, a fence_ipmilan level): no check
# fails, the reservation round leaves no scratch key on the LUN, and each
# of the real checks is seen passing. Then it fails, naming the check, when
# the storage NIC is the management NIC, when the storage NIC has an
# address in the management subnet or a default route, when the watchdog
# is missing (and warns when its timeout is long for the token), when a
# fence level's BMC address is one nobody answers at, and when a host's
# corosync link is cut. Without havend it warns and skips what needs the
# cluster's state. (A LUN without reservations: tgt
# cannot turn them off per LUN, so that case is tests/unit/validate_test.c's,
# against stand-ins.)
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
BUILD=$(realpath "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}")
KERNEL=$(realpath "${HAVEN_GUEST_KERNEL:?set HAVEN_GUEST_KERNEL}")

fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/failover-lib.sh"
lab_test_begin validate
command -v fence_ipmilan >/dev/null || fail "needs fence_ipmilan (scripts/deps: fence-agents)"

# validate_on HOST ARGS... — its --json document in $OUT, exit code in $RC.
validate_on() {
	local h=$1
	shift
	RC=0
	OUT=$(ctl "$h" --json validate "$@") || RC=$?
}
result_of() { jq -r --arg c "$1" '[.checks[] | select(.check == $c) | .result] | join(",")' <<<"$OUT"; }
detail_of() { jq -r --arg c "$1" '[.checks[] | select(.check == $c) | .detail] | join(" | ")' <<<"$OUT"; }
failed() { jq -r '[.checks[] | select(.result == "fail") | .check] | sort | join(" ")' <<<"$OUT"; }
expect() { # CHECK RESULT
	[[ $(result_of "$1") == "$2" ]] || fail "$1 is '$(result_of "$1")', expected $2: $(detail_of "$1")"
}

step "a good lab: 3 hosts with BMCs, haven.conf with an IPMI fence level"
LAB_UP_ARGS=--bmc lab_cluster 3 "
[fence:ipmi]
agent = fence_ipmilan
ip = 10.77.1.10{node}
ipport = 623
username = haven
password_file = /etc/haven/bmc.password
lanplus = 1
cipher = 3"

step "validate passes on every host"
pr_state() { ctl h1 --json pr keys "$URL" | jq -c '[(.keys | sort), .holder]'; }
before=$(pr_state)
for h in h1 h2 h3; do
	t=$(now)
	validate_on "$h"
	[[ $RC == 0 && $(jq -r .result <<<"$OUT") != fail ]] ||
		fail "validate on $h: exit $RC, failed: $(failed)"$'\n'"$OUT"
	echo "RESULT: validate on $h took $(since "$t") s: $(jq -r .result <<<"$OUT")"
done
ctl h1 validate
validate_on h1
for c in config interfaces management-network storage-network migration-network guest-bridges havend corosync-links \
	corosync-addresses portal-route:san chap:san reservations:san fence:ipmi/haven-h2 fence:ipmi/haven-h3; do
	expect "$c" pass
done
expect watchdog warn
[[ $(detail_of reservations:san) == *"preempt and unregister work"* ]] || fail "reservations: $(detail_of reservations:san)"
[[ $(pr_state) == "$before" ]] || fail "the LUN's keys or holder changed: $before, now $(pr_state)"
[[ $before == *'"0x'* ]] || fail "no key registered on the LUN before: $before"
# A LUN named with --lun, without havend's help.
validate_on h2 --lun "$URL"
expect reservations pass

step "without havend: the cluster checks are skipped with a warning"
RC=0
OUT=$("$LAB" exec h1 env HAVEN_SOCKET=/run/haven/nobody.sock "$HAVENCTL" --json validate) || RC=$?
[[ $RC == 0 ]] || fail "validate without havend: exit $RC, failed: $(failed)"
expect havend warn
[[ -z $(result_of reservations:san) && -z $(result_of fence:ipmi/haven-h2) ]] || fail "checks that need havend ran without it"

step "the storage NIC is the management NIC: fails, naming the check"
"$LAB" exec h1 sh -c 'sed "s/^storage = stor0/storage = mgmt0/" /etc/haven/haven.conf >/etc/haven/shared.conf'
validate_on h1 -c /etc/haven/shared.conf
[[ $RC == 3 ]] || fail "storage on mgmt0: exit $RC, expected 3"
expect storage-network fail
echo "storage-network: $(detail_of storage-network)"
{ ctl h1 validate -c /etc/haven/shared.conf || true; } | grep -q '^storage-network  *fail  storage is mgmt0, the management NIC' ||
	fail "the text output does not name storage-network"

step "the storage NIC with an address in the management subnet, then with a default route"
"$LAB" exec h1 ip addr add 10.77.1.60/32 dev stor0
validate_on h1
"$LAB" exec h1 ip addr del 10.77.1.60/32 dev stor0
[[ $RC == 3 ]] || fail "a management address on stor0: exit $RC, expected 3"
expect storage-network fail
[[ $(detail_of storage-network) == *"10.77.1.60/32 is in the management subnet"* ]] || fail "storage-network: $(detail_of storage-network)"
"$LAB" exec h1 ip route add default via 10.77.2.2 dev stor0
validate_on h1
"$LAB" exec h1 ip route del default via 10.77.2.2 dev stor0
[[ $RC == 3 ]] || fail "a default route on stor0: exit $RC, expected 3"
expect storage-network fail
[[ $(detail_of storage-network) == *"default route"* ]] || fail "storage-network: $(detail_of storage-network)"
validate_on h1
[[ $RC == 0 ]] || fail "validate after the fixes: exit $RC, failed: $(failed)"

step "the watchdog: present and fitting, too long, missing (never opened: a FIFO stands in)"
mkfifo "$TMP/watchdog.fifo"
wd_conf() { "$LAB" exec h1 sh -c "sed 's|^device = none|device = $1\\ntimeout_s = $2|' /etc/haven/haven.conf >/etc/haven/wd.conf"; }
wd_conf "$TMP/watchdog.fifo" 2
validate_on h1 -c /etc/haven/wd.conf
expect watchdog pass
wd_conf "$TMP/watchdog.fifo" 30
validate_on h1 -c /etc/haven/wd.conf
expect watchdog warn
[[ $(detail_of watchdog) == *"failover waits 27300 ms"* ]] || fail "watchdog: $(detail_of watchdog)"
wd_conf /dev/haven-no-watchdog 2
validate_on h1 -c /etc/haven/wd.conf
[[ $RC == 3 ]] || fail "a missing watchdog: exit $RC, expected 3"
expect watchdog fail
echo "watchdog: $(detail_of watchdog)"

step "a fence level whose BMC nobody answers at: fails, naming the level and host"
"$LAB" exec h1 sh -c 'umask 077; { cat /etc/haven/haven.conf; printf "%s\n" "" "[fence:deadbmc]" \
	"agent = fence_ipmilan" "ip = 10.77.1.9{node}" "ipport = 623" "username = haven" \
	"password_file = /etc/haven/bmc.password" "lanplus = 1" "cipher = 3"; } >/etc/haven/deadbmc.conf'
t=$(now)
validate_on h1 -c /etc/haven/deadbmc.conf
echo "RESULT: validate with an unreachable BMC took $(since "$t") s"
[[ $RC == 3 ]] || fail "an unreachable BMC: exit $RC, expected 3"
expect fence:deadbmc/haven-h2 fail
expect fence:deadbmc/haven-h3 fail
expect fence:ipmi/haven-h2 pass
[[ $(failed) == "fence:deadbmc/haven-h2 fence:deadbmc/haven-h3" ]] || fail "more than the dead BMC failed: $(failed)"
echo "fence:deadbmc/haven-h2: $(detail_of fence:deadbmc/haven-h2)"

step "h3's management link cut: corosync-links fails on h1, naming the link and host"
links_fail() { validate_on h1; [[ $(result_of corosync-links) == fail ]]; }
"$LAB" cut haven-h3 mgmt >/dev/null
t=$(now)
wait_for 30 "validate on h1 to see h3's link down" links_fail
echo "RESULT: corosync-links failed $(since "$t") s after the cut: $(detail_of corosync-links)"
[[ $(detail_of corosync-links) == *"link 0 to haven-h3"* ]] || fail "corosync-links: $(detail_of corosync-links)"

echo "PASS: test-lab-validate.sh"
