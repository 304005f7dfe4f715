#!/bin/bash
# Crash injection on the real server (issue 19): `havenctl disk serve` on a
# Haven volume in a file full of junk (a reused LUN's), three NBD clients
# (qemu-io, QEMU's own NBD client) making allocating writes into distinct
# regions -- 1 MiB sequential writes, scattered 4-64 KiB writes, FUA writes
# -- and the server killed (SIGKILL) at a seeded random moment, twice per
# seed (a second server carries on over the first one's leftovers). After
# each kill: `havenctl disk check` accepts the image, QEMU's vpc driver
# reads the disk extent, every acknowledged write is there (a write whose
# flush or FUA reply came back), every other write's region holds its data
# or zeroes, and everything never written reads zero.
# HAVEN_KILL_SEEDS overrides the seed list.
set -euo pipefail
: "${HAVEN_BUILD:?set HAVEN_BUILD to the build directory}"
HAVENCTL=$HAVEN_BUILD/cli/havenctl
SEEDS=${HAVEN_KILL_SEEDS:-"1 2 3 4 5 6"}
command -v qemu-io >/dev/null && command -v qemu-img >/dev/null || { echo "SKIP: no qemu-io"; exit 77; }
DIR=$(mktemp -d /tmp/haven-vhd-kill.XXXXXX)
SERVER=
cleanup() {
	[[ -n $SERVER ]] && kill -9 "$SERVER" 2>/dev/null
	rm -rf "$DIR"
}
trap cleanup EXIT
fail() { echo "FAIL (seed $seed): $*" >&2; exit 1; }

VOL=$DIR/vol.img
SOCK=$DIR/sock
MiB=$((1 << 20))

serve() {
	rm -f "$SOCK"
	"$HAVENCTL" disk serve "$VOL" --socket "$SOCK" >"$DIR/serve.out" 2>>"$DIR/serve.err" &
	SERVER=$!
	local i=0
	until [[ -S $SOCK ]]; do
		((++i < 200)) || fail "server did not start: $(cat "$DIR/serve.err")"
		sleep 0.02
	done
}
qio() {
	qemu-io --image-opts "driver=raw,file.driver=nbd,file.server.type=unix,file.server.path=$SOCK,file.export=disk" "$@"
}
# writer W ROUND: one connection per write; a line in $DIR/log.W.ROUND
# per write begun ("issued") and per write acknowledged ("acked").
writer() {
	local w=$1 round=$2 i=0 off len pat mode log=$DIR/log.$w.$round
	local base=$(( (w * 2 + round - 1) * 10 * MiB ))
	RANDOM=$(( seed * 100 + w * 10 + round ))
	while ((i < 40)); do
		case $w in
		0) off=$(( base + i * MiB )); len=$MiB; mode=$(( i % 3 == 2 ? 1 : 0 )) ;;
		1) off=$(( base + (i * 37 % 80) * 128 * 1024 )); len=$(( (RANDOM % 16 + 1) * 4096 ))
		   mode=$(( RANDOM % 2 )) ;;
		*) off=$(( base + (i * 23 % 80) * 128 * 1024 + (RANDOM % 8) * 4096 )); len=$(( (RANDOM % 8 + 1) * 4096 ))
		   mode=2 ;;
		esac
		(( off + len <= base + 10 * MiB )) || break
		pat=$(( (seed * 31 + w * 97 + round * 7 + i * 13) % 255 + 1 ))
		echo "issued $off $len $pat" >>"$log"
		case $mode in
		0) qio -c "write -P $pat $off $len" -c flush >/dev/null 2>&1 || return 0 ;;
		1) qio -c "write -P $pat $off $len" >/dev/null 2>&1 || return 0; i=$((i + 1)); continue ;;
		2) qio -c "write -f -P $pat $off $len" >/dev/null 2>&1 || return 0 ;;
		esac
		echo "acked $off $len $pat" >>"$log"
		i=$((i + 1))
	done
}

