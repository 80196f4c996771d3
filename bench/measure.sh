#!/usr/bin/env bash
# Times `cocobuild measure sev` (SEV-SNP, measured direct boot) against a peer
# command, and `cocobuild measure tdx` on the same kernel and initrd, as whole
# processes: runs alternate (ours, peer, ours tdx, ...), and the medians of
# wall and CPU time, the ratio, the goals and the load average are printed.
# Both SNP digests must be equal, or the script fails: the peer is the oracle
# as well as the yardstick. On a loaded machine, chrt -f 10 (as root) runs
# both ahead of the load.
#
#   bench/measure.sh [-n RUNS] [-b BINARY] PEER_CMD...
#   bench/measure.sh "python3 ../sev-snp-measure/sev-snp-measure.py"
#
# PEER_CMD is a sev-snp-measure command (e.g. run from a checkout with
# python3); it gets the same flags as `cocobuild measure sev`. -n sets the
# number of runs of each (default 9), -b a cocobuild binary to time (default:
# one built here with go build -trimpath). Inputs come from the golden vectors
# ($COCOBUILD_VECTORS, default /work/shared/vectors): Debian's 4 MiB
# OVMF.amdsev.fd (SNP) and OVMF.fd (TDX), a 14 MB Debian kernel and a 1 MiB
# initrd. TDX has no peer here: its median is printed against the 40 ms goal
# (MRTD, RTMR1, RTMR2; RTMR0 needs QEMU's ACPI tables, which a boot gives).
# Not run in CI: the peer is not installed there.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=9 bin=""
while (($#)); do
	case $1 in
	-n) runs=$2; shift 2 ;;
	-b) bin=$2; shift 2 ;;
	-h | --help) sed -n '2,21p' "$0"; exit 0 ;;
	*) break ;;
	esac
done
(($#)) || { sed -n '2,21p' "$0" >&2; exit 2; }
read -r -a peer <<<"$*"

vec=${COCOBUILD_VECTORS:-/work/shared/vectors}/inputs
snp_fw=$vec/debian-sid_OVMF.amdsev.fd tdx_fw=$vec/debian-sid_OVMF.fd
kernel=$vec/vmlinuz-6.1.0-56-cloud-amd64 initrd=$vec/initrd-b.bin
for f in "$snp_fw" "$tdx_fw" "$kernel" "$initrd"; do
	[[ -f $f ]] || { echo "missing input $f: set COCOBUILD_VECTORS" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ -z $bin ]]; then
	go build -trimpath -o "$work/cocobuild" ./cmd/cocobuild
	bin=$work/cocobuild
fi

sev_args=(--mode snp --ovmf "$snp_fw" --vcpus 2 --vcpu-type EPYC-Milan
	--kernel "$kernel" --initrd "$initrd" --append "console=ttyS0 root=/dev/vda1")
tdx_args=(--firmware "$tdx_fw" --kernel "$kernel" --initrd "$initrd" --append "console=ttyS0 root=/dev/vda1")

# timed NAME CMD... runs CMD with its stdout in $work/NAME.out and appends its
# wall time in seconds to $work/NAME.times, its CPU time (user + system) to
# $work/NAME.cpu; it fails when CMD fails.
timed() {
	local name=$1 t rc=0
	shift
	t=$({ TIMEFORMAT='%3R %3U %3S' && time "$@" >"$work/$name.out" 2>"$work/$name.err"; } 2>&1) || rc=$?
	((rc == 0)) || { cat "$work/$name.err" >&2; echo "$name failed: $*" >&2; exit 1; }
	read -r real user sys <<<"$t"
	echo "$real" >>"$work/$name.times"
	awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.3f\n", u + s}' >>"$work/$name.cpu"
}
median() { sort -g "$work/$1" | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# cocobuild remembers what it reads from a firmware's modules (whether it
# checks the direct-boot blobs, whether it measures into RTMRs) under the
# user cache: a private one starts empty, and the first round, which also
# warms the page cache, is printed apart.
export XDG_CACHE_HOME=$work/cache
cat "$snp_fw" "$tdx_fw" "$kernel" "$initrd" >/dev/null
load_before=$(loadavg)
timed first-ours "$bin" measure sev "${sev_args[@]}"
timed first-peer "${peer[@]}" "${sev_args[@]}"
timed first-tdx "$bin" measure tdx "${tdx_args[@]}"
for ((i = 0; i < runs; i++)); do
	timed ours "$bin" measure sev "${sev_args[@]}"
	timed peer "${peer[@]}" "${sev_args[@]}"
	timed tdx "$bin" measure tdx "${tdx_args[@]}"
done

ours_digest=$(tr -d '[:space:]' <"$work/ours.out") peer_digest=$(tr -d '[:space:]' <"$work/peer.out")
if [[ $ours_digest != "$peer_digest" ]]; then
	echo "digests differ: cocobuild $ours_digest, peer $peer_digest" >&2
	exit 1
fi
grep -q '^mrtd: [0-9a-f]\{96\}$' "$work/tdx.out" || { echo "measure tdx printed no MRTD" >&2; exit 1; }

ours=$(median ours.times) peer_med=$(median peer.times) tdx=$(median tdx.times)
ours_cpu=$(median ours.cpu) peer_cpu=$(median peer.cpu) tdx_cpu=$(median tdx.cpu)
first_ours=$(median first-ours.times) first_tdx=$(median first-tdx.times)
awk -v d="$ours_digest" -v o="$ours" -v p="$peer_med" -v t="$tdx" -v n="$runs" -v fo="$first_ours" -v ft="$first_tdx" \
	-v oc="$ours_cpu" -v pc="$peer_cpu" -v tc="$tdx_cpu" -v l0="$load_before" -v l1="$(loadavg)" 'BEGIN {
	printf "SNP direct boot digest: equal (%s)\n", substr(d, 1, 16) "..."
	printf "medians of %d alternating runs, whole process:      wall         CPU (user+sys)\n", n
	printf "  cocobuild measure sev  %7.1f ms   %7.1f ms\n", o * 1000, oc * 1000
	printf "  peer                   %7.1f ms   %7.1f ms\n", p * 1000, pc * 1000
	printf "  ratio                  %7.1fx   %7.1fx     (goal >= 20x)\n", p / o, pc / oc
	printf "  cocobuild measure tdx  %7.1f ms   %7.1f ms   (goal < 40 ms; MRTD, RTMR1, RTMR2)\n", t * 1000, tc * 1000
	printf "first run, the firmware not yet in the memo: measure sev %.1f ms, measure tdx %.1f ms\n", fo * 1000, ft * 1000
	printf "load average (1, 5, 15 min): %s before, %s after\n", l0, l1
}'
