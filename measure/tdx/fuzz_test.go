package tdx

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// FuzzParseMetadata checks that the TDVF metadata parser, MRTD and the TD HOB
// builder never panic on any image, and that accepted metadata is
// self-consistent. Seeds are built from the tail of the real Debian 12
// OVMF.fd (footer table and TDVF descriptor): as is, and with its sections
// rescaled to fit a small image.
func FuzzParseMetadata(f *testing.F) {
	for _, s := range metadataSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, img []byte) {
		md, err := ParseMetadata(img)
		if err != nil {
			return
		}
		for i, s := range md.Sections {
			if s.MemoryAddress%PageSize != 0 || s.MemoryDataSize%PageSize != 0 || uint64(s.RawDataSize) > s.MemoryDataSize ||
				uint64(s.DataOffset)+uint64(s.RawDataSize) > uint64(len(img)) {
				t.Fatalf("accepted inconsistent section %d: %+v", i, s)
			}
		}
		for _, order := range []PageOrder{PageOrderSinglePass, PageOrderTwoPass} {
			_, _ = MRTD(img, md, order)
		}
		if ram, err := RAMLayout(md, 1<<30); err == nil {
			_, _, _ = TDHOB(md, ram)
		}
		_, _ = Measure(img, Options{})
	})
}

// vectorsDirOrDefault finds the vectors for seeds without skipping or
// failing: fuzz seeds are optional.
func vectorsDirOrDefault() string {
	if d := os.Getenv(testenv.VectorsEnv); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "shared", "vectors")
}

func metadataSeeds() [][]byte {
	fw, err := os.ReadFile(filepath.Join(vectorsDirOrDefault(), "inputs", "debian12_OVMF.fd"))
	if err != nil || len(fw) < 8192 {
		return nil
	}
	const tail = 4096
	raw := append([]byte(nil), fw[len(fw)-tail:]...)
	seeds := [][]byte{raw}

	// A small image: 3 pages of firmware volume data, then the real tail,
	// with the real section table rewritten to fit.
	img := make([]byte, 3*PageSize, 3*PageSize+tail)
	for i := range img {
		img[i] = byte(i * 7)
	}
	img = append(img, raw...)
	md, err := ParseMetadata(fw)
	if err != nil {
		return seeds
	}
	off := len(img) - (len(fw) - md.Offset)
	for i, s := range md.Sections {
		e := img[off+descriptorSize+sectionSize*i:]
		switch s.Type {
		case SectionBFV:
			binary.LittleEndian.PutUint32(e[0:], 0)
			binary.LittleEndian.PutUint32(e[4:], 2*PageSize)
			binary.LittleEndian.PutUint64(e[16:], 2*PageSize)
		case SectionCFV:
			binary.LittleEndian.PutUint32(e[0:], 2*PageSize)
			binary.LittleEndian.PutUint32(e[4:], PageSize)
			binary.LittleEndian.PutUint64(e[16:], PageSize)
		}
	}
	return append(seeds, img)
}

func TestMetadataSeedsAreValid(t *testing.T) {
	testenv.Vectors(t) // fail in CI, skip locally, when the vectors are missing
	seeds := metadataSeeds()
	if len(seeds) != 2 {
		t.Fatalf("built %d seeds, want 2", len(seeds))
	}
	md, err := ParseMetadata(seeds[1])
	if err != nil {
		t.Fatalf("the rescaled seed does not parse: %v", err)
	}
	if _, err := MRTD(seeds[1], md, PageOrderSinglePass); err != nil {
		t.Errorf("MRTD of the rescaled seed: %v", err)
	}
	if _, err := Measure(seeds[1], Options{}); err != nil {
		t.Errorf("Measure of the rescaled seed: %v", err)
	}
}
