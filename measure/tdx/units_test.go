package tdx

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// The TDVF metadata wire sizes (TDVF design guide): the descriptor, then a
// section after another.
const descriptorSize, sectionSize = 16, 32

func TestParseMetadataErrors(t *testing.T) {
	testenv.Vectors(t)
	seed := metadataSeeds()[1]
	md, err := ParseMetadata(seed)
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	desc := md.Offset
	sec := func(i, field int) int { return desc + descriptorSize + sectionSize*i + field }
	put32 := func(off int, v uint32) func([]byte) {
		return func(b []byte) { binary.LittleEndian.PutUint32(b[off:], v) }
	}
	put64 := func(off int, v uint64) func([]byte) {
		return func(b []byte) { binary.LittleEndian.PutUint64(b[off:], v) }
	}
	tests := []struct {
		name   string
		mutate func([]byte)
		msg    string
	}{
		{"bad signature", func(b []byte) { b[desc] = 'X' }, "signature"},
		{"version 2", put32(desc+8, 2), "version"},
		{"one section", put32(desc+12, 1), "sections"},
		{"length mismatch", put32(desc+4, 17), "length"},
		{"unaligned address", put64(sec(0, 8), 0xfffff001), "page aligned"},
		{"unaligned size", put64(sec(0, 16), 0x2001), "page aligned"},
		{"raw larger than memory", put32(sec(0, 4), 0x10000), "exceeds"},
		{"raw data outside image", put32(sec(0, 0), 0x7fffffff), "outside"},
		{"unknown type", put32(sec(0, 24), 99), "unknown section type"},
		{"memory section with raw data", func(b []byte) {
			for i, s := range md.Sections {
				if s.Type == SectionTempMem {
					binary.LittleEndian.PutUint32(b[sec(i, 4):], 0x1000)
					return
				}
			}
		}, "RawDataSize"},
		{"huge memory", func(b []byte) {
			for i, s := range md.Sections {
				if s.Type == SectionTempMem {
					binary.LittleEndian.PutUint64(b[sec(i, 16):], 1<<40)
					return
				}
			}
		}, "more than"},
		{"no footer", func(b []byte) { b[len(b)-32-10] ^= 0xff }, "TDVF metadata"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := append([]byte(nil), seed...)
			tc.mutate(b)
			_, err := ParseMetadata(b)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("ParseMetadata error = %v, want one mentioning %q", err, tc.msg)
			}
		})
	}
	if _, err := ParseMetadata(nil); err == nil {
		t.Errorf("ParseMetadata(nil) succeeded")
	}
}

func TestQ35Memory(t *testing.T) {
	tests := []struct{ mem, below, above uint64 }{
		{1 << 30, 1 << 30, 0},
		{2 << 30, 2 << 30, 0},
		{0xafffffff, 0xafffffff, 0},
		{0xb0000000, 0x80000000, 0x30000000},
		{8 << 30, 2 << 30, 6 << 30},
	}
	for _, tc := range tests {
		b, a := Q35Memory(tc.mem)
		if b != tc.below || a != tc.above {
			t.Errorf("Q35Memory(0x%x) = 0x%x, 0x%x; want 0x%x, 0x%x", tc.mem, b, a, tc.below, tc.above)
		}
	}
}

func TestRAMLayoutHighMemory(t *testing.T) {
	fw := testenv.ReadVector(t, "inputs/debian12_OVMF.fd")
	md, err := ParseMetadata(fw)
	if err != nil {
		t.Fatal(err)
	}
	ram, err := RAMLayout(md, 8<<30)
	if err != nil {
		t.Fatalf("RAMLayout: %v", err)
	}
	last, prev := ram[len(ram)-1], ram[len(ram)-2]
	if last != (RAMRange{1 << 32, 6 << 30, RAMUnaccepted}) || prev.Start+prev.Length != 2<<30 {
		t.Errorf("8 GiB layout ends %+v, %+v; want low RAM up to 2 GiB and 6 GiB unaccepted at 4 GiB", prev, last)
	}
	if _, err := RAMLayout(md, 4<<20); err == nil {
		t.Errorf("RAMLayout with 4 MiB (below the TempMem sections) succeeded; QEMU refuses it")
	}
}

