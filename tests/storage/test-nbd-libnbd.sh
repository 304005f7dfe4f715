#!/bin/sh
# libnbd's tools against `havenctl disk serve --raw` on a file: nbdinfo sees
# the size, flags and block sizes we advertise; nbdcopy copies a random image
# in and back out byte for byte (and reports the throughput).
set -eu
: "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}"
HAVENCTL=$HAVEN_BUILD/cli/havenctl
DIR=$(mktemp -d /tmp/haven-nbd-libnbd.XXXXXX)
SERVER=
cleanup() {
	[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
	rm -rf "$DIR"
}
trap cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }

SIZE_MB=${NBD_TEST_SIZE_MB:-256}
truncate -s ${SIZE_MB}M "$DIR/disk.img"
"$HAVENCTL" disk serve "$DIR/disk.img" --socket "$DIR/sock" --raw \
	>"$DIR/serve.out" 2>"$DIR/serve.err" &
SERVER=$!
i=0
until [ -S "$DIR/sock" ]; do
	i=$((i + 1)); [ $i -lt 100 ] || fail "server did not start: $(cat "$DIR/serve.err")"
	sleep 0.05
done
URI="nbd+unix:///disk?socket=$DIR/sock"

nbdinfo "$URI" >"$DIR/info" 2>&1 || fail "nbdinfo: $(cat "$DIR/info")"
for want in "export-size: $((SIZE_MB * 1048576)) " "is_read_only: false" \
    "can_flush: true" "can_fua: true" "can_zero: true" "can_trim: true" \
    "block_size_minimum: 512" "block_size_preferred: 4096" \
    "block_size_maximum: 33554432"; do
	grep -q "$want" "$DIR/info" || fail "nbdinfo lacks '$want': $(cat "$DIR/info")"
done
nbdinfo --list "nbd+unix://?socket=$DIR/sock" | grep -q 'export="disk"' || fail "LIST"

# Random data in, through the server, into the file.
head -c $((SIZE_MB * 1048576)) /dev/urandom >"$DIR/src.img"
t0=$(date +%s%N)
nbdcopy "$DIR/src.img" "$URI" || fail "nbdcopy in"
t1=$(date +%s%N)
cmp "$DIR/src.img" "$DIR/disk.img" || fail "image differs after nbdcopy in"
# And back out.
nbdcopy "$URI" "$DIR/out.img" || fail "nbdcopy out"
t2=$(date +%s%N)
cmp "$DIR/src.img" "$DIR/out.img" || fail "copy differs after nbdcopy out"
echo "nbdcopy in: $((SIZE_MB * 1000 / ((t1 - t0) / 1000000 + 1))) MiB/s," \
	"out: $((SIZE_MB * 1000 / ((t2 - t1) / 1000000 + 1))) MiB/s ($SIZE_MB MiB)"

# Two nbdcopy runs at once, into halves of the disk, from one client each.
half=$((SIZE_MB / 2))
head -c $((half * 1048576)) /dev/urandom >"$DIR/a.img"
head -c $((half * 1048576)) /dev/urandom >"$DIR/b.img"
cat "$DIR/a.img" "$DIR/b.img" >"$DIR/ab.img"
nbdcopy "$DIR/ab.img" "$URI" &
A=$!
nbdcopy "$URI" "$DIR/during.img" &
B=$!
wait $A || fail "concurrent nbdcopy in"
wait $B || fail "concurrent nbdcopy out"
cmp "$DIR/ab.img" "$DIR/disk.img" || fail "image differs after concurrent copy"

kill "$SERVER"
wait "$SERVER" || fail "server exit status $?"
SERVER=
echo "PASS"
