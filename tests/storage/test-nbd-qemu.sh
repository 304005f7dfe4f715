#!/bin/sh
# QEMU 7.2's own NBD client (qemu-io) against `havenctl disk serve --raw` on
# a file: the command sequence QEMU uses, the bytes checked in the file, and
# two clients of one export at once.
set -eu
: "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}"
HAVENCTL=$HAVEN_BUILD/cli/havenctl
DIR=$(mktemp -d /tmp/haven-nbd-qemu.XXXXXX)
SERVER=
cleanup() {
	[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
	rm -rf "$DIR"
}
trap cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }

truncate -s 64M "$DIR/disk.img"
"$HAVENCTL" disk serve "$DIR/disk.img" --socket "$DIR/sock" --export vm1 --raw \
	>"$DIR/serve.out" 2>"$DIR/serve.err" &
SERVER=$!
i=0
until [ -S "$DIR/sock" ]; do
	i=$((i + 1)); [ $i -lt 100 ] || fail "server did not start: $(cat "$DIR/serve.err")"
	sleep 0.05
done
grep -q "^serving vm1 on $DIR/sock (64.0 MiB)$" "$DIR/serve.out" || fail "banner: $(cat "$DIR/serve.out")"

qio() {
	qemu-io --image-opts "driver=raw,file.driver=nbd,file.server.type=unix,file.server.path=$DIR/sock,file.export=vm1" "$@"
}

# Pre-fill the zero and discard ranges so the test can see them change.
qio -c 'write -P 0x11 2M 1M' -c 'write -P 0x22 4M 1M' >"$DIR/fill.log" 2>&1 || fail "fill: $(cat "$DIR/fill.log")"
qio -c 'write -P 0x5a 1M 64k' -c 'read -P 0x5a 1M 64k' -c flush \
	-c 'write -z 2M 1M' -c 'discard 4M 1M' -c 'write -f 0 4k' \
	-c 'read -P 0 2M 1M' -c 'read -P 0xcd 0 4k' >"$DIR/qio.log" 2>&1 || fail "qemu-io: $(cat "$DIR/qio.log")"
grep -qi "fail\|error" "$DIR/qio.log" && fail "qemu-io: $(cat "$DIR/qio.log")"
[ "$(grep -c '^read ' "$DIR/qio.log")" -eq 3 ] || fail "reads: $(cat "$DIR/qio.log")"
# The file itself holds what the client wrote.
cmp -s -n 65536 -i 1048576:0 "$DIR/disk.img" /dev/zero && fail "pattern not in the file"
head -c 65536 /dev/zero | tr '\0' '\132' >"$DIR/p5a"
cmp -s -n 65536 -i 1048576:0 "$DIR/disk.img" "$DIR/p5a" || fail "0x5a not in the file at 1M"
cmp -s -n 1048576 -i 2097152:0 "$DIR/disk.img" /dev/zero || fail "2M..3M not zeroed"

# Two clients at once (live migration holds two), each writing its own
# range; then each reads the other's.
qio -c 'write -P 0xa1 8M 4M' -c 'write -P 0xa1 16M 4M' -c flush >"$DIR/a.log" 2>&1 &
A=$!
qio -c 'write -P 0xb2 12M 4M' -c 'write -P 0xb2 20M 4M' -c flush >"$DIR/b.log" 2>&1 &
B=$!
wait $A || fail "client A: $(cat "$DIR/a.log")"
wait $B || fail "client B: $(cat "$DIR/b.log")"
qio -c 'read -P 0xa1 8M 4M' -c 'read -P 0xb2 12M 4M' -c 'read -P 0xa1 16M 4M' \
	-c 'read -P 0xb2 20M 4M' >"$DIR/c.log" 2>&1 &
C=$!
qio -c 'read -P 0xb2 12M 4M' -c 'read -P 0xa1 8M 4M' >"$DIR/d.log" 2>&1 || fail "client D: $(cat "$DIR/d.log")"
wait $C || fail "client C: $(cat "$DIR/c.log")"
cat "$DIR/c.log" "$DIR/d.log" | grep -qi "fail\|error" && fail "concurrent reads: $(cat "$DIR/c.log" "$DIR/d.log")"

# SIGTERM: the server exits 0 and removes its socket.
kill "$SERVER"
wait "$SERVER" || fail "server exit status $?"
SERVER=
[ -e "$DIR/sock" ] && fail "socket left behind"
echo "PASS"