func TestParsers(t *testing.T) {
	if v, err := ParseQEMUVersion("8.2.2"); err != nil || v != (QEMUVersion{8, 2, 2}) || v.String() != "8.2.2" || !v.PatchesKernelHeader() {
		t.Errorf("ParseQEMUVersion(8.2.2) = %v, %v", v, err)
	}
	if v, err := ParseQEMUVersion("10.2"); err != nil || v.PatchesKernelHeader() || v.String() != "10.2" {
		t.Errorf("ParseQEMUVersion(10.2) = %v, %v; want unpatched", v, err)
	}
	if v, _ := ParseQEMUVersion("11.0"); v.PatchesKernelHeader() {
		t.Errorf("QEMU 11.0 patches the header, want not")
	}
	if v, _ := ParseQEMUVersion("10.1.3"); !v.PatchesKernelHeader() {
		t.Errorf("QEMU 10.1.3 does not patch the header, want it to")
	}
	for _, bad := range []string{"", "10", "10.x", "1.2.3.4", "-1.0"} {
		if _, err := ParseQEMUVersion(bad); err == nil {
			t.Errorf("ParseQEMUVersion(%q) succeeded", bad)
		}
	}
	if _, err := ParsePageOrder("one-pass"); err == nil {
		t.Errorf("ParsePageOrder(one-pass) succeeded")
	}
	if _, err := ParseSeparator("new"); err == nil {
		t.Errorf("ParseSeparator(new) succeeded")
	}
	if _, err := Measure(nil, Options{PageOrder: "bogus"}); err == nil {
		t.Errorf("Measure with a bogus page order succeeded")
	}
}

func TestPatchKernel(t *testing.T) {
	kern := testenv.ReadVector(t, "inputs/vmlinuz-6.1.0-56-cloud-amd64")
	orig := append([]byte(nil), kern...)
	k := QEMUKernel{Kernel: kern, Cmdline: "console=ttyS0 vga=0x317", Memory: 2 << 30}
	out, h, err := PatchKernel(k)
	if err != nil {
		t.Fatalf("PatchKernel: %v", err)
	}
	if !bytes.Equal(kern, orig) {
		t.Fatal("PatchKernel modified its input")
	}
	if got := binary.LittleEndian.Uint16(out[hdrVidMode:]); got != 0x317 {
		t.Errorf("vga=0x317 set vid_mode 0x%x", got)
	}
	if h.Protocol != 0x20f || h.RamdiskImage != 0 {
		t.Errorf("header = %+v, want protocol 0x20f and no ramdisk", h)
	}
	var diff []int
	for i := range out {
		if out[i] != orig[i] {
			diff = append(diff, i)
		}
	}
	for _, i := range diff {
		if i < hdrVidMode || i >= hdrCmdLinePtr+4 {
			t.Errorf("byte 0x%x changed outside the setup header fields", i)
		}
	}
	tests := []struct {
		name string
		k    QEMUKernel
		msg  string
	}{
		{"bad vga", QEMUKernel{Kernel: kern, Cmdline: "vga=big", Memory: 1 << 30}, "vga="},
		{"initrd too big", QEMUKernel{Kernel: kern, Initrd: make([]byte, 100<<20), Memory: 64 << 20}, "does not fit"},
		{"too short", QEMUKernel{Kernel: kern[:100], Memory: 1 << 30}, "too short"},
		{"tiny memory", QEMUKernel{Kernel: kern, Memory: 0x1000}, "ACPI"},
	}
	for _, tc := range tests {
		if _, _, err := PatchKernel(tc.k); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: PatchKernel error = %v, want one mentioning %q", tc.name, err, tc.msg)
		}
	}
	if mode, ok, _ := vgaMode("quiet vga=normal"); !ok || mode != 0xffff {
		t.Errorf("vga=normal = 0x%x, %v", mode, ok)
	}
}

