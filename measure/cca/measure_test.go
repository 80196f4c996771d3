package cca

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// image returns a minimal arm64 Image header with the given text offset
// and image size.
func image(textOffset, size uint64) []byte {
	b := make([]byte, 256)
	binary.LittleEndian.PutUint64(b[8:], textOffset)
	binary.LittleEndian.PutUint64(b[16:], size)
	binary.LittleEndian.PutUint32(b[56:], imageMagic)
	return b
}

// fdt returns a device tree blob of a root with an empty /chosen node.
func fdt(int) []byte { return fdtChosen(nil) }

// fdtChosen returns a device tree blob whose /chosen node has the given
// properties (name, value), in order.
func fdtChosen(props [][2]string) []byte {
	be := binary.BigEndian
	var st, strs []byte
	tok := func(v uint32) { st = be.AppendUint32(st, v) }
	pad := func() {
		for len(st)%4 != 0 {
			st = append(st, 0)
		}
	}
	tok(fdtBeginNode)
	st = append(st, 0, 0, 0, 0)
	tok(fdtBeginNode)
	st = append(st, "chosen\x00"...)
	pad()
	for _, p := range props {
		tok(fdtProp)
		tok(uint32(len(p[1])))
		tok(uint32(len(strs)))
		strs = append(strs, p[0]+"\x00"...)
		st = append(st, p[1]...)
		pad()
	}
	tok(fdtEndNode)
	tok(fdtEndNode)
	tok(fdtEnd)
	h := make([]byte, 40)
	be.PutUint32(h, 0xd00dfeed)
	be.PutUint32(h[4:], uint32(40+16+len(st)+len(strs)))
	be.PutUint32(h[8:], 56)
	be.PutUint32(h[12:], uint32(56+len(st)))
	be.PutUint32(h[16:], 40)
	be.PutUint32(h[20:], 17)
	be.PutUint32(h[32:], uint32(len(strs)))
	be.PutUint32(h[36:], uint32(len(st)))
	out := append(h, make([]byte, 16)...)
	return append(append(out, st...), strs...)
}

func u64be(v uint64) string { return string(binary.BigEndian.AppendUint64(nil, v)) }

func run(t *testing.T, cmdline string, in Inputs) (*Result, error) {
	t.Helper()
	a, err := ParseArgs(strings.Fields(cmdline))
	if err != nil {
		return nil, err
	}
	return Measure(a.Host, a.VMM, a.VMMArgs, in)
}

