# worker-lib.sh — sourced by the lab tests and benchmarks that run
# haven-worker under tests/worker's driver (havend's side of the spawn
# contract). The caller sets LAB, TMP, KERNEL, WORKER, DRIVER, VM_UID, url,
# key1 and key2 (the reservation keys of haven-h1 and haven-h2).

# on HOST CMD... — run CMD inside a lab host, with that host's initiator name.
on() { local h=$1; shift; HAVEN_INITIATOR=iqn.2026-11.io.haven:haven-$h "$LAB" exec "$h" "$@"; }

# spec HOST NODE GENERATION — the VM as havend would describe it; UUID,
# URL, MEM, DIRTY and DIRTY_RATE override the defaults.
spec() {
	local h=$1 node=$2 gen=$3 uuid=${UUID:-7d0c0d7e-0000-4000-8000-0000000000a1} key
	key=$([[ $node == 1 ]] && echo "$key1" || echo "$key2")
	on "$h" sh -c "mkdir -p /run/haven/vm1 && chown $VM_UID:$VM_UID /run/haven/vm1 && chmod 700 /run/haven/vm1"
	cat >"$TMP/spec-$h-$gen.json" <<JSON
{ "uuid": "$uuid", "name": "vm1", "memory_mib": ${MEM:-128}, "vcpus": 1,
  "generation": $gen, "accel": "${ACCEL:-tcg}", "uid": $VM_UID, "gid": $VM_UID,
  "run_dir": "/run/haven/vm1", "host_name": "haven-$h", "node_id": $node,
  "initiator": "iqn.2026-11.io.haven:haven-$h", "kernel": "$KERNEL",
  "kernel_append": "dirty=${DIRTY:-64} tick_ms=50 dirty_pages_per_tick=${DIRTY_RATE:-1024}",
  "config_hash": 42,
  "volumes": [ { "uuid": "vol-vm1", "url": "${URL:-$url}", "reservation_key": "$key" } ] }
JSON
	echo "$TMP/spec-$h-$gen.json"
}

# drive HOST GEN NAME ACTION... — run a worker on HOST under the driver;
# its events, logs and pid land in $TMP/NAME.*.
drive() {
	local h=$1 gen=$2 name=$3 s
	shift 3
	s=$(spec "$h" "$([[ $h == h1 ]] && echo 1 || echo 2)" "$gen")
	on "$h" "$DRIVER" --worker "$WORKER" --spec "$s" \
		--serial-log "$TMP/$name.serial" --qemu-log "$TMP/$name.qemu" \
		--worker-log "$TMP/$name.worker" --pid-file "$TMP/$name.pid" "$@" \
		>"$TMP/$name.events" 2>"$TMP/$name.driver"
}

show() {
	echo "--- $1 events"; cat "$TMP/$1.events"
	echo "--- $1 driver"; tail -5 "$TMP/$1.driver"
	echo "--- $1 worker"; tail -5 "$TMP/$1.worker"
}