func TestACPIBlobOrder(t *testing.T) {
	a := syntheticACPI()
	got, err := acpiBlobOrder(a.TableLoader)
	if err != nil || strings.Join(got, ",") != "etc/acpi/tables,etc/acpi/rsdp" {
		t.Errorf("acpiBlobOrder = %v, %v; want tables then rsdp", got, err)
	}
	evs, err := acpiEvents(a)
	if err != nil || len(evs) != 3 || evs[0].Digest != sha384(a.TableLoader) || evs[1].Digest != sha384(a.Tables) || evs[2].Digest != sha384(a.RSDP) {
		t.Errorf("acpiEvents = %d events, %v; want table-loader, tables, rsdp", len(evs), err)
	}
	for name, loader := range map[string][]byte{
		"empty":         nil,
		"ragged":        make([]byte, 100),
		"no allocation": make([]byte, 128),
	} {
		if _, err := acpiBlobOrder(loader); err == nil {
			t.Errorf("acpiBlobOrder(%s) succeeded", name)
		}
	}
	b := *a
	b.RSDP = nil
	if _, err := acpiEvents(&b); err == nil || !strings.Contains(err.Error(), "etc/acpi/rsdp") {
		t.Errorf("acpiEvents without rsdp = %v, want an error naming it", err)
	}
}

func TestReportJSON(t *testing.T) {
	fw := testenv.ReadVector(t, "inputs/debian12_OVMF.fd")
	res, err := Measure(fw, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(res.Report())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"rtmr0", "rtmr1", "rtmr2"} {
		if _, ok := m[k]; ok {
			t.Errorf("%s present without the inputs it needs", k)
		}
	}
	if m["rtmr3"] != strings.Repeat("0", 96) || m["mrtd"] != res.MRTD.String() {
		t.Errorf("rtmr3 = %v, mrtd = %v", m["rtmr3"], m["mrtd"])
	}
	v := m["variant"].(map[string]any)
	for k, want := range map[string]any{"page_order": "single-pass", "qemu_version": "10.2", "tdvf_separator": "current", "memory_bytes": float64(2 << 30)} {
		if v[k] != want {
			t.Errorf("variant.%s = %v, want %v", k, v[k], want)
		}
	}
	ev := m["events"].([]any)[0].(map[string]any)
	if ev["mr_index"] != float64(1) || ev["type"] != "EV_EFI_HANDOFF_TABLES2" || len(ev["digest"].(string)) != 96 {
		t.Errorf("first event = %v", ev)
	}
}

func TestDefaultBoot0000(t *testing.T) {
	b := DefaultBoot0000()
	if got := loadOptionDescription(b); got != "UiApp" {
		t.Errorf("description = %q, want UiApp", got)
	}
	if attrs := binary.LittleEndian.Uint32(b); attrs != 0x109 {
		t.Errorf("attributes = 0x%x, want 0x109 (active, hidden, app)", attrs)
	}
	if fpl := binary.LittleEndian.Uint16(b[4:]); int(fpl) != len(b)-6-12 {
		t.Errorf("FilePathListLength = %d, want %d", fpl, len(b)-18)
	}
}

func TestLegacySeparatorWithoutKernel(t *testing.T) {
	fw := testenv.ReadVector(t, "inputs/debian12_OVMF.fd")
	cur, err := Measure(fw, Options{ACPI: syntheticACPI()})
	if err != nil {
		t.Fatal(err)
	}
	leg, err := Measure(fw, Options{ACPI: syntheticACPI(), Separator: SeparatorLegacy})
	if err != nil {
		t.Fatal(err)
	}
	if len(leg.Events) != len(cur.Events)+1 || leg.RTMR[0].Value == cur.RTMR[0].Value {
		t.Errorf("legacy TDVF adds one RTMR0 separator: got %d vs %d events", len(leg.Events), len(cur.Events))
	}
	want := Replay(func() []Digest {
		var ds []Digest
		for _, e := range cur.Events {
			ds = append(ds, e.Digest)
		}
		return append(ds, sha384([]byte{0, 0, 0, 0}))
	}()...)
	if leg.RTMR[0].Value != want {
		t.Errorf("legacy RTMR0 = %s, want current RTMR0 events + separator = %s", leg.RTMR[0].Value, want)
	}
}
