package cca

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// vectorSeed reads a file of the shared vectors for a fuzz seed, or nil
// when the vectors are not there (the fuzz targets' other seeds remain).
func vectorSeed(rel string) []byte {
	dir := os.Getenv("COCOBUILD_VECTORS")
	if dir == "" {
		return nil
	}
	b, _ := os.ReadFile(filepath.Join(dir, rel))
	return b
}

// FuzzParseImageHeader checks that the arm64 Image header parser never
// panics, and that an accepted header has the magic.
func FuzzParseImageHeader(f *testing.F) {
	f.Add(image(0x80000, 0x2d10000))
	f.Add([]byte("ARM\x64"))
	if b := vectorSeed("inputs/cca-linux.bin"); b != nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := ParseImageHeader(b); err == nil && (len(b) < 64 || string(b[56:60]) != "ARM\x64") {
			t.Fatalf("accepted %d bytes without the Image magic", len(b))
		}
	})
}

// FuzzCheckFDT checks that the device tree header check never panics and
// accepts only headers whose blocks lie within the blob.
func FuzzCheckFDT(f *testing.F) {
	f.Add(fdt(64))
	for _, n := range []string{"qemu-k-i-2cpu-1G-sha256", "kvmtool-fw-1cpu-512M"} {
		if b := vectorSeed("inputs/cca/" + n + ".dtb"); b != nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := CheckFDT(b)
		if err == nil && int(h.TotalSize) > len(b) {
			t.Fatalf("accepted totalsize %d for %d bytes", h.TotalSize, len(b))
		}
	})
}

// FuzzMeasure checks that Measure never panics on any command line,
// kernel or DTB: it returns a result or an error.
func FuzzMeasure(f *testing.F) {
	f.Add("--num-bps 6 --num-wps 6 kvmtool --realm -c 1 -m 512 -k K -i I", image(0, 0x100000), []byte("initrd"), fdt(64))
	f.Add("--num-bps 6 --num-wps 6 --pmu true --pmu-num-ctrs 2 kvmtool --realm -c 3 -m 2G -k K -i I --measurement-log --virtio-transport mmio -d a -n mode=tap --irqchip gicv3", image(0, 0x100000), []byte("initrd"), []byte{})
	f.Add("--num-bps 6 --num-wps 6 --ipa-bits 52 qemu -m 1G -smp 2 -kernel K -initrd I -object rme-guest,measurement-algorithm=sha256", image(0x80000, 0x100000), []byte("initrd"), fdt(64))
	f.Add("--num-bps 6 --num-wps 6 qemu -m size=2M,maxmem=4P,slots=9 -cpu host,sve=off,sve128=on,pmu=on -kernel K", image(1<<40, 1<<40), []byte(nil), fdt(40))
	f.Fuzz(func(t *testing.T, cmdline string, kernel, initrd, dtb []byte) {
		a, err := ParseArgs(strings.Fields(cmdline))
		if err != nil {
			return
		}
		if len(dtb) == 0 {
			dtb = nil // kvmtool's is generated
		}
		res, err := Measure(a.Host, a.VMM, a.VMMArgs, Inputs{Kernel: kernel, Initrd: initrd, Firmware: []byte("FW"), DTB: dtb})
		if err == nil && len(res.RIM) != res.Hash.Size() {
			t.Fatalf("RIM of %d bytes for %s", len(res.RIM), res.Hash)
		}
	})
}

// FuzzReadChosen checks that the /chosen reader never panics or loops on
// any blob.
func FuzzReadChosen(f *testing.F) {
	f.Add(fdtChosen([][2]string{{"bootargs", "console=hvc0\x00"}, {"linux,initrd-start", u64be(0x8fdffff0)}, {"linux,initrd-end", "\x8f\xdf\xff\xfe"}}))
	for _, n := range []string{"kvmtool-k-i-2cpu-1G", "qemu-k-1cpu-512M-sha512"} {
		if b := vectorSeed("inputs/cca/" + n + ".dtb"); b != nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ReadChosen(b)
		if err == nil && len(c.Bootargs) > len(b) {
			t.Fatalf("bootargs of %d bytes from a %d-byte blob", len(c.Bootargs), len(b))
		}
	})
}
