package se

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSecureGuestHeader parses the SE header of s390-tools' Rust pv tests
// (rust/pv/tests/assets/exp/secure_guest.hdr): PLD, ALD, TLD and tag must
// be the expected values of that crate's rust/pv/src/brcb.rs, EXP_HDR
// (s390-tools commit c66495888dc8), copied here as hex.
func TestSecureGuestHeader(t *testing.T) {
	want := map[string]string{
		"pld": "be94b5eab3c1b118c757d7db7ea0f65d9b64823a8dc55bf8a8725b58072d9d4258c53e8a5da82dfb2192d91d07bc1c39b95d6321d3ba16a751a6e3e32f3e0161",
		"ald": "2858c3368b2a0af0c5ea0fde7905eb15af9cd1dd737165933cdaa2b850b6a8e2f0f42c7b36dd5381096288dc092daa8a6facec2534137bc94ca80bda4fcb9328",
		"tld": "4860ebcf7b9d24eb909a795356ad32c936b62165988a9ffcd66170dbc590c23010d7952fa882d1bb79558f9be0a549d8d7a94ae720e5c0760a825d479fe67af5",
		"tag": "92309d4589b9a85b427f8753171d1520",
	}
	b := testenv.ReadVector(t, "inputs/se/secure_guest.hdr")
	im, err := Parse(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	h := im.Header
	got := map[string]string{"pld": hex.EncodeToString(h.PLD[:]), "ald": hex.EncodeToString(h.ALD[:]),
		"tld": hex.EncodeToString(h.TLD[:]), "tag": hex.EncodeToString(h.Tag[:])}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("secure_guest.hdr (-EXP_HDR +got):\n%s", d)
	}
	if !im.Bare() || h.Version != Version1 || h.Size != 640 || len(h.KeySlots) == 0 {
		t.Errorf("bare %v, version %#x, size %d, %d key slots; want a bare version 0x100 header of 640 bytes with key slots", im.Bare(), h.Version, h.Size, len(h.KeySlots))
	}
	if _, err := im.Digests(context.Background(), bytes.NewReader(b)); err == nil || !strings.Contains(err.Error(), "bare SE header") {
		t.Errorf("Digests of a bare header: %v, want an error saying it is bare", err)
	}
	// As brcb.rs's from_se_image_img test places it: the header at
	// 0x12000 of an otherwise empty image is found by the page search,
	// but an image without an IPIB before it is refused.
	img := make([]byte, 0x13000)
	copy(img[0x12000:], b)
	if _, err := Parse(bytes.NewReader(img), int64(len(img))); err == nil || !strings.Contains(err.Error(), "IPIB") {
		t.Errorf("header at 0x12000 without an IPIB: %v, want an IPIB error", err)
	}
}

