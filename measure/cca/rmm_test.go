package cca

import (
	"bytes"
	"testing"
)

// TestRealmCreate checks the RIM of a bare RMI_REALM_CREATE (48-bit IPA,
// 2 breakpoints, 2 watchpoints, no SVE, no PMU) against the values that
// realm-measurements' own test (realm_config.rs, test_rim) asserts.
func TestRealmCreate(t *testing.T) {
	for _, tc := range []struct {
		hash Hash
		want []byte
	}{
		{SHA256, []byte{103, 57, 223, 178, 43, 117, 238, 18, 104, 208, 141, 250, 131, 105, 245,
			1, 188, 11, 6, 98, 67, 85, 63, 6, 159, 86, 13, 31, 161, 23, 41, 115}},
		{SHA512, []byte{121, 158, 67, 64, 72, 251, 87, 235, 157, 79, 14, 42, 43, 152, 21, 135,
			32, 55, 114, 82, 222, 171, 43, 223, 205, 105, 181, 168, 248, 34, 55, 244,
			52, 189, 107, 177, 199, 91, 241, 96, 162, 212, 147, 130, 247, 51, 179,
			67, 154, 63, 247, 105, 228, 234, 93, 217, 166, 247, 34, 57, 212, 75, 187, 171}},
	} {
		ipa, bps, wps, sve, ctrs := 48, 2, 2, 0, 0
		h := tc.hash
		p, err := Host{IPABits: &ipa, NumBPs: &bps, NumWPs: &wps, SVEVL: &sve, PMUNumCtrs: &ctrs, Hash: &h}.realmParams()
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewRealm(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.RIM(); !bytes.Equal(got, tc.want) {
			t.Errorf("%s: RIM = %x, want %x", tc.hash, got, tc.want)
		}
	}
}

// TestBlockSizes checks the stage-2 block sizes and the choice of blocks
// against the values realm-measurements' tests (realm.rs,
// test_block_sizes) assert.
func TestBlockSizes(t *testing.T) {
	for _, tc := range []struct {
		ipa  int
		want uint64
	}{
		{52, 0x8040201000}, {49, 0x8040201000}, {48, 0x8040201000}, {44, 0x8040201000},
		{43, 0x0040201000}, {40, 0x0040201000}, {39, 0x0040201000}, {35, 0x0040201000},
		{34, 0x0000201000}, {31, 0x0000201000}, {30, 0x0000201000}, {26, 0x0000201000},
		{25, 0x0000001000}, {21, 0x0000001000},
	} {
		got, err := translationBlockSizes(tc.ipa)
		if err != nil || got != tc.want {
			t.Errorf("translationBlockSizes(%d) = %#x, %v; want %#x", tc.ipa, got, err, tc.want)
		}
	}
	for _, ipa := range []int{20, 53, 0} {
		if _, err := translationBlockSizes(ipa); err == nil {
			t.Errorf("translationBlockSizes(%d): no error, want one (IPA widths are 21-52)", ipa)
		}
	}
	for _, tc := range []struct{ start, top, sizes, want uint64 }{
		{0, 0x1000, 0x40201000, 0x1000},
		{0x1000, 0x2000, 0x1000, 0x1000},
		{0, 0x40000000, 0x40201000, 0x40000000},
		{0x40000000, 0x80000000, 0x40201000, 0x40000000},
		{0x40000000, 0x80000000, 0x201000, 0x200000},
		{0x1_00000000, 0x1_40000000, 0x40201000, 0x40000000},
		{0x10_00000000, 0x11_00000000, 0x40201000, 0x40000000},
		{0x80000000, 0x80200000, 0x40201000, 0x200000},
		{0x80001000, 0x80200000, 0x40201000, 0x1000},
		{0x6200000, 0x70000000, 0x40201000, 0x200000},
		{0x6300000, 0x70000000, 0x40201000, 0x1000},
		{0x6400000, 0x70000000, 0x40201000, 0x200000},
		{0x400000, 0x800000, 0x40201000, 0x200000},
		{0x400000, 0x500000, 0x40201000, 0x1000},
	} {
		got, err := findBlockSize(tc.start, tc.top, tc.sizes)
		if err != nil || got != tc.want {
			t.Errorf("findBlockSize(%#x, %#x, %#x) = %#x, %v; want %#x", tc.start, tc.top, tc.sizes, got, err, tc.want)
		}
	}
}

// TestDataCreateAlignment checks that data loaded at an unaligned address
// is measured as the granules it lands in: the same RIM as the data
// written at its offset in zeroed granules loaded at the aligned address.
func TestDataCreateAlignment(t *testing.T) {
	p := RealmParams{S2SZ: 40, NumBPs: 1, NumWPs: 1}
	data := bytes.Repeat([]byte("cca"), 3000) // 9000 bytes
	a, _ := NewRealm(p)
	if n := a.DataCreate(0x80000ffc, data); n != 4 {
		t.Errorf("DataCreate of %d bytes at 0x...ffc: %d granules, want 4", len(data), n)
	}
	padded := make([]byte, 4*Granule)
	copy(padded[0xffc:], data)
	b, _ := NewRealm(p)
	b.DataCreate(0x80000000, padded)
	if !bytes.Equal(a.RIM(), b.RIM()) {
		t.Errorf("unaligned RIM %x, aligned and padded %x: want equal", a.RIM(), b.RIM())
	}
}
