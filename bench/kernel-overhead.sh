#!/usr/bin/env bash
# Prints the time of the sample's kernel step next to a plain `make` of the
# same source with the same configuration on the same machine, and the
# overhead (goal: under 5%). A cold kernel build takes 10+ minutes on two
# cores, and this runs two: run it on an otherwise idle machine.
#
#   bench/kernel-overhead.sh [-b BINARY] [-j JOBS] [-k DIR]
#
# -k DIR keeps the kernel step's outputs and raw log (its phase times) in DIR.
#
# 1. kernel/testdata/kernel.hcl (the sample's kernel alone) without its
#    kernel block is built into a fresh cache: the source package is
#    fetched, not timed.
# 2. kernel/testdata/kernel.hcl is built with that cache: its wall time is
#    the kernel step's (extraction, tinyconfig and the fragments, bzImage
#    and modules, the outputs into the cache).
# 3. Plain make: the same tarball extracted with tar, the .config of step 2
#    installed with olddefconfig, `make -jJOBS bzImage modules` (JOBS
#    defaults to nproc, as the kernel step uses), with the same
#    KBUILD_BUILD_* settings; its wall time includes the extraction.
# The two bzImages are compared: a note says when they differ (the kernel
# step builds in its own paths, with its own prefix maps).
set -euo pipefail
cd "$(dirname "$0")/.."

bin="" jobs=$(nproc) keep=""
while (($#)); do
	case $1 in
	-b) bin=$2; shift 2 ;;
	-j) jobs=$2; shift 2 ;;
	-k) keep=$2; shift 2 ;;
	-h | --help) sed -n '2,22p' "$0"; exit 0 ;;
	*) echo "unknown argument $1" >&2; exit 2 ;;
	esac
done

work=$(mktemp -d)
rdir=$(mktemp -d)
trap 'rm -rf "$work" "$rdir"' EXIT
if [[ -z $bin ]]; then
	go build -trimpath -o "$work/cocobuild" ./cmd/cocobuild
	bin=$work/cocobuild
fi

# kernel/testdata/kernel.hcl is the sample's kernel alone; its input is
# fetched first by a copy of the recipe without the kernel block.
recipe=kernel/testdata/kernel.hcl
awk '/^kernel "guest"/ {exit} {print}' "$recipe" >"$rdir/input.hcl"
grep -q 'input "linux_source"' "$rdir/input.hcl" || { echo "no linux_source input in $recipe" >&2; exit 1; }
"$bin" build --no-publish --cache-dir "$work/cache" -o "$work/out-input" "$rdir/input.hcl" >/dev/null

load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "load average before the kernel step: $(load)"
t0=$EPOCHREALTIME
"$bin" build --no-publish --cache-dir "$work/cache" -o "$work/out" "$recipe" >/dev/null
t1=$EPOCHREALTIME
step=$(echo "$t0 $t1" | awk '{printf "%.1f", $2 - $1}')
echo "load average after the kernel step: $(load)"
# The step's phases, from its raw log (each command's wall time, the
# outputs, the removal of the work directory).
steplog=$(grep -l '^== extract$' "$work"/cache/steps/*/log | head -1)
grep -E '^== (tar|make|sh|build|built|outputs|work directory)' "$steplog" | grep -Ev '^== (tar|make|sh) (-|O=|\$)' |
	sed 's/^== /  step: /' || true
if [[ -n $keep ]]; then
	mkdir -p "$keep"
	cp -r "$work/out/kernel/guest/." "$keep/"
	cp "$steplog" "$keep/raw.log"
fi

tarball=$(find "$work/cache" -name 'linux-source-*.tar.*' -type f | head -1)
[[ -n $tarball ]] || { echo "the linux source tarball is not in $work/cache" >&2; exit 1; }
export SOURCE_DATE_EPOCH=0 KBUILD_BUILD_TIMESTAMP="Thu Jan  1 00:00:00 UTC 1970" KBUILD_BUILD_USER=cocobuild \
	KBUILD_BUILD_HOST=cocobuild KBUILD_BUILD_VERSION=1 LOCALVERSION= LC_ALL=C TZ=UTC
t0=$EPOCHREALTIME
mkdir "$work/plain"
tar -xf "$tarball" -C "$work/plain" --no-same-owner
src=$(dirname "$(find "$work/plain" -maxdepth 2 -name Makefile | head -1)")
mkdir "$work/plain/obj"
cp "$work/out/kernel/guest/config" "$work/plain/obj/.config"
t2=$EPOCHREALTIME
make -s -C "$src" O="$work/plain/obj" ARCH=x86_64 olddefconfig >/dev/null
t3=$EPOCHREALTIME
make -s -C "$src" O="$work/plain/obj" ARCH=x86_64 -j"$jobs" bzImage modules >"$work/plain.log" 2>&1 ||
	{ tail -20 "$work/plain.log" >&2; exit 1; }
t1=$EPOCHREALTIME
plain=$(echo "$t0 $t1" | awk '{printf "%.1f", $2 - $1}')
echo "load average after plain make: $(load)"
echo "$t0 $t2 $t3 $t1" | awk '{printf "  plain: tar %.1f s, olddefconfig %.1f s, make %.1f s\n", $2 - $1, $3 - $2, $4 - $3}'
sha256sum "$work/out/kernel/guest/vmlinuz" "$work/plain/obj/arch/x86/boot/bzImage" | sed "s|$work/||"

cmp -s "$work/out/kernel/guest/vmlinuz" "$work/plain/obj/arch/x86/boot/bzImage" ||
	echo "note: the two bzImages differ (cocobuild's build is reproducible with its own paths and settings); the times still compare the same configuration" >&2
awk -v s="$step" -v p="$plain" -v j="$jobs" 'BEGIN {
	printf "kernel step (cocobuild build, kernel only):  %7.1f s\n", s
	printf "plain make -j%d (tar, olddefconfig, make):   %7.1f s\n", j, p
	printf "overhead: %+.1f%% (goal < 5%%)\n", (s - p) / p * 100
}'
