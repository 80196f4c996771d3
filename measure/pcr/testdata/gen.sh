#!/bin/sh
# Regenerates the vectors of measure/pcr and `cocobuild measure pcr` with
# Debian 12's systemd-measure (systemd 252.38-1~deb12u1, package systemd):
#   cd measure/pcr/testdata && sh gen.sh
# Each line of cases.txt is a case name and systemd-measure's arguments
# (paths relative to this directory); for each, want/NAME.args holds them one
# a line, want/NAME.txt and
# NAME.stderr are its text output, want/NAME.short.json and
# NAME.pretty.json its --json=short and --json=pretty output.
set -eu
M=${SYSTEMD_MEASURE:-/usr/lib/systemd/systemd-measure}
mkdir -p want
# The inputs: fixed bytes, made reproducibly.
printf 'MZ fake kernel image\n' > in/linux
head -c 70000 /dev/zero | tr '\0' 'k' >> in/linux
printf 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="cocobuild test"\n' > in/osrel
printf 'console=ttyS0 panic=-1 root=/dev/vda2' > in/cmdline
head -c 100000 /dev/zero | tr '\0' 'i' > in/initrd
printf 'BM splash' > in/splash
printf '\320\015\376\355 dtb' > in/dtb
printf -- '-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n' > in/pcrpkey
: > in/empty
while read -r name args; do
	case $name in '#'*|'') continue ;; esac
	eval "set -- $args"
	printf '%s\n' "$@" > "want/$name.args"
	"$M" calculate "$@" > "want/$name.txt" 2> "want/$name.stderr"
	"$M" calculate "$@" --json=short > "want/$name.short.json"
	"$M" calculate "$@" --json=pretty > "want/$name.pretty.json"
done < cases.txt
