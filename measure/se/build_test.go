package se

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/binary"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

func hostKey(t *testing.T) *ecdh.PublicKey {
	t.Helper()
	k, err := ParseHostKey(testenv.ReadVector(t, "inputs/se/host.crt"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func buildInput(t *testing.T) *BuildInput {
	return &BuildInput{
		Kernel:   testenv.ReadVector(t, "inputs/se/kernel.img"),
		Initrd:   testenv.ReadVector(t, "inputs/se/initrd.img"),
		Cmdline:  testenv.ReadVector(t, "inputs/se/parm"),
		Stage3a:  testenv.ReadVector(t, "inputs/se/stage3a.bin"),
		Stage3b:  testenv.ReadVector(t, "inputs/se/stage3b_reloc.bin"),
		HostKeys: []*ecdh.PublicKey{hostKey(t)},
	}
}

// TestBuildMatchesGenprotimg rebuilds se1.img and se2.img with the keys and
// tweaks genprotimg drew for them (the XTS and communication keys out of
// the header opened with hdr.key, the tweaks from the IPIB, the IV from
// the header): every byte must equal genprotimg's but the customer's
// ECDH public key, the key slot's wrapped key and the header's tag, which
// depend on the customer's private key that genprotimg drew and did not
// keep. The rebuilt header must open with hdr.key.
func TestBuildMatchesGenprotimg(t *testing.T) {
	in := buildInput(t)
	hdrKey := testenv.ReadVector(t, "inputs/se/hdr.key")
	for _, name := range []string{"se1.img", "se2.img"} {
		t.Run(name, func(t *testing.T) {
			want := testenv.ReadVector(t, "inputs/se/"+name)
			im, err := Parse(bytes.NewReader(want), int64(len(want)))
			if err != nil {
				t.Fatal(err)
			}
			s, err := im.Header.Open(want[im.HeaderOffset:], hdrKey)
			if err != nil {
				t.Fatal(err)
			}
			k := &BuildKeys{XTS: s.XTSKey, Communicate: s.CustomerCommunicationKey, IV: im.Header.IV}
			copy(k.Header[:], hdrKey)
			for i, c := range im.Components {
				binary.BigEndian.PutUint16(k.TweakSuffix[i][:2], uint16(c.TweakPrefix>>32))
				binary.BigEndian.PutUint32(k.TweakSuffix[i][2:], uint32(c.TweakPrefix))
			}
			if k.Customer, err = ecdh.P521().GenerateKey(rand.Reader); err != nil {
				t.Fatal(err)
			}
			got, err := Build(in, k)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d bytes, genprotimg wrote %d", len(got), len(want))
			}
			h := uint64(im.HeaderOffset)
			skip := [][2]uint64{{h + 64, h + 224}, {h + HeadSize + 32, h + HeadSize + KeySlotSize}, {h + uint64(im.Header.Size) - TagSize, h + uint64(im.Header.Size)}}
			differ := 0
			for i := range got {
				in := false
				for _, r := range skip {
					in = in || (uint64(i) >= r[0] && uint64(i) < r[1])
				}
				if !in && got[i] != want[i] {
					if differ < 5 {
						t.Errorf("byte %#x: %#02x, genprotimg %#02x", i, got[i], want[i])
					}
					differ++
				}
			}
			if differ > 0 {
				t.Errorf("%d bytes differ from genprotimg's image", differ)
			}
			gim, err := Parse(bytes.NewReader(got), int64(len(got)))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := gim.Header.Open(got[gim.HeaderOffset:], hdrKey); err != nil {
				t.Errorf("the rebuilt header does not open with hdr.key: %v", err)
			}
		})
	}
}

// TestBuildReproducible: with keys derived from a seed, two builds are
// identical; another seed gives another image; each checks as genprotimg's
// do (PLD, ALD and TLD recomputed, the header key opens the header, the
// key slot names the host key).
func TestBuildReproducible(t *testing.T) {
	in := buildInput(t)
	build := func(seed byte) ([]byte, *BuildKeys) {
		k, err := DeriveKeys(bytes.Repeat([]byte{seed}, 32), in)
		if err != nil {
			t.Fatal(err)
		}
		img, err := Build(in, k)
		if err != nil {
			t.Fatal(err)
		}
		return img, k
	}
	a, ka := build(1)
	b, _ := build(1)
	c, _ := build(2)
	if !bytes.Equal(a, b) {
		t.Error("two builds with the same seed and inputs differ")
	}
	if bytes.Equal(a, c) {
		t.Error("builds with different seeds are identical")
	}
	im, err := Parse(bytes.NewReader(a), int64(len(a)))
	if err != nil {
		t.Fatal(err)
	}
	d, err := im.Digests(context.Background(), bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	if m := d.Mismatches(im.Header); len(m) != 0 {
		t.Errorf("derived image: %v differ from its header", m)
	}
	s, err := im.Header.Open(a[im.HeaderOffset:], ka.Header[:])
	if err != nil {
		t.Fatal(err)
	}
	args, err := im.ReadStage3bArgs(context.Background(), bytes.NewReader(a), s)
	if err != nil || args.Kernel.Size != uint64(len(in.Kernel)) || args.Initrd.Size != uint64(len(in.Initrd)) {
		t.Errorf("stage3b arguments %+v, %v", args, err)
	}
	phkh, _ := HostKeyHash(in.HostKeys[0])
	if im.Header.KeySlots[0].PHKH != phkh {
		t.Errorf("key slot hash %x, want %x", im.Header.KeySlots[0].PHKH, phkh)
	}
	if _, err := DeriveKeys(make([]byte, 16), in); err == nil {
		t.Error("DeriveKeys with a 16-byte seed: no error")
	}
}
