package tdx

import (
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

func TestMRTDVectors(t *testing.T) {
	for _, v := range vectorsOfKind(t, "MRTD") {
		t.Run(v.ID, func(t *testing.T) {
			fw := testenv.ReadVector(t, v.Inputs[0].Path)
			md, err := ParseMetadata(fw)
			if err != nil {
				t.Fatalf("ParseMetadata: %v", err)
			}
			var wantSecs []Section
			decode(t, v.Params, "tdvf_sections", &wantSecs)
			if len(md.Sections) != len(wantSecs) {
				t.Fatalf("got %d sections, want %d", len(md.Sections), len(wantSecs))
			}
			for i := range wantSecs {
				if md.Sections[i] != wantSecs[i] {
					t.Errorf("section %d = %+v, want %+v", i, md.Sections[i], wantSecs[i])
				}
			}
			order := PageOrderSinglePass
			if strings.Contains(v.ID, "two-pass") {
				order = PageOrderTwoPass
			}
			got, err := MRTD(fw, md, order)
			if err != nil {
				t.Fatalf("MRTD: %v", err)
			}
			if want := str(t, v.Expected, "mrtd"); got.String() != want {
				t.Errorf("MRTD(%s) = %s, want %s", order, got, want)
			}
		})
	}
}

func BenchmarkMRTD(b *testing.B) {
	fw := testenv.ReadVector(b, "inputs/debian12_OVMF.fd")
	md, err := ParseMetadata(fw)
	if err != nil {
		b.Fatalf("ParseMetadata: %v", err)
	}
	for _, order := range []PageOrder{PageOrderSinglePass, PageOrderTwoPass} {
		b.Run(string(order), func(b *testing.B) {
			b.SetBytes(int64(len(fw)))
			for b.Loop() {
				if _, err := MRTD(fw, md, order); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
