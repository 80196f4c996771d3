package se

import (
	"bytes"
	"context"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// FuzzParseHeader feeds the header parser arbitrary bytes, seeded with the
// s390-tools test header and the header of a genprotimg image.
func FuzzParseHeader(f *testing.F) {
	f.Add(testenv.ReadVector(f, "inputs/se/secure_guest.hdr"))
	img := testenv.ReadVector(f, "inputs/se/se1.img")
	f.Add(img[0x14000 : 0x14000+640])
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			if h != nil {
				t.Errorf("ParseHeader returned a header with error %v", err)
			}
			return
		}
		if int(h.Size) > len(b) || len(h.KeySlots)*KeySlotSize+HeadSize+TagSize > int(h.Size) {
			t.Errorf("header of size %d with %d key slots parsed from %d bytes", h.Size, len(h.KeySlots), len(b))
		}
		_ = h.Flags()
	})
}

// FuzzParse feeds the image parser the first pages of an image with
// arbitrary bytes in its IPIB and header pages (the rest as given).
func FuzzParse(f *testing.F) {
	img := testenv.ReadVector(f, "inputs/se/se1.img")
	f.Add(img[0x13000:0x15000])
	f.Add(testenv.ReadVector(f, "inputs/se/secure_guest.hdr"))
	f.Fuzz(func(t *testing.T, pages []byte) {
		b := append(bytes.Clone(img[:0x13000]), pages...)
		for _, data := range [][]byte{b, pages} {
			im, err := Parse(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				continue
			}
			if im.Bare() {
				continue
			}
			d, err := im.Digests(context.Background(), bytes.NewReader(data))
			if err == nil {
				_ = d.Mismatches(im.Header)
			}
		}
	})
}