// TestImages recomputes PLD, ALD and TLD of the two images genprotimg
// (s390-tools v2.35.0) made of the same kernel, initrd and parmline with
// different random tweaks: the header genprotimg wrote is the oracle.
func TestImages(t *testing.T) {
	var tags []string
	for _, name := range []string{"se1.img", "se2.img"} {
		t.Run(name, func(t *testing.T) {
			b := testenv.ReadVector(t, "inputs/se/"+name)
			im, err := Parse(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			if im.Bare() || im.Metadata || im.HeaderOffset != 0x14000 || im.IPIBOffset != 0x13000 {
				t.Errorf("header at %#x, IPIB at %#x (metadata %v), want 0x14000 and 0x13000 without metadata", im.HeaderOffset, im.IPIBOffset, im.Metadata)
			}
			// kernel (64 KiB), parmline, initrd (12,345 bytes: 4 pages),
			// stage3b, at the addresses genprotimg lays them out at.
			var layout [][2]uint64
			for _, c := range im.Components {
				layout = append(layout, [2]uint64{c.Addr, c.Size})
			}
			wantLayout := [][2]uint64{{0x15000, 0x10000}, {0x25000, 0x1000}, {0x26000, 0x4000}, {0x2a000, 0x2000}}
			if d := cmp.Diff(wantLayout, layout); d != "" {
				t.Errorf("components (-want +got):\n%s", d)
			}
			d, err := im.Digests(context.Background(), bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if m := d.Mismatches(im.Header); len(m) != 0 {
				t.Errorf("recomputed %v differ from the header's:\npld %x\nwant %x\nald %x\nwant %x\ntld %x\nwant %x",
					m, d.PLD, im.Header.PLD, d.ALD, im.Header.ALD, d.TLD, im.Header.TLD)
			}
			if d.Pages != 23 {
				t.Errorf("pages %d, want 23", d.Pages)
			}
			tags = append(tags, hex.EncodeToString(im.Header.Tag[:]))
		})
	}
	if len(tags) == 2 && tags[0] == tags[1] {
		t.Errorf("both images have tag %s: genprotimg's random tweaks and keys should differ", tags[0])
	}
}

// TestDamaged flips bytes of se1.img: a changed page, address or tweak
// must show in the digest that covers it, and a truncated or malformed
// image must be refused with an error.
func TestDamaged(t *testing.T) {
	orig := testenv.ReadVector(t, "inputs/se/se1.img")
	tests := []struct {
		name     string
		damage   func([]byte) []byte
		mismatch []string // the digests that differ
		err      string   // or the parse error
	}{
		{"kernel page byte", func(b []byte) []byte { b[0x15000+100] ^= 1; return b }, []string{"pld"}, ""},
		{"stage3b last byte", func(b []byte) []byte { b[0x2c000-1] ^= 0x80; return b }, []string{"pld"}, ""},
		{"tweak prefix", func(b []byte) []byte { b[0x13000+8+128+24+7] ^= 1; return b }, []string{"tld"}, ""},
		{"component moved", func(b []byte) []byte { b[0x13000+8+128+8+6] = 0x10; return b }, []string{"pld", "ald"}, ""},
		{"components overlap", func(b []byte) []byte { b[0x13000+8+128+3*24+8+6] = 0x90; return b }, nil, "overlaps"},
		{"header pld", func(b []byte) []byte { b[0x14000+224] ^= 1; return b }, []string{"pld"}, ""},
		{"truncated", func(b []byte) []byte { return b[:0x2b000] }, nil, "truncated"},
		{"header truncated", func(b []byte) []byte { return b[:0x14100] }, nil, "truncated"},
		{"header version", func(b []byte) []byte { b[0x14000+10] = 2; return b }, nil, "version"},
		{"key slots", func(b []byte) []byte { b[0x14000+39] = 3; return b }, nil, "key slots"},
		{"ipib block type", func(b []byte) []byte { b[0x13000+12] = 2; return b }, nil, "parameter block type"},
		{"ipib components", func(b []byte) []byte { b[0x13000+8+111] = 200; return b }, nil, "components"},
		{"component unaligned", func(b []byte) []byte { b[0x13000+8+128+16+7] = 1; return b }, nil, "whole pages"},
		{"component beyond", func(b []byte) []byte { b[0x13000+8+128+8+4] = 0x7f; return b }, nil, "beyond"},
		{"tweaks out of order", func(b []byte) []byte { b[0x13000+8+128+24+1] = 0; return b }, nil, "tweak prefix"},
		{"no header", func(b []byte) []byte { b[0x14000] = 'X'; return b }, nil, "no Secure Execution header"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.damage(bytes.Clone(orig))
			im, err := Parse(bytes.NewReader(b), int64(len(b)))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Parse: %v, want an error with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d, err := im.Digests(context.Background(), bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Mismatches(im.Header); !cmp.Equal(got, tc.mismatch) {
				t.Errorf("mismatches %v, want %v", got, tc.mismatch)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		pcf  uint64
		want []string
	}{
		{0, nil},
		{1 << (63 - 34), []string{"allow_dumping"}},
		{1<<(63-35) | 1<<(63-57) | 1, []string{"no_component_encryption", "pckmo_aes", "bit_63"}},
	}
	for _, tc := range tests {
		if got := (&Header{PCF: tc.pcf}).Flags(); !cmp.Equal(got, tc.want) {
			t.Errorf("Flags(%#x) = %v, want %v", tc.pcf, got, tc.want)
		}
	}
}

func TestContextCancelled(t *testing.T) {
	b := testenv.ReadVector(t, "inputs/se/se1.img")
	im, err := Parse(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := im.Digests(ctx, bytes.NewReader(b)); err == nil {
		t.Error("Digests with a cancelled context: no error")
	}
}

// TestOpenAndDecrypt opens the headers of the genprotimg images with the
// header key they were made with (inputs/se/hdr.key): the AES-GCM tag
// genprotimg computed must verify, the XTS key inside must be comp.key,
// and the components, decrypted with it and the tweaks of the IPIB, must
// be kernel.img, parm (with its NUL) and initrd.img, padded with zeros,
// at the addresses and sizes the stage3b arguments give.
func TestOpenAndDecrypt(t *testing.T) {
	hdrKey := testenv.ReadVector(t, "inputs/se/hdr.key")
	compKey := testenv.ReadVector(t, "inputs/se/comp.key")
	want := map[string][]byte{
		"kernel":  testenv.ReadVector(t, "inputs/se/kernel.img"),
		"cmdline": append(bytes.Clone(testenv.ReadVector(t, "inputs/se/parm")), 0),
		"initrd":  testenv.ReadVector(t, "inputs/se/initrd.img"),
	}
	for _, name := range []string{"se1.img", "se2.img"} {
		t.Run(name, func(t *testing.T) {
			b := testenv.ReadVector(t, "inputs/se/"+name)
			im, err := Parse(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			raw := b[im.HeaderOffset:]
			s, err := im.Header.Open(raw, hdrKey)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(s.XTSKey[:], compKey) {
				t.Errorf("XTS key %x, want comp.key %x", s.XTSKey, compKey)
			}
			if s.PSWAddr != im.Components[len(im.Components)-1].Addr || s.OptionalItems != 0 {
				t.Errorf("PSW address %#x, %d optional items; want stage3b's address %#x and none", s.PSWAddr, s.OptionalItems, im.Components[len(im.Components)-1].Addr)
			}
			args, err := im.ReadStage3bArgs(context.Background(), bytes.NewReader(b), s)
			if err != nil {
				t.Fatal(err)
			}
			for part, blob := range map[string]Blob{"kernel": args.Kernel, "cmdline": args.Cmdline, "initrd": args.Initrd} {
				var got []byte
				if err := im.DecryptComponent(context.Background(), bytes.NewReader(b), im.Component(blob.Addr), s.XTSKey[:], func(p []byte) error {
					got = append(got, p...)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				if uint64(len(got)) < blob.Size || !bytes.Equal(got[:blob.Size], want[part]) || bytes.Count(got[blob.Size:], []byte{0}) != len(got)-int(blob.Size) {
					t.Errorf("%s: %d bytes decrypted, stage3b says %d; want the input (%d bytes) padded with zeros", part, len(got), blob.Size, len(want[part]))
				}
			}
			// An altered header or another key is refused.
			bad := bytes.Clone(raw)
			bad[224] ^= 1
			if _, err := im.Header.Open(bad, hdrKey); err == nil {
				t.Error("Open of a header with an altered PLD: no error")
			}
			if _, err := im.Header.Open(raw, compKey[:32]); err == nil {
				t.Error("Open with another key: no error")
			}
		})
	}
}

// TestContents: the digests of the decrypted kernel, cmdline and initrd
// are those of the inputs genprotimg was given.
func TestContents(t *testing.T) {
	b := testenv.ReadVector(t, "inputs/se/se2.img")
	im, err := Parse(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := im.Header.Open(b[im.HeaderOffset:], testenv.ReadVector(t, "inputs/se/hdr.key"))
	if err != nil {
		t.Fatal(err)
	}
	args, err := im.ReadStage3bArgs(context.Background(), bytes.NewReader(b), s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := im.Contents(context.Background(), bytes.NewReader(b), s, args)
	if err != nil {
		t.Fatal(err)
	}
	content := func(name string) Content {
		d := testenv.ReadVector(t, "inputs/se/"+name)
		sum := sha256.Sum256(d)
		return Content{Size: uint64(len(d)), SHA256: hex.EncodeToString(sum[:])}
	}
	cmdline := content("parm")
	cmdline.Text = string(testenv.ReadVector(t, "inputs/se/parm"))
	want := map[string]Content{"kernel": content("kernel.img"), "initrd": content("initrd.img"), "cmdline": cmdline}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("contents (-want +got):\n%s", d)
	}
}
