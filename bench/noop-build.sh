#!/usr/bin/env bash
# Times a no-op rebuild through the CLI: `cocobuild build --no-publish` of a
# recipe whose every step is already in the cache, as a whole process. It
# first builds once (which fills the cache if it is cold: the sample's kernel
# then takes 10+ minutes, so warm the cache with `make demo` first, or pass
# --no-warm to fail instead of building), checks with `plan --json` that no
# step is left to run, then times RUNS rebuilds and prints their median
# against the 100 ms goal.
#
#   bench/noop-build.sh [-n RUNS] [-b BINARY] [--no-warm] [RECIPE [BUILD FLAGS...]]
#   bench/noop-build.sh recipes/sample -var acpi_qemu=$HOME/.cache/cocobuild/tools/qemu-forky/qemu-system-x86_64
#   bench/noop-build.sh recipes/prebuilt --cache-dir /tmp/c
#
# RECIPE defaults to recipes/sample; BUILD FLAGS (-var, --cache-dir, ...)
# are passed to both plan and build. -b times a given cocobuild binary
# (default: one built here with go build -trimpath). --no-publish: a no-op
# rebuild signs nothing, so the figure is the build's own.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=9 bin="" warm=1
while (($#)); do
	case $1 in
	-n) runs=$2; shift 2 ;;
	-b) bin=$2; shift 2 ;;
	--no-warm) warm=0; shift ;;
	-h | --help) sed -n '2,17p' "$0"; exit 0 ;;
	*) break ;;
	esac
done
recipe=${1:-recipes/sample}
(($#)) && shift
flags=("$@")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ -z $bin ]]; then
	go build -trimpath -o "$work/cocobuild" ./cmd/cocobuild
	bin=$work/cocobuild
fi
out=$work/out

if ((warm)); then
	"$bin" build --no-publish -o "$out" "${flags[@]}" "$recipe" >/dev/null
fi
"$bin" plan --json --no-publish "${flags[@]}" "$recipe" >"$work/plan.json"
torun=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(1 for s in d["steps"] if s["status"] == "run"))' "$work/plan.json")
if [[ $torun != 0 ]]; then
	echo "$torun step(s) of $recipe are not cached: build it first (make demo for the sample)" >&2
	exit 1
fi

for ((i = 0; i < runs + 1; i++)); do
	t0=$EPOCHREALTIME
	"$bin" build --no-publish -o "$out" "${flags[@]}" "$recipe" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
	t1=$EPOCHREALTIME
	((i == 0)) && continue # page cache warm-up
	echo "$t0 $t1" | awk '{printf "%.6f\n", $2 - $1}' >>"$work/times"
done
sort -g "$work/times" | awk -v r="$recipe" -v n="$runs" '{v[NR] = $1} END {
	m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
	printf "no-op rebuild of %s (build --no-publish, every step cached), median of %d runs: %.1f ms wall (min %.1f, max %.1f; goal < 100 ms)\n", r, n, m * 1000, v[1] * 1000, v[NR] * 1000
}'
