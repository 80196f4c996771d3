#!/usr/bin/env bash
# Times a build on a cold local cache with a warm remote cache (an OCI
# registry: Debian's docker-registry on 127.0.0.1) next to a fully cold
# build of the same recipe, checks that both outputs are identical, and
# prints the two times and their ratio.
#
#   bench/remote-cache.sh [--fill-from CACHE] [--no-cold] [RECIPE]   (default: recipes/sample)
#
# By default the fully cold build (fresh local cache, nothing remote; the
# sample's kernel takes 10+ minutes on two cores) fills the remote cache as
# it goes (--cache-to), then the second build (another fresh local cache,
# --cache-from) pulls what it can. --fill-from CACHE fills the remote cache
# from an existing local cache instead (e.g. ~/.cache/cocobuild, warmed by
# an earlier build), and the fully cold build runs last, unless --no-cold.
# Both builds run with --no-publish (nothing signed, no key needed).
set -euo pipefail
cd "$(dirname "$0")/.."

fill_from="" cold=1
while (($#)); do
	case $1 in
	--fill-from) fill_from=$2; shift 2 ;;
	--no-cold) cold=0; shift ;;
	-h | --help) sed -n '2,16p' "$0"; exit 0 ;;
	*) break ;;
	esac
done
recipe=${1:-recipes/sample}
command -v docker-registry >/dev/null || { echo "docker-registry not found: apt-get install docker-registry" >&2; exit 1; }

work=$(mktemp -d)
reg_pid=""
cleanup() {
	# wait gives the killed registry's status (143), which under set -e
	# would be the script's own after a run that succeeded.
	if [[ -n $reg_pid ]] && kill "$reg_pid" 2>/dev/null; then
		wait "$reg_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
go build -trimpath -o "$work/cocobuild" ./cmd/cocobuild

# The registry, on a free loopback port, its storage in $work.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 100); do
	curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
	sleep 0.1
done
ref="oci://127.0.0.1:$port/cocobuild/cache"

# build NAME ARGS... runs a build with a fresh local cache into $work/NAME,
# prints its wall seconds and keeps its --json report in $work/NAME.json.
build() {
	local name=$1 start end
	shift
	start=$(date +%s.%N)
	if ! "$work/cocobuild" build --json --no-publish -j 2 --cache-dir "$work/$name-cache" -o "$work/$name" "$@" "$recipe" >"$work/$name.json" 2>"$work/$name.log"; then
		echo "build $name failed:" >&2
		tail -30 "$work/$name.log" >&2
		exit 1
	fi
	end=$(date +%s.%N)
	awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}'
}
count() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

t_cold=""
if [[ -z $fill_from ]]; then
	echo "fully cold build (fresh local cache, filling $ref) ..." >&2
	t_cold=$(build cold --cache-from none --cache-to "$ref")
else
	echo "filling $ref from $fill_from ..." >&2
	start=$(date +%s.%N)
	"$work/cocobuild" build --json --no-publish --cache-dir "$fill_from" -o "$work/fill" --cache-from none --cache-to "$ref" "$recipe" >"$work/fill.json" 2>"$work/fill.log" ||
		{ tail -30 "$work/fill.log" >&2; exit 1; }
	echo "  filled in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s ($(count "$work/fill.json" ran) step(s) had to run)" >&2
fi
echo "cold local cache, warm remote cache ..." >&2
t_warm=$(build warm --cache-from "$ref" --cache-to none)
if [[ -z $fill_from ]] || ((cold)); then
	if [[ -z $t_cold ]]; then
		echo "fully cold build (fresh local cache, no remote cache) ..." >&2
		t_cold=$(build cold --cache-from none --cache-to none)
	fi
	"$work/cocobuild" diff "$work/cold" "$work/warm" >"$work/diff.txt" || { echo "FAIL: the outputs differ:" >&2; cat "$work/diff.txt" >&2; exit 1; }
fi

steps=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["steps"]))' "$work/warm.json")
printf 'recipe %s, %d steps, -j 2, --no-publish; remote cache: docker-registry on 127.0.0.1\n' "$recipe" "$steps"
printf '  cold local cache, warm remote cache: %6s s  (%s step(s) pulled, %s ran)\n' "$t_warm" "$(count "$work/warm.json" pulled)" "$(count "$work/warm.json" ran)"
if [[ -n $t_cold ]]; then
	printf '  fully cold build:                    %6s s  (%s step(s) ran)\n' "$t_cold" "$(count "$work/cold.json" ran)"
	printf '  ratio cold / warm remote: %s; outputs: %s\n' "$(awk -v a="$t_cold" -v b="$t_warm" 'BEGIN {printf "%.1f", a / b}')" "$(head -1 "$work/diff.txt")"
fi
