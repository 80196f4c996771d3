package sev

import (
	"bytes"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// seedFirmware adds the real firmware images as seeds: the 4 KiB ones whole,
// the large ones as their last 4 KiB (all the footer table, SEV metadata and
// reset block live there; the metadata is 1324 bytes from the end).
func seedFirmware(f *testing.F) {
	f.Helper()
	for _, name := range []string{
		"ovmf_AmdSev_suffix.bin", "ovmf_OvmfX64_suffix.bin",
		"gce_fake_CleanExample_0x1000.bin", "gce_fake_UnsignedSnp.bin",
		"debian12_OVMF.fd", "debian12_OVMF_CODE.fd", "debian12_OVMF_CODE_4M.fd",
	} {
		b := testenv.ReadVector(f, "inputs/"+name)
		if len(b) > PageSize {
			b = b[len(b)-PageSize:]
		}
		f.Add(b)
	}
}

// maxFuzzMeasured bounds the metadata pages a fuzzed image may ask Measure
// to chain, so that an iteration stays fast (4 GiB of zero pages is valid).
// Run the targets with -parallel=1 -fuzzminimizetime=5s on a shared machine:
// the default minimization budget (60s per new input) stalls the fuzzer.
const maxFuzzMeasured = 1 << 20

func FuzzParseMetadata(f *testing.F) {
	seedFirmware(f)
	f.Fuzz(func(t *testing.T, image []byte) {
		sections, err := ParseMetadata(image)
		if err != nil {
			if sections != nil {
				t.Errorf("ParseMetadata returned sections %v with error %v", sections, err)
			}
			return
		}
		var total uint64
		for _, s := range sections {
			if !s.Type.known() || s.GPA%PageSize != 0 || s.Size%PageSize != 0 {
				t.Errorf("ParseMetadata accepted section %+v", s)
			}
			total += uint64(s.Size)
		}
		fw, err := ParseFirmware(image)
		if err != nil {
			t.Fatalf("ParseMetadata succeeded but ParseFirmware failed: %v", err)
		}
		if !fw.HasMetadata || len(fw.Sections) != len(sections) {
			t.Errorf("ParseFirmware sections %v, ParseMetadata %v", fw.Sections, sections)
		}
		if total > maxFuzzMeasured || len(image)%PageSize != 0 {
			return
		}
		// The whole SNP flow must not panic on what the parser accepts; the
		// input picks the VMM so that one iteration measures once.
		vmm := []VMM{VMMQEMU, VMMEC2, VMMGCE}[int(image[len(image)-1])%3]
		r, err := Measure(Params{Mode: ModeSNP, VMM: vmm, Firmware: image, VCPUs: 2, VCPUType: "EPYC-v4", GuestFeatures: 1,
			DirectBoot: &DirectBoot{Kernel: []byte("k")}})
		if err == nil && len(r.Digest) != DigestSize {
			t.Errorf("digest is %d bytes", len(r.Digest))
		}
	})
}

func FuzzParseResetBlock(f *testing.F) {
	seedFirmware(f)
	f.Fuzz(func(t *testing.T, image []byte) {
		eip, err := ParseResetBlock(image)
		if err != nil {
			if eip != 0 {
				t.Errorf("ParseResetBlock returned %#x with error %v", eip, err)
			}
			return
		}
		if fw, err := ParseFirmware(image); err == nil && (!fw.HasResetBlock || fw.ResetEIP != eip) {
			t.Errorf("ParseFirmware reset EIP %#x (present %v), ParseResetBlock %#x", fw.ResetEIP, fw.HasResetBlock, eip)
		}
		r, err := Measure(Params{Mode: ModeSEVES, Firmware: image, VCPUs: 3, VCPUSig: u32(0x800f12), DumpVMSA: true})
		if err != nil {
			// SEV-ES needs nothing but a parseable firmware and a nonzero AP reset address.
			if _, ferr := ParseFirmware(image); ferr == nil && eip != 0 {
				t.Errorf("SEV-ES measure failed on a firmware with reset EIP %#x: %v", eip, err)
			}
			return
		}
		if len(r.VMSAs) != 3 || !bytes.Equal(r.VMSAs[1], r.VMSAs[2]) {
			t.Errorf("got %d VMSAs, want 3 with identical APs", len(r.VMSAs))
		}
	})
}

func FuzzParseHashTableArea(f *testing.F) {
	seedFirmware(f)
	f.Fuzz(func(t *testing.T, image []byte) {
		area, err := ParseHashTableArea(image)
		if err != nil {
			if area != (Area{}) {
				t.Errorf("ParseHashTableArea returned %+v with error %v", area, err)
			}
			return
		}
		fw, err := ParseFirmware(image)
		if err != nil {
			return // the metadata may be corrupt while the hashes entry is fine
		}
		if !fw.HasHashTable || fw.HashTable != area {
			t.Errorf("ParseFirmware hash table %+v (present %v), ParseHashTableArea %+v", fw.HashTable, fw.HasHashTable, area)
		}
		_, err = Measure(Params{Mode: ModeSEV, Firmware: image, DirectBoot: &DirectBoot{Kernel: []byte("k")}})
		if ok := area.GPA != 0 && area.Size >= PaddedHashTableSize; ok != (err == nil) {
			t.Errorf("SEV direct boot with hash table %+v: error %v", area, err)
		}
	})
}

func FuzzParseHashTable(f *testing.F) {
	for _, in := range []struct {
		kernel, initrd []byte
		cmdline        string
	}{
		{testenv.ReadVector(f, "inputs/tiny-kernel.bin"), testenv.ReadVector(f, "inputs/tiny-initrd.cpio"), "console=ttyS0 loglevel=7"},
		{nil, nil, ""},
	} {
		ht, err := NewHashTable(in.kernel, in.initrd, in.cmdline)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(ht.Bytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ht, err := ParseHashTable(b)
		if err != nil {
			return
		}
		again, err := ParseHashTable(ht.Bytes())
		if err != nil || again != ht {
			t.Errorf("re-encoding %+v parses to %+v, %v", ht, again, err)
		}
	})
}
