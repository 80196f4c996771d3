package sev

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/measure/ovmf"
)

func u32(v uint32) *uint32 { return &v }

func TestMeasureErrors(t *testing.T) {
	debian := testenv.ReadVector(t, "inputs/debian12_OVMF.fd")
	code4M := testenv.ReadVector(t, "inputs/debian12_OVMF_CODE_4M.fd")
	amdsev := testenv.ReadVector(t, "inputs/ovmf_AmdSev_suffix.bin")
	x64 := testenv.ReadVector(t, "inputs/ovmf_OvmfX64_suffix.bin")
	kernel := &DirectBoot{Kernel: []byte("kernel")}
	snp := func(fw []byte) Params {
		return Params{Mode: ModeSNP, Firmware: fw, VCPUs: 1, VCPUType: "EPYC-v4", GuestFeatures: 1}
	}
	tests := []struct {
		name    string
		p       Params
		wantIs  error    // if set, errors.Is must hold
		wantSub []string // substrings the message must contain
	}{
		{"mode not set", Params{Firmware: amdsev}, nil, []string{"mode"}},
		{"empty firmware", Params{Mode: ModeSEV}, nil, []string{"empty"}},
		{"snp without metadata", snp(code4M), ErrNoMetadata, []string{"SEV metadata"}},
		{"snp kernel, hashes GPA 0", func() Params { p := snp(debian); p.DirectBoot = kernel; return p }(), nil, []string{"GPA 0"}},
		{"snp kernel, x64 OVMF", func() Params { p := snp(x64); p.DirectBoot = kernel; return p }(), nil, []string{"GPA 0"}},
		{"snp kernel, no SNP_KERNEL_HASHES", func() Params {
			p := snp(withMetadata(t, func(m []byte) { binary.LittleEndian.PutUint32(m[16+5*12+8:], uint32(SectionSNPSecMem)) }))
			p.DirectBoot = kernel
			return p
		}(), nil, []string{"no SNP_KERNEL_HASHES section"}},
		{"seves kernel, hashes GPA 0", Params{Mode: ModeSEVES, Firmware: debian, VCPUs: 1, VCPUType: "EPYC-v4", DirectBoot: kernel}, nil, []string{"GPA 0"}},
		{"sev kernel, hashes GPA 0", Params{Mode: ModeSEV, Firmware: debian, DirectBoot: kernel}, nil, []string{"GPA 0"}},
		{"sev kernel, no footer table", Params{Mode: ModeSEV, Firmware: make([]byte, PageSize), DirectBoot: kernel, AnyFirmware: true}, ErrNoHashTable, nil},
		{"sev, one random byte", Params{Mode: ModeSEV, Firmware: []byte{0x5a}}, ovmf.ErrNotFirmware, []string{"sev mode", "not a UEFI firmware image"}},
		{"sev, a kernel as firmware", Params{Mode: ModeSEV, Firmware: testenv.ReadVector(t, "inputs/tiny-kernel.bin")}, ovmf.ErrNotFirmware, nil},
		{"seves, a page of zeros", Params{Mode: ModeSEVES, Firmware: make([]byte, PageSize), VCPUs: 1, VCPUType: "EPYC-v4", AnyFirmware: true}, ErrNoResetBlock, nil},
		{"snp, a page of zeros", snp(make([]byte, PageSize)), ovmf.ErrNotFirmware, []string{"snp mode"}},
		{"unknown CPU type", func() Params { p := snp(debian); p.VCPUType = "EPYC-Foo"; return p }(), nil, []string{"EPYC-Foo", "EPYC-Milan", "EPYC-Turin"}},
		{"QEMU without CPU", func() Params { p := snp(debian); p.VCPUType = ""; return p }(), nil, []string{"vCPU type", "EPYC-Genoa"}},
		{"FMS out of range", func() Params { p := snp(debian); p.VCPUFMS = &FMS{25, 256, 0}; return p }(), nil, []string{"model 256"}},
		{"no vCPUs", func() Params { p := snp(debian); p.VCPUs = 0; return p }(), nil, []string{"0 vCPUs"}},
		{"SNP without SNPActive", func() Params { p := snp(debian); p.GuestFeatures = 0x20; return p }(), nil, []string{"SNPActive"}},
		{"short firmware hash", func() Params { p := snp(debian); p.SNPFirmwareHash = make([]byte, 32); return p }(), nil, []string{"32 bytes"}},
		{"firmware hash outside SNP", Params{Mode: ModeSEVES, Firmware: debian, VCPUs: 1, VCPUType: "EPYC-v4", SNPFirmwareHash: make([]byte, 48)}, nil, []string{"snp mode"}},
		{"dump VMSA in SEV", Params{Mode: ModeSEV, Firmware: debian, DumpVMSA: true}, nil, []string{"no VMSAs"}},
		{"NUL in cmdline", func() Params {
			p := snp(amdsev)
			p.DirectBoot = &DirectBoot{Kernel: []byte("k"), Cmdline: "a\x00b"}
			return p
		}(), nil, []string{"NUL"}},
		{"unknown VMM", func() Params { p := snp(debian); p.VMM = 9; return p }(), nil, []string{"unknown VMM"}},
		{"unaligned VMSA GPA", func() Params { p := snp(debian); gpa := uint64(0x1234); p.VMSAGPA = &gpa; return p }(), nil, []string{"page aligned"}},
		{"SNP firmware not whole pages", snp(append(make([]byte, 100), amdsev...)), nil, []string{"whole 4 KiB pages"}},
	}
	// Errors about the firmware (or its fit with the kernel); all others are ParamErrors.
	firmwareErrors := map[string]bool{
		"empty firmware": true, "snp without metadata": true, "snp kernel, hashes GPA 0": true,
		"snp kernel, x64 OVMF": true, "snp kernel, no SNP_KERNEL_HASHES": true, "seves kernel, hashes GPA 0": true,
		"sev kernel, hashes GPA 0": true, "sev kernel, no footer table": true, "sev, one random byte": true,
		"sev, a kernel as firmware": true, "seves, a page of zeros": true, "snp, a page of zeros": true, "SNP firmware not whole pages": true,
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Measure(tc.p)
			if err == nil {
				t.Fatalf("Measure succeeded with digest %x, want an error", r.Digest)
			}
			var pe *ParamError
			if got, want := errors.As(err, &pe), !firmwareErrors[tc.name]; got != want {
				t.Errorf("error %q: ParamError = %v, want %v", err, got, want)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %q is not %q", err, tc.wantIs)
			}
			for _, s := range tc.wantSub {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestCoverageAndNotes(t *testing.T) {
	amdsev := testenv.ReadVector(t, "inputs/ovmf_AmdSev_suffix.bin")
	tests := []struct {
		name      string
		p         Params
		want      Coverage
		wantNotes []string
	}{
		{"snp no kernel", Params{Mode: ModeSNP, Firmware: amdsev, VCPUs: 1, VCPUType: "EPYC-v4", GuestFeatures: 1},
			Coverage{Firmware: true}, []string{"covers no kernel", "SNP_KERNEL_HASHES"}},
		{"snp kernel", Params{Mode: ModeSNP, Firmware: amdsev, VCPUs: 1, VCPUType: "EPYC-v4", GuestFeatures: 1, DirectBoot: &DirectBoot{}},
			Coverage{Firmware: true, Kernel: true, Initrd: true, Cmdline: true}, nil},
		{"snp firmware hash", Params{Mode: ModeSNP, Firmware: amdsev, VCPUs: 1, VCPUType: "EPYC-v4", GuestFeatures: 1, SNPFirmwareHash: make([]byte, 48), DirectBoot: &DirectBoot{}},
			Coverage{Kernel: true, Initrd: true, Cmdline: true}, []string{"precomputed"}},
		{"ec2 ignores CPU", Params{Mode: ModeSNP, VMM: VMMEC2, Firmware: amdsev, VCPUs: 1, VCPUType: "EPYC-v4", GuestFeatures: 1, DirectBoot: &DirectBoot{}},
			Coverage{Firmware: true, Kernel: true, Initrd: true, Cmdline: true}, []string{"EPYC-v4 ignored"}},
		{"QEMU ignores the legacy EC2 VMSA", Params{Mode: ModeSNP, Firmware: amdsev, VCPUs: 1, VCPUType: "EPYC-v4", GuestFeatures: 1, EC2LegacyRDX: true, DirectBoot: &DirectBoot{}},
			Coverage{Firmware: true, Kernel: true, Initrd: true, Cmdline: true}, []string{"legacy EC2 VMSA option does not apply to QEMU"}},
		{"seves ignores guest features", Params{Mode: ModeSEVES, Firmware: amdsev, VCPUs: 1, VCPUSig: u32(0), GuestFeatures: 0x21, DirectBoot: &DirectBoot{}},
			Coverage{Firmware: true, Kernel: true, Initrd: true, Cmdline: true}, []string{"ignored in SEV-ES"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Measure(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if r.Covers != tc.want {
				t.Errorf("Covers = %+v, want %+v", r.Covers, tc.want)
			}
			notes := strings.Join(r.Notes, "\n")
			for _, s := range tc.wantNotes {
				if !strings.Contains(notes, s) {
					t.Errorf("notes %q do not mention %q", notes, s)
				}
			}
			if tc.wantNotes == nil && len(r.Notes) != 0 {
				t.Errorf("notes = %q, want none", r.Notes)
			}
			if r.Variant == "" {
				t.Error("Variant is empty")
			}
		})
	}
}

// TestDumpVMSA compares the VMSA pages with those sev-snp-measure 0.0.13
// writes with --dump-vmsa (debian12_OVMF.fd, 2 vCPUs, EPYC-Milan, 0x21).
func TestDumpVMSA(t *testing.T) {
	debian := testenv.ReadVector(t, "inputs/debian12_OVMF.fd")
	tests := []struct {
		mode Mode
		vmm  VMM
		want [2]string // sha256 of vmsa0.bin, vmsa1.bin
	}{
		{ModeSNP, VMMQEMU, [2]string{"75fa05347e9be43f9d500bdefb65686ab0464eb7771daaaad91f807cb46b99a8", "7cf249d321e4b7a57528abb273a3a25838422df02e436e00a601a4c48017a35d"}},
		{ModeSNP, VMMEC2, [2]string{"bafab7d7eb960e5f43d197aeb539175b92652d4a458958626394766bb623faf4", "8ac504f16bf2e9e03a2b9832c84dd448e732366ade256dd14c576b1d38c0ea1e"}},
		{ModeSNP, VMMGCE, [2]string{"7dd746565c4271b846f624e5b3fa81d1f8dd595f005b1fcb2f4d27dbca9d2a82", "5dd0e2a43a6aa500dabcc0c5a350c98353b7f7652e248f461975caaa22dd266f"}},
		{ModeSEVES, VMMQEMU, [2]string{"efcc96a66e22e3d25161643c1331c59ef2b11d0ac63369c49c0cf2133c0b58db", "a14b28cfdc8d4d0e2884708ff279ca1204b7e45d45970c38c32fcd3374ba9f4f"}},
	}
	for _, tc := range tests {
		t.Run(tc.mode.String()+"-"+tc.vmm.String(), func(t *testing.T) {
			r, err := Measure(Params{Mode: tc.mode, VMM: tc.vmm, Firmware: debian, VCPUs: 2, VCPUType: "EPYC-Milan", GuestFeatures: 0x21, DumpVMSA: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.VMSAs) != 2 {
				t.Fatalf("got %d VMSAs, want 2", len(r.VMSAs))
			}
			for i, v := range r.VMSAs {
				if got := sha256.Sum256(v); hex.EncodeToString(got[:]) != tc.want[i] {
					t.Errorf("sha256(vmsa%d) = %x, want %s", i, got, tc.want[i])
				}
			}
		})
	}
}

func TestCPUTypes(t *testing.T) {
	tests := []struct {
		name string
		want uint32
	}{
		{"EPYC-v4", 0x800f12},
		{"EPYC-Rome", 0x830f10},
		{"EPYC-Milan", 0xa00f11},
		{"EPYC-Genoa", 0xa10f10},
		{"EPYC-Turin", 0xb00f00},
	}
	for _, tc := range tests {
		got, err := CPUSignature(tc.name)
		if err != nil || got != tc.want {
			t.Errorf("CPUSignature(%q) = %#x, %v; want %#x", tc.name, got, err, tc.want)
		}
	}
	if n := len(CPUTypes()); n != 16 {
		t.Errorf("CPUTypes() has %d names, want sev-snp-measure's 16", n)
	}
	if _, err := CPUSignature("epyc-v4"); err == nil {
		t.Error("CPUSignature accepted a misspelt (lower-case) QEMU model")
	}
}

func TestParseModeVMM(t *testing.T) {
	for s, want := range map[string]Mode{"sev": ModeSEV, "SEV-ES": ModeSEVES, "seves": ModeSEVES, "SNP": ModeSNP, "sev-snp": ModeSNP} {
		if got, err := ParseMode(s); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for s, want := range map[string]VMM{"QEMU": VMMQEMU, "qemu": VMMQEMU, "EC2": VMMEC2, "ec2": VMMEC2, "GCE": VMMGCE} {
		if got, err := ParseVMM(s); err != nil || got != want {
			t.Errorf("ParseVMM(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	if _, err := ParseMode("snp:svsm"); err == nil {
		t.Error("ParseMode accepted snp:svsm, which is not modelled")
	}
	if _, err := ParseVMM("azure"); err == nil || !strings.Contains(err.Error(), "QEMU, ec2, gce") {
		t.Errorf("ParseVMM(azure) error = %v, want one listing the VMMs", err)
	}
}

func TestParseFirmware(t *testing.T) {
	tests := []struct {
		file         string
		wantSections int
		wantEIP      uint32
		wantHashes   Area
		wantHT       bool
	}{
		{"inputs/debian12_OVMF.fd", 5, 0x80b004, Area{}, true},
		{"inputs/debian12_OVMF_CODE_4M.fd", 0, 0x808004, Area{}, true},
		{"inputs/ovmf_AmdSev_suffix.bin", 7, 0x80b004, Area{GPA: 0x810c00, Size: 0x400}, true},
		{"inputs/gce_fake_UnsignedSnp.bin", 3, 0xff0000ff, Area{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			fw, err := ParseFirmware(testenv.ReadVector(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(fw.Sections) != tc.wantSections || fw.HasMetadata != (tc.wantSections > 0) {
				t.Errorf("sections = %v (metadata %v), want %d", fw.Sections, fw.HasMetadata, tc.wantSections)
			}
			if !fw.HasResetBlock || fw.ResetEIP != tc.wantEIP {
				t.Errorf("reset EIP = %#x (present %v), want %#x", fw.ResetEIP, fw.HasResetBlock, tc.wantEIP)
			}
			if fw.HasHashTable != tc.wantHT || fw.HashTable != tc.wantHashes {
				t.Errorf("hash table = %+v (present %v), want %+v (present %v)", fw.HashTable, fw.HasHashTable, tc.wantHashes, tc.wantHT)
			}
		})
	}
}

// withMetadata returns a copy of the AmdSev suffix whose SEV metadata
// header or first section is changed by edit.
func withMetadata(t *testing.T, edit func(meta []byte)) []byte {
	t.Helper()
	img := bytes.Clone(testenv.ReadVector(t, "inputs/ovmf_AmdSev_suffix.bin"))
	ft, err := ovmf.ParseFooterTable(img)
	if err != nil {
		t.Fatal(err)
	}
	off, _ := ft.Uint32(ovmf.SEVMetadataGUID, 0)
	edit(img[len(img)-int(off):])
	return img
}

func TestParseMetadataCorrupt(t *testing.T) {
	le := binary.LittleEndian
	tests := []struct {
		name string
		edit func(m []byte)
		want string
	}{
		{"signature", func(m []byte) { m[0] = 'X' }, "signature"},
		{"version", func(m []byte) { le.PutUint32(m[8:], 2) }, "version 2"},
		{"size too big", func(m []byte) { le.PutUint32(m[4:], 1<<20) }, "size"},
		{"too many sections", func(m []byte) { le.PutUint32(m[12:], 100) }, "100 sections"},
		{"unknown type", func(m []byte) { le.PutUint32(m[16+8:], 7) }, "unknown type 0x7"},
		{"unaligned", func(m []byte) { le.PutUint32(m[16:], 0x800010) }, "not page aligned"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseMetadata(withMetadata(t, tc.edit))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseMetadata error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestHashTableRoundTrip(t *testing.T) {
	ht, err := NewHashTable([]byte("kernel"), nil, "console=ttyS0")
	if err != nil {
		t.Fatal(err)
	}
	b := ht.Bytes()
	if len(b) != PaddedHashTableSize || PaddedHashTableSize != 176 {
		t.Fatalf("table is %d bytes (padded size %d), want 176", len(b), PaddedHashTableSize)
	}
	if want := sha256.Sum256([]byte("console=ttyS0\x00")); ht.Cmdline != want {
		t.Errorf("cmdline hash = %x, want sha256 of the cmdline and its NUL %x", ht.Cmdline, want)
	}
	if want := sha256.Sum256(nil); ht.Initrd != want {
		t.Errorf("initrd hash = %x, want sha256 of nothing %x", ht.Initrd, want)
	}
	got, err := ParseHashTable(b)
	if err != nil {
		t.Fatal(err)
	}
	if got != ht {
		t.Errorf("ParseHashTable(Bytes()) = %+v, want %+v", got, ht)
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"bad GUID", append([]byte{1}, b[1:]...)},
		{"truncated", b[:100]},
		{"no kernel", func() []byte {
			c := bytes.Clone(b)
			binary.LittleEndian.PutUint16(c[16:], HashTableSize-hashEntrySize)
			return c
		}()},
	} {
		if _, err := ParseHashTable(tc.b); err == nil {
			t.Errorf("ParseHashTable(%s) succeeded, want an error", tc.name)
		}
	}
}

// TestUnknownCPUType: an unknown name is an *UnknownCPUTypeError that
// suggests the known type it is likely a typo of, and lists the known types
// without offering anything else.
func TestUnknownCPUType(t *testing.T) {
	tests := []struct{ name, suggestion string }{
		{"epyc-v4", "EPYC-v4"},
		{"EPYC-Genao", "EPYC-Genoa"},
		{"EPYC-Milan-v9", "EPYC-Milan-v1"},
		{"epyc-turin", "EPYC-Turin"},
		{"Zen9", ""},
		{"", ""},
	}
	for _, tc := range tests {
		_, err := CPUSignature(tc.name)
		var u *UnknownCPUTypeError
		if !errors.As(err, &u) {
			t.Errorf("CPUSignature(%q): error %v, want an *UnknownCPUTypeError", tc.name, err)
			continue
		}
		if u.Name != tc.name || u.Suggestion != tc.suggestion {
			t.Errorf("CPUSignature(%q): name %q suggestion %q, want %q and %q", tc.name, u.Name, u.Suggestion, tc.name, tc.suggestion)
		}
		msg := err.Error()
		if !strings.HasSuffix(msg, "the known types are "+strings.Join(CPUTypes(), ", ")) {
			t.Errorf("CPUSignature(%q): %q does not end with the known types", tc.name, msg)
		}
		if strings.Contains(msg, "signature") || strings.Contains(msg, "family") {
			t.Errorf("CPUSignature(%q): %q offers what only some callers take", tc.name, msg)
		}
	}
}

// TestAnyFirmware: bytes that are no firmware image are measured in SEV
// mode only when asked, and then as what they are (SHA-256 of the bytes).
func TestAnyFirmware(t *testing.T) {
	one := []byte{0x5a}
	if _, err := Measure(Params{Mode: ModeSEV, Firmware: one}); !errors.Is(err, ovmf.ErrNotFirmware) {
		t.Fatalf("Measure(one byte) error = %v, want ErrNotFirmware", err)
	}
	r, err := Measure(Params{Mode: ModeSEV, Firmware: one, AnyFirmware: true})
	if err != nil {
		t.Fatalf("Measure(one byte, AnyFirmware): %v", err)
	}
	sum := sha256.Sum256(one)
	if got, want := hex.EncodeToString(r.Digest), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("digest = %s, want %s (SHA-256 of the byte)", got, want)
	}
	// A recognized firmware measures the same with and without the flag.
	debian := testenv.ReadVector(t, "inputs/debian12_OVMF.fd")
	a, errA := Measure(Params{Mode: ModeSEV, Firmware: debian})
	b, errB := Measure(Params{Mode: ModeSEV, Firmware: debian, AnyFirmware: true})
	if errA != nil || errB != nil || !bytes.Equal(a.Digest, b.Digest) {
		t.Errorf("debian12 OVMF: %x (%v) without AnyFirmware, %x (%v) with it, want equal digests", a.Digest, errA, b.Digest, errB)
	}
}

// TestVMSAGPAZero: a VMSA GPA of 0 is used as given, not taken for the
// default, and the variant names the GPA used.
func TestVMSAGPAZero(t *testing.T) {
	debian := testenv.ReadVector(t, "inputs/debian12_OVMF.fd")
	measureAt := func(gpa *uint64) *Result {
		t.Helper()
		r, err := Measure(Params{Mode: ModeSNP, Firmware: debian, VCPUs: 1, VCPUType: "EPYC-v4", GuestFeatures: 1, VMSAGPA: gpa})
		if err != nil {
			t.Fatalf("Measure(VMSA GPA %v): %v", gpa, err)
		}
		return r
	}
	zero, def := uint64(0), uint64(DefaultVMSAGPA)
	atZero, atNil, atDefault := measureAt(&zero), measureAt(nil), measureAt(&def)
	if bytes.Equal(atZero.Digest, atNil.Digest) {
		t.Errorf("VMSA GPA 0 gives the default GPA's digest %x, want another", atZero.Digest)
	}
	if !bytes.Equal(atNil.Digest, atDefault.Digest) {
		t.Errorf("no VMSA GPA gives %x, %#x gives %x, want equal", atNil.Digest, def, atDefault.Digest)
	}
	for _, tc := range []struct {
		r    *Result
		want string
	}{{atZero, "VMSA GPA 0x0"}, {atNil, "VMSA GPA 0xfffffffff000"}} {
		if !strings.Contains(tc.r.Variant, tc.want) {
			t.Errorf("variant %q does not say %q", tc.r.Variant, tc.want)
		}
	}
	if atZero.VMSAGPA != 0 || atNil.VMSAGPA != DefaultVMSAGPA {
		t.Errorf("Result.VMSAGPA = %#x and %#x, want 0 and %#x", atZero.VMSAGPA, atNil.VMSAGPA, uint64(DefaultVMSAGPA))
	}
}
