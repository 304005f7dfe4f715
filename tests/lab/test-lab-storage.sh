#!/bin/bash
# test-lab-storage.sh — the SAN: LUNs, reachability over the storage network
# only, and cut/heal of a host's storage NIC.
# Exit 0 on pass; 77 (skip) when not root; 1 with a FAIL message otherwise.
set -euo pipefail

LAB=$(dirname "$0")/lab
T0=$EPOCHREALTIME
PORTAL=iscsi://10.77.2.2:3260
IQN=iqn.2026-11.lab.haven:san

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
secs() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }
# tcp_ok HOST — can HOST open a TCP connection to the SAN's portal (3 s max)?
# san HOST TOOL ARGS... — a libiscsi tool on HOST as that host: its
# initiator name and the SAN's CHAP account (the target requires both).
san() {
	local h=$1 tool=$2
	shift 2
	LIBISCSI_CHAP_PASSWORD=$(cat "${HAVEN_LAB_DIR:-/run/haven-lab}/san/chap.secret") \
		"$LAB" exec "$h" timeout 10 "$tool" -i "iqn.2026-11.io.haven:haven-${h#haven-}" "$@"
}
CHAP_PORTAL=iscsi://haven-lab@10.77.2.2:3260
tcp_ok() { "$LAB" exec "$1" timeout 3 bash -c '</dev/tcp/10.77.2.2/3260' 2>/dev/null; }

[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root"; exit 77; }
command -v jq >/dev/null || fail "needs jq (apt-get install jq)"
if "$LAB" status >/dev/null 2>&1; then
	fail "a lab is already up; run '$LAB down' first (not touching it)"
fi
trap '"$LAB" down >/dev/null || echo "WARNING: lab down failed" >&2' EXIT

step "lab up"
"$LAB" up

step "lab lun add"
url=$("$LAB" lun add disk1 64M)
[[ $url == "$PORTAL/$IQN/1" ]] || fail "lun add disk1 printed '$url', expected $PORTAL/$IQN/1"
url2=$("$LAB" lun add disk2 1G)
[[ $url2 == "$PORTAL/$IQN/2" ]] || fail "lun add disk2 printed '$url2'"
if "$LAB" lun add disk1 8M 2>/dev/null; then fail "duplicate LUN name accepted"; fi
list=$("$LAB" lun list)
[[ $list == "1 disk1 64M $PORTAL/$IQN/1"$'\n'"2 disk2 1G $PORTAL/$IQN/2" ]] || fail "lun list printed: $list"
img=${HAVEN_LAB_DIR:-/run/haven-lab}/luns/disk1.img
[[ $(stat -c %s "$img") == 67108864 ]] || fail "$img is not 64 MiB"
(($(stat -c %b "$img") == 0)) || fail "$img is not sparse"

step "the SAN has only a storage NIC"
nics=$("$LAB" exec san ip -br link | awk '{ sub(/@.*/, "", $1); print $1 }' | sort | tr '\n' ' ')
[[ $nics == "lo stor0 " ]] || fail "SAN NICs are '$nics', expected lo and stor0"
if "$LAB" exec san ip route get 10.77.1.11 >/dev/null 2>&1; then
	fail "the SAN has a route to the management network"
fi

for h in 1 2 3; do
	step "haven-h$h reaches the SAN over stor0"
	route=$("$LAB" exec h$h ip route get 10.77.2.2)
	[[ $route == *"dev stor0 "* ]] || fail "h$h: route to the SAN is '$route', expected dev stor0"
	out=$(san h$h iscsi-ls -s "$CHAP_PORTAL") || fail "h$h: iscsi-ls failed: $out"
	[[ $out == *"Lun:1"*DIRECT_ACCESS* && $out == *"Lun:2"* ]] || fail "h$h: iscsi-ls shows: $out"
	out=$(san h$h iscsi-readcapacity16 "$CHAP_PORTAL/$IQN/1") || fail "h$h: readcapacity failed"
	[[ $out == *"Total size:67108864"* ]] || fail "h$h: LUN 1 capacity: $out"
done
"$LAB" exec san tgtadm --lld iscsi --op show --mode target >/dev/null || fail "tgtadm in the SAN fails"

step "lab cut haven-h1 storage: the SAN becomes unreachable from h1 only"
"$LAB" cut haven-h1 storage
if "$LAB" exec h1 ip route get 10.77.2.2 >/dev/null 2>&1; then fail "h1 still has a route to the SAN"; fi
if tcp_ok h1; then fail "h1 still reaches the SAN's portal with stor0 down"; fi
if san h1 iscsi-ls -s "$CHAP_PORTAL" >/dev/null 2>&1; then fail "iscsi-ls works from h1 with stor0 down"; fi
tcp_ok h2 || fail "h2 lost the SAN when h1's storage NIC was cut"
# management still works for h1 (cluster stays whole)
"$LAB" wait h1 quorate 3 5 >/dev/null || fail "h1 lost quorum when only storage was cut"

step "lab heal haven-h1 storage"
"$LAB" heal haven-h1 storage
route=$("$LAB" exec h1 ip route get 10.77.2.2) || fail "h1 has no route to the SAN after heal"
[[ $route == *"dev stor0 "* ]] || fail "h1: route after heal is '$route'"
ok=0
for _ in $(seq 50); do tcp_ok h1 && { ok=1; break; }; sleep 0.1; done
((ok)) || fail "h1 does not reach the SAN after heal"
san h1 iscsi-ls -s "$CHAP_PORTAL" >/dev/null || fail "iscsi-ls fails from h1 after heal"

step "lab kill san / lab start san: tgtd comes back with the same target and LUNs"
"$LAB" kill san
if tcp_ok h2; then fail "the SAN's portal still answers after 'lab kill san'"; fi
[[ $("$LAB" status --json | jq -r .san.state) == down ]] || fail "status does not show the SAN down"
"$LAB" start san
out=$(san h2 iscsi-ls -s "$CHAP_PORTAL") || fail "iscsi-ls from h2 fails after the SAN restarted"
[[ $out == *"Lun:1"* && $out == *"Lun:2"* ]] || fail "after the SAN restarted, iscsi-ls shows: $out"

step "lab status shows the LUNs"
[[ $("$LAB" status --json | jq -c '[.san.state, (.san.luns | map(.name))]') == '["up",["disk1","disk2"]]' ]] ||
	fail "status --json: $("$LAB" status --json)"

step "lab down"
"$LAB" down
trap - EXIT
echo "PASS: test-lab-storage ($(secs "$T0") s)"