// TestLayouts checks where the images go: the addresses of the
// realm-measurements layouts (its "Realm Virtual Machine specification":
// kvmtool's DTB at 0x8fe00000, or 2 MiB below the end of RAM when there is
// less than 256 MiB, the initrd just below it; QEMU's initrd above the
// kernel, at least min(RAM/2, 128 MiB) into RAM, the DTB on the next 2 MiB).
func TestLayouts(t *testing.T) {
	const host = "--num-bps 6 --num-wps 6 "
	kernel, initrd, dtb := image(0, 0x2d10000), make([]byte, 5000), fdt(64)
	for _, tc := range []struct {
		cmdline string
		in      Inputs
		want    []Step
		pc, x0  uint64
	}{
		{"kvmtool --realm -c 1 -m 512 -k Image -i initrd", Inputs{Kernel: kernel, Initrd: initrd,
			DTB: fdtChosen([][2]string{{"bootargs", "console=hvc0\x00"}, {"linux,initrd-start", u64be(0x8fdfec74)}, {"linux,initrd-end", u64be(0x8fdfec74 + 5000)}})},
			[]Step{{Call: "RMI_DATA_CREATE", What: "kernel", Base: 0x80000000, Size: 256, Granules: 1},
				{Call: "RMI_DATA_CREATE", What: "initrd", Base: 0x8fdfec74, Size: 5000, Granules: 2},
				{Call: "RMI_DATA_CREATE", What: "DTB", Base: 0x8fe00000, Size: 201, Granules: 1}}, 0x80000000, 0x8fe00000},
		{"kvmtool --realm -c 1 -m 64M --firmware fw --firmware-address 0x80200000 -f fw", Inputs{Firmware: []byte("FW"), DTB: dtb},
			[]Step{{Call: "RMI_DATA_CREATE", What: "firmware", Base: 0x80200000, Size: 2, Granules: 1},
				{Call: "RMI_DATA_CREATE", What: "DTB", Base: 0x83e00000, Size: 88, Granules: 1}}, 0x80200000, 0x83e00000},
		{"qemu -M virt -cpu host -m 1G -kernel Image -initrd initrd", Inputs{Kernel: image(0x10000, 0x2d10000), Initrd: initrd, DTB: dtb},
			[]Step{{Call: "RMI_DATA_CREATE", What: "kernel", Base: 0x40010000, Size: 256, Granules: 1},
				{Call: "RMI_DATA_CREATE", What: "initrd", Base: 0x48000000, Size: 5000, Granules: 2},
				{Call: "RMI_DATA_CREATE", What: "DTB", Base: 0x48200000, Size: 88, Granules: 1}}, 0x40000000, 0x48200000},
		{"qemu -m 128M -kernel Image", Inputs{Kernel: kernel, DTB: dtb},
			[]Step{{Call: "RMI_DATA_CREATE", What: "kernel", Base: 0x40000000, Size: 256, Granules: 1},
				{Call: "RMI_DATA_CREATE", What: "DTB", Base: 0x44000000, Size: 88, Granules: 1}}, 0x40000000, 0x44000000},
		{"qemu -m 1G -bios fw -kernel Image", Inputs{Firmware: []byte("FW"), Kernel: kernel, DTB: dtb},
			[]Step{{Call: "RMI_DATA_CREATE", What: "firmware", Base: 0, Size: 2, Granules: 1},
				{Call: "RMI_DATA_CREATE", What: "DTB", Base: 0x40000000, Size: 88, Granules: 1}}, 0, 0},
	} {
		res, err := run(t, host+tc.cmdline, tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.cmdline, err)
			continue
		}
		var data []Step
		for _, s := range res.Steps {
			if s.Call == "RMI_DATA_CREATE" {
				data = append(data, s)
			}
		}
		if d := cmp.Diff(tc.want, data); d != "" {
			t.Errorf("%s: DATA_CREATE steps differ (-want +got):\n%s", tc.cmdline, d)
		}
		if res.REC.PC != tc.pc || res.REC.GPRs[0] != tc.x0 || !res.REC.Runnable {
			t.Errorf("%s: REC pc %#x x0 %#x runnable %v, want pc %#x x0 %#x runnable", tc.cmdline, res.REC.PC, res.REC.GPRs[0], res.REC.Runnable, tc.pc, tc.x0)
		}
	}
}

// TestParams checks the REALM_CREATE parameters that the host options and
// the VMM's arguments give.
func TestParams(t *testing.T) {
	dtb := fdt(64)
	for _, tc := range []struct {
		cmdline string
		want    RealmParams
	}{
		{"--num-bps 6 --num-wps 4 kvmtool --realm -c 1 -m 512", RealmParams{S2SZ: 33, NumBPs: 5, NumWPs: 3, Hash: SHA256}},
		{"--num-bps 6 --num-wps 4 --ipa-bits 40 kvmtool --realm -c 1 -m 8G --measurement-algo sha512", RealmParams{S2SZ: 35, NumBPs: 5, NumWPs: 3, Hash: SHA512}},
		{"--num-bps 6 --num-wps 4 --ipa-bits 52 --sve-vl 512 --pmu true --pmu-num-ctrs 8 --lpa2 true kvmtool --realm -c 1 -m 512 --pmu-counters 4",
			RealmParams{Flags: FlagLPA2 | FlagSVE | FlagPMU, S2SZ: 33, SVEVL: 3, NumBPs: 5, NumWPs: 3, PMUNumCtrs: 4, Hash: SHA256}},
		{"--num-bps 6 --num-wps 4 --sve-vl 512 kvmtool --realm -c 1 -m 512 --disable-sve", RealmParams{S2SZ: 33, NumBPs: 5, NumWPs: 3, Hash: SHA256}},
		{"--num-bps 16 --num-wps 16 --ipa-bits 52 qemu -m 1G", RealmParams{S2SZ: 41, NumBPs: 15, NumWPs: 15, Hash: SHA512}},
		{"--num-bps 16 --num-wps 16 --sve-vl 2048 qemu -m 1G -cpu host,num-breakpoints=4,num-watchpoints=8,sve256=on,sve512=off -object rme-guest,measurement-algorithm=sha256",
			RealmParams{Flags: FlagSVE, S2SZ: 41, SVEVL: 1, NumBPs: 3, NumWPs: 7, Hash: SHA256}},
		{"--num-bps 2 --num-wps 2 qemu -m size=1M,maxmem=1T", RealmParams{S2SZ: 42, NumBPs: 1, NumWPs: 1, Hash: SHA512}},
		{"--num-bps 2 --num-wps 2 qemu -m size=1M,maxmem=256T,slots=12", RealmParams{S2SZ: 50, NumBPs: 1, NumWPs: 1, Hash: SHA512}},
	} {
		res, err := run(t, tc.cmdline, Inputs{DTB: dtb})
		if err != nil {
			t.Errorf("%s: %v", tc.cmdline, err)
			continue
		}
		if res.Params != tc.want {
			t.Errorf("%s:\nparams %+v\nwant   %+v", tc.cmdline, res.Params, tc.want)
		}
	}
}

