#!/usr/bin/env bash
# Times the Go builds of an initramfs (the sample's u-root busybox and
# agent) with the Go build cache cold and warm: two builds of a recipe that
# holds only that initramfs, each with a fresh cocobuild cache (so both run
# the busybox and agent steps), the first with an empty GOCACHE, the second
# with the GOCACHE the first filled. Both images must be identical.
#
#   bench/gocache.sh [-b BINARY]
#
# The recipe is written to a temporary directory in the repository (the
# agent is ./cmd/sample-agent of this module) and removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=""
while (($#)); do
	case $1 in
	-b) bin=$2; shift 2 ;;
	-h | --help) sed -n '2,11p' "$0"; exit 0 ;;
	*) echo "unknown argument $1" >&2; exit 2 ;;
	esac
done

work=$(mktemp -d)
rdir=$(mktemp -d "$PWD/bench/.gocache-recipe.XXXXXX")
trap 'rm -rf "$work" "$rdir"' EXIT
if [[ -z $bin ]]; then
	go build -trimpath -o "$work/cocobuild" ./cmd/cocobuild
	bin=$work/cocobuild
fi
cat >"$rdir/initramfs.hcl" <<'EOF'
recipe {
  name  = "gocache"
  epoch = 0
}

initramfs "agent" {
  uroot {
    commands = ["core/init", "core/gosh", "core/ls", "core/cat"]
  }
  agent {
    package = "./cmd/sample-agent"
    path    = "/usr/bin/agent"
  }
  compression = "zstd"
}
EOF

# build NAME: a build with a fresh cocobuild cache and GOCACHE=$work/gocache.
build() {
	local t0 t1
	t0=$EPOCHREALTIME
	GOCACHE=$work/gocache "$bin" build --no-publish --cache-dir "$work/cache-$1" -o "$work/out-$1" "$rdir" >"$work/$1.log" 2>&1 ||
		{ cat "$work/$1.log" >&2; exit 1; }
	t1=$EPOCHREALTIME
	echo "$t0 $t1" | awk '{printf "%.1f", $2 - $1}'
}
cold=$(build cold)
warm=$(build warm)
tree() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
a=$(tree "$work/out-cold/initramfs") b=$(tree "$work/out-warm/initramfs")
[[ $a == "$b" ]] || { echo "the two images differ" >&2; exit 1; }
echo "initramfs with the u-root busybox and the agent, fresh cocobuild cache each time:"
echo "  GOCACHE empty:                    $cold s"
echo "  GOCACHE warm (from the first run): $warm s"
