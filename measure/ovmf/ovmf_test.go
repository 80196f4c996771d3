package ovmf

import (
	"errors"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

func TestGUIDRoundTrip(t *testing.T) {
	for _, s := range []string{
		"96b582de-1fb2-45f7-baea-a366c55a082d",
		"e47a6535-984a-4798-865e-4685a7bf8ec2",
	} {
		g, err := ParseGUID(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := g.String(); got != s {
			t.Errorf("ParseGUID(%q).String() = %q, want %q", s, got, s)
		}
	}
	if _, err := ParseGUID("96b582de1fb245f7baeaa366c55a082d"); err == nil {
		t.Error("ParseGUID accepted a GUID without dashes")
	}
	for _, s := range []string{
		"96b582de-1fb2-45f7-baea-a366c55a08zz",
		" 6b582de-1fb2-45f7-baea-a366c55a082d",
		"+6b582de-1fb2-45f7-baea-a366c55a082d",
		"96b582de-1fb2-45f7-baea-a366c55a082-",
	} {
		if g, err := ParseGUID(s); err == nil {
			t.Errorf("ParseGUID(%q) = %s, want an error (not hex)", s, g)
		}
	}
	upper, err := ParseGUID("96B582DE-1FB2-45F7-BAEA-A366C55A082D")
	if want := MustGUID("96b582de-1fb2-45f7-baea-a366c55a082d"); err != nil || upper != want {
		t.Errorf("ParseGUID(upper case) = %s, %v; want %s", upper, err, want)
	}
}

func TestFooterTableDebianOVMF(t *testing.T) {
	tests := []struct {
		file      string
		wantGUIDs []GUID
		noGUIDs   []GUID
	}{
		{"inputs/debian12_OVMF.fd", []GUID{SEVMetadataGUID, SEVESResetBlockGUID, SEVHashTableRVGUID, TDXMetadataGUID}, nil},
		{"inputs/debian12_OVMF_CODE_4M.fd", []GUID{SEVESResetBlockGUID}, []GUID{SEVMetadataGUID}},
		{"inputs/ovmf_AmdSev_suffix.bin", []GUID{SEVMetadataGUID, SEVHashTableRVGUID}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			ft, err := ParseFooterTable(testenv.ReadVector(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range tc.wantGUIDs {
				if _, ok := ft.Entry(g); !ok {
					t.Errorf("entry %s missing; have %v", g, ft.GUIDs())
				}
			}
			for _, g := range tc.noGUIDs {
				if _, ok := ft.Entry(g); ok {
					t.Errorf("entry %s present, want absent", g)
				}
			}
		})
	}
}

func TestFooterTableMissing(t *testing.T) {
	for _, n := range []int{0, 10, 4096} {
		if _, err := ParseFooterTable(make([]byte, n)); !errors.Is(err, ErrNoFooterTable) {
			t.Errorf("ParseFooterTable(%d zero bytes) error = %v, want ErrNoFooterTable", n, err)
		}
	}
}

func FuzzParseFooterTable(f *testing.F) {
	for _, file := range []string{"inputs/ovmf_AmdSev_suffix.bin", "inputs/ovmf_OvmfX64_suffix.bin", "inputs/gce_fake_UnsignedSnp.bin"} {
		if d := testenv.Vectors(f); d != "" {
			b := testenv.ReadVector(f, file)
			f.Add(b)
		}
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ft, err := ParseFooterTable(b)
		if err == nil {
			for _, g := range ft.GUIDs() {
				ft.Entry(g)
				ft.Uint32(g, 0)
			}
		}
	})
}