// TestErrors checks that inconsistent command lines and inputs fail with
// an error that says what to do.
func TestErrors(t *testing.T) {
	dtb, kernel := fdt(64), image(0, 0x100000)
	for _, tc := range []struct {
		cmdline string
		in      Inputs
		want    string
	}{
		{"--num-bps 6 kvmtool --realm -c 1 -m 512", Inputs{DTB: dtb}, "--num-wps"},
		{"--num-wps 6 kvmtool --realm -c 1 -m 512", Inputs{DTB: dtb}, "--num-bps"},
		{"--num-bps 1 --num-wps 6 kvmtool --realm -c 1 -m 512", Inputs{DTB: dtb}, "breakpoints: want 2-64"},
		{"--num-bps 6 --num-wps 6 kvmtool -c 1 -m 512", Inputs{DTB: dtb}, "--realm"},
		{"--num-bps 6 --num-wps 6 kvmtool --realm -m 512", Inputs{DTB: dtb}, "-c N"},
		{"--num-bps 6 --num-wps 6 kvmtool --realm -c 1 -m 511", Inputs{DTB: dtb}, "multiple of 2 MiB"},
		{"--num-bps 6 --num-wps 6 kvmtool --realm -c 1 -m 512 --bogus", Inputs{DTB: dtb}, "unknown option --bogus"},
		{"--num-bps 6 --num-wps 6 kvmtool --realm -c 1 -m 512 -k Image", Inputs{DTB: dtb}, "give its file"},
		{"--num-bps 6 --num-wps 6 kvmtool --realm -c 1 -m 512 -k Image", Inputs{Kernel: []byte("not an image"), DTB: dtb}, "not an arm64 Linux Image"},
		{"--num-bps 6 --num-wps 6 kvmtool --realm -c 1 -m 512 -k Image -f fw", Inputs{Kernel: kernel, Firmware: []byte("x"), DTB: dtb}, "share a granule"},
		{"--num-bps 6 --num-wps 6 kvmtool --realm -c 1 -m 4 -k Image -i initrd", Inputs{Kernel: image(0, 0), Initrd: make([]byte, 8*MiB), DTB: dtb}, "does not fit below the DTB"},
		{"--num-bps 6 --num-wps 6 kvmtool --realm -c 1 -m 512", Inputs{DTB: []byte("not a dtb at all, not at all, not at all")}, "not a device tree blob"},
		{"--num-bps 6 --num-wps 6 qemu -m 1G -kernel Image", Inputs{Kernel: image(0, 2*GiB), DTB: dtb}, "do not fit"},
		{"--num-bps 6 --num-wps 6 qemu -m 1G -cpu max", Inputs{DTB: dtb}, "-cpu host"},
		{"--num-bps 6 --num-wps 6 qemu -m 1G -object rme-guest,measurement-algorithm=sha384", Inputs{DTB: dtb}, "want sha256 or sha512"},
		{"--num-bps 6 --num-wps 6 qemu -m 1G -initrd x", Inputs{Initrd: []byte("x"), DTB: dtb}, "without -kernel"},
		{"--num-bps 6 --num-wps 6 qemu -m", Inputs{DTB: dtb}, "needs a value"},
		{"--num-bps 6 --num-wps 6 --dtb-template x qemu", Inputs{DTB: dtb}, "patching a DTB template is not modelled"},
		{"--num-bps 6 --num-wps 6 cloud-hv", Inputs{DTB: dtb}, "not modelled"},
		{"--num-bps 6 --num-wps 6", Inputs{DTB: dtb}, "no VMM"},
		{"--num-bps 6 --num-wps 6 --sve-vl 100 qemu", Inputs{DTB: dtb}, "SVE vector length 100"},
		{"--num-bps 6 --num-wps 6 --pmu true qemu", Inputs{DTB: dtb}, "--pmu-num-ctrs"},
		{"--num-bps 6 --num-wps 6 --ipa-bits 25 qemu -m 1T", Inputs{DTB: dtb}, "raise --ipa-bits"},
		{"--num-bps 6 --num-wps 6 kvmtool --realm -c 1 -m 512 -k K --firmware-address 0x80000100 -f F", Inputs{Kernel: kernel, Firmware: []byte("F"), DTB: dtb}, "share a granule"},
		{"--num-bps 6 --num-wps 6 kvmtool --realm -c 1 -m 512 -k Image -i initrd", Inputs{Kernel: kernel, Initrd: []byte("initrd"),
			DTB: fdtChosen([][2]string{{"linux,initrd-start", u64be(0x8fdffff0)}, {"linux,initrd-end", u64be(0x8fdffffe)}})}, "give the DTB the VMM generates"},
		{"--num-bps 6 --num-wps 6 kvmtool --realm -c 1 -m 512 -k Image", Inputs{Kernel: kernel,
			DTB: fdtChosen([][2]string{{"linux,initrd-start", u64be(0x8fdffff0)}, {"linux,initrd-end", u64be(0x8fdffffe)}})}, "loads none"},
	} {
		_, err := run(t, tc.cmdline, tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.cmdline, err, tc.want)
		}
	}
}

