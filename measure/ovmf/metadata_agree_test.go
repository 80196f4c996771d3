package ovmf_test

import (
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/measure/ovmf"
	"github.com/cocobuild/cocobuild/measure/sev"
	"github.com/cocobuild/cocobuild/measure/tdx"
)

// TestMetadataAgreesWithModels: Inspect and the TEE models read the SEV and
// TDX metadata with the one reader of this package (ReadSEVMetadata,
// ReadTDXMetadata) and each name and check the sections their own way; for
// every firmware of the vectors they must report the same sections, GPAs,
// sizes and types.
func TestMetadataAgreesWithModels(t *testing.T) {
	for _, f := range []string{"debian12_OVMF.fd", "debian12_OVMF_CODE.fd", "debian12_OVMF_CODE_4M.fd",
		"debian-sid_OVMF.amdsev.fd", "debian-sid_OVMF.inteltdx.ms.fd", "debian-sid_OVMF.fd"} {
		fw := testenv.ReadVector(t, "inputs/"+f)
		info, err := ovmf.Inspect(fw)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		secs, err := sev.ParseMetadata(fw)
		switch {
		case err != nil && info.SEVSections != nil:
			t.Errorf("%s: sev.ParseMetadata: %v, but Inspect read %d SEV sections", f, err, len(info.SEVSections))
		case err == nil && len(secs) != len(info.SEVSections):
			t.Errorf("%s: %d SEV sections, Inspect read %d", f, len(secs), len(info.SEVSections))
		case err == nil:
			for i, s := range secs {
				got := info.SEVSections[i]
				if got.GPA != s.GPA || got.Size != s.Size || got.Type != s.Type.String() {
					t.Errorf("%s: SEV section %d: Inspect %+v, sev %+v", f, i, got, s)
				}
			}
		}
		// The TDX model also refuses metadata it cannot load (a CODE-only
		// image whose sections point past its end); Inspect reports what
		// the image declares. They must agree where both read it.
		md, err := tdx.ParseMetadata(fw)
		if err != nil {
			t.Logf("%s: tdx.ParseMetadata: %v (Inspect: %v)", f, err, info.TDX != nil)
			continue
		}
		if info.TDX == nil || len(info.TDX.Sections) != len(md.Sections) {
			t.Fatalf("%s: tdx has %d sections, Inspect %+v", f, len(md.Sections), info.TDX)
		}
		for i, s := range md.Sections {
			got := info.TDX.Sections[i]
			if got.GPA != s.MemoryAddress || got.MemorySize != s.MemoryDataSize || got.DataOffset != s.DataOffset ||
				got.RawDataSize != s.RawDataSize || got.Type != s.Type.String() || got.Attributes != uint32(s.Attributes) {
				t.Errorf("%s: TDX section %d: Inspect %+v, tdx %+v", f, i, got, s)
			}
		}
	}
}
