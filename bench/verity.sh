#!/usr/bin/env bash
# Times `cocobuild verity format` (rootfs/verity) against `veritysetup format`
# on the same data with the same parameters, side by side, and prints the
# ratio of the medians (goal: <= 1.1). Both outputs must be identical.
#
#   bench/verity.sh [SIZE_MIB] [RUNS]      (defaults: 256 MiB, 7 runs)
set -euo pipefail
cd "$(dirname "$0")/.."

size_mib=${1:-256}
runs=${2:-7}
command -v veritysetup >/dev/null || { echo "veritysetup not found: apt-get install cryptsetup-bin" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -trimpath -o "$work/cocobuild" ./cmd/cocobuild
head -c "$((size_mib << 20))" /dev/urandom >"$work/data"
salt=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
uuid=$(cat /proc/sys/kernel/random/uuid)

# time_one runs a command and prints "wall cpu" in seconds (cpu = user + sys).
time_one() {
	local TIMEFORMAT='%R %U %S' t
	t=$({ time "$@" >/dev/null 2>&1; } 2>&1)
	awk '{printf "%.3f %.3f\n", $1, $2 + $3}' <<<"$t"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

vs() { veritysetup format "$work/data" "$work/theirs" --salt "$salt" --uuid "$uuid"; }
cb() { "$work/cocobuild" verity format "$work/data" "$work/ours" --salt "$salt" --uuid "$uuid"; }

ours=() theirs=()
# Warm the page cache so that neither side pays for the first read.
cat "$work/data" >/dev/null
for i in $(seq "$runs"); do
	# Alternate the order so that neither always runs on a warmer machine.
	if ((i % 2)); then
		theirs+=("$(time_one vs)")
		ours+=("$(time_one cb)")
	else
		ours+=("$(time_one cb)")
		theirs+=("$(time_one vs)")
	fi
done
cmp -s "$work/ours" "$work/theirs" || { echo "FAIL: the hash trees differ" >&2; exit 1; }

col() { # col N ENTRY... prints field N of each entry
	local n=$1
	shift
	printf '%s\n' "$@" | awk -v c="$n" '{print $c}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
w_ours=$(col 1 "${ours[@]}" | median) w_theirs=$(col 1 "${theirs[@]}" | median)
c_ours=$(col 2 "${ours[@]}" | median) c_theirs=$(col 2 "${theirs[@]}" | median)
printf 'dm-verity format of %d MiB, %d runs each, identical hash trees; seconds as wall/cpu\n' "$size_mib" "$runs"
printf '  veritysetup format: %s\n' "$(printf '%s ' "${theirs[@]/ //}")"
printf '  cocobuild verity:   %s\n' "$(printf '%s ' "${ours[@]/ //}")"
printf 'median wall: veritysetup %s s, cocobuild %s s, ratio %s (goal <= 1.1)\n' "$w_theirs" "$w_ours" "$(ratio "$w_ours" "$w_theirs")"
printf 'median cpu:  veritysetup %s s, cocobuild %s s, ratio %s\n' "$c_theirs" "$c_ours" "$(ratio "$c_ours" "$c_theirs")"