// TestNotes checks that what the model leaves out is said.
func TestNotes(t *testing.T) {
	res, err := run(t, "--num-bps 6 --num-wps 6 -k Image qemu -m 1G -smp 4 -bios fw -kernel Image -serial stdio",
		Inputs{Kernel: image(0, 0), Firmware: []byte("FW"), DTB: fdt(64)})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(res.Notes, "\n")
	for _, want := range []string{"fw_cfg", "4 vCPUs", `"-serial" ignored`} {
		if !strings.Contains(all, want) {
			t.Errorf("notes %q lack %q", all, want)
		}
	}
	if res.VCPUs != 4 {
		t.Errorf("vcpus %d, want 4", res.VCPUs)
	}
}

// TestKvmtoolDTBOptions checks what kvmtool's options change in the
// generated DTB (no oracle DTB exists for these: realm-measurements'
// layout, read back): the appended -p, no ITS with --irqchip gicv3, one
// virtio-mmio node per device (a disk and the default network device),
// the PMU node.
func TestKvmtoolDTBOptions(t *testing.T) {
	res, err := run(t, "--num-bps 6 --num-wps 6 --pmu-num-ctrs 4 kvmtool --realm -c 1 -m 256 -p quiet --irqchip gicv3 --virtio-transport mmio -d disk.img --pmu", Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	if want := " console=hvc0 root=/dev/vda rw  quiet"; res.Chosen.Bootargs != want {
		t.Errorf("bootargs %q, want %q", res.Chosen.Bootargs, want)
	}
	for name, want := range map[string]bool{"virtio@3000000\x00": true, "virtio@3000200\x00": true, "virtio@3000400\x00": false, "msic\x00": false, "pmu\x00": true, "arm,armv8-pmuv3": true} {
		if got := bytes.Contains(res.DTB, []byte(name)); got != want {
			t.Errorf("DTB holds %q: %v, want %v", name, got, want)
		}
	}
	if len(res.DTB) != 64*1024 || !res.DTBGenerated {
		t.Errorf("DTB of %d bytes (generated %v), want kvmtool's 64 KiB", len(res.DTB), res.DTBGenerated)
	}
}