# check ROUNDS: the image after the kill, against every log so far.
check() {
	local size extent raw=$DIR/disk.raw cmds=() zeros=() line kind off len pat end prev
	"$HAVENCTL" disk check "$VOL" >"$DIR/check.out" 2>&1 || fail "disk check: $(cat "$DIR/check.out")"
	size=$(stat -c %s "$VOL")
	extent=$("$HAVENCTL" --json disk info "$VOL" | sed -n 's/.*"disk_extent_size":\([0-9]*\).*/\1/p')
	qemu-img convert -O raw --image-opts \
		"driver=vpc,file.driver=raw,file.offset=$(( size / MiB * MiB - extent )),file.size=$extent,file.file.filename=$VOL" \
		"$raw" 2>"$DIR/convert.err" || fail "qemu-img cannot read the VHD: $(cat "$DIR/convert.err")"
	# Acknowledged: the data. Issued only: the data or zeroes.
	declare -A acked=()
	while read -r kind off len pat; do
		[[ $kind == acked ]] && acked[$off]=1
	done < <(cat "$DIR"/log.* 2>/dev/null)
	while read -r kind off len pat; do
		[[ $kind == issued ]] || continue
		if [[ -n ${acked[$off]:-} ]]; then
			cmds+=(-c "read -P $pat $off $len")
		elif ! qemu-io -r -f raw -c "read -P $pat $off $len" "$raw" >/dev/null 2>&1; then
			# (qemu-io exits 1 when a pattern does not match)
			qemu-io -r -f raw -c "read -P 0 $off $len" "$raw" >/dev/null 2>&1 ||
				fail "unacknowledged write at $off ($len bytes) holds neither its data nor zeroes"
		fi
	done < <(cat "$DIR"/log.* 2>/dev/null)
	# Never written: zeroes (the backing was junk).
	prev=0
	while read -r off len; do
		((off > prev)) && zeros+=(-c "read -P 0 $prev $(( off - prev ))")
		end=$(( off + len ))
		((end > prev)) && prev=$end
	done < <(cat "$DIR"/log.* 2>/dev/null | awk '$1 == "issued" { print $2, $3 }' | sort -n -u)
	end=$(stat -c %s "$raw")
	((end > prev)) && zeros+=(-c "read -P 0 $prev $(( end - prev ))")
	qemu-io -r -f raw "${cmds[@]}" "${zeros[@]}" "$raw" >"$DIR/verify.out" 2>&1 || true
	if grep -q "verification failed\|error" "$DIR/verify.out"; then
		grep -m3 "verification failed\|error" "$DIR/verify.out" >&2
		fail "an acknowledged write is missing or a region never written is not zero"
	fi
	[[ $(grep -c '^read ' "$DIR/verify.out") -eq $(( (${#cmds[@]} + ${#zeros[@]}) / 2 )) ]] ||
		fail "verification incomplete: $(tail -3 "$DIR/verify.out")"
	echo "${#acked[@]}"
}

total=0
for seed in $SEEDS; do
	rm -f "$DIR"/log.* "$VOL"
	head -c $((160 * MiB)) /dev/zero | tr '\0' '\356' >"$VOL"
	"$HAVENCTL" disk format --cluster kill "$VOL" >/dev/null
	"$HAVENCTL" disk create "$VOL" --size 64M >/dev/null
	RANDOM=$seed
	for round in 1 2; do
		serve
		pids=()
		for w in 0 1 2; do
			writer "$w" "$round" &
			pids+=($!)
		done
		sleep "0.$(( RANDOM % 9 + 1 ))$(( RANDOM % 10 ))"
		kill -9 "$SERVER"
		wait "$SERVER" 2>/dev/null || true
		SERVER=
		wait "${pids[@]}"
		n=$(check)
		echo "seed $seed round $round: killed; image checks clean, all $n acknowledged writes so far there"
		((round == 2)) && total=$((total + n))
	done
done
echo "PASS: $total acknowledged writes over $(wc -w <<<"$SEEDS") seeds, 2 kills each"
