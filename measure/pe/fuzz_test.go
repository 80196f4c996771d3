package pe

import (
	"crypto"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// FuzzParse checks that Parse, Certificates and Authenticode never panic and
// that Authenticode is deterministic. Seeds: the real signed kernel's headers,
// a shrunken copy of it (tiny sections, real certificate table) and synthetic
// images.
func FuzzParse(f *testing.F) {
	if img, err := os.ReadFile(filepath.Join(vectorsDirOrEmpty(), "inputs", "vmlinuz-6.1.0-56-cloud-amd64")); err == nil {
		f.Add(img[:4096])
		f.Add(shrinkPE(img))
	}
	f.Add(minimalPE(f, [][]byte{[]byte("abc"), []byte("defg")}, []byte{16, 0, 0, 0, 0, 2, 2, 0, 1, 2, 3, 4, 5, 6, 7, 8}))
	f.Add(minimalPE(f, nil, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		_, _ = p.Certificates()
		d1, err1 := p.Authenticode(crypto.SHA256)
		d2, err2 := p.Authenticode(crypto.SHA256)
		if (err1 == nil) != (err2 == nil) || string(d1) != string(d2) {
			t.Fatalf("Authenticode is not deterministic: %x/%v vs %x/%v", d1, err1, d2, err2)
		}
	})
}

// vectorsDirOrEmpty returns the vectors directory without failing or skipping
// (fuzz seeds are optional).
func vectorsDirOrEmpty() string {
	if d := os.Getenv(testenv.VectorsEnv); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "shared", "vectors")
}

// shrinkPE keeps the headers of a real image, cuts each section's raw data to
// 64 bytes and appends the real certificate table, so that the seed has real
// structure but stays small.
func shrinkPE(img []byte) []byte {
	p, err := Parse(img)
	if err != nil {
		return nil
	}
	out := append([]byte(nil), img[:p.SizeOfHeaders]...)
	secTable := int(binary.LittleEndian.Uint32(img[dosLfanewOff:])) + 4 + coffHeaderSize + int(p.SizeOfOptionalHeader)
	for i, s := range p.Sections {
		hdr := out[secTable+sectionHeaderLen*i:]
		data, err := p.SectionData(&s)
		if err != nil {
			return nil
		}
		if len(data) > 64 {
			data = data[:64]
		}
		binary.LittleEndian.PutUint32(hdr[16:], uint32(len(data)))
		binary.LittleEndian.PutUint32(hdr[20:], uint32(len(out)))
		out = append(out, data...)
	}
	if off, size := p.CertificateTable(); size != 0 && uint64(off)+uint64(size) <= uint64(len(img)) {
		dd := p.SecurityDirOffset
		binary.LittleEndian.PutUint32(out[dd:], uint32(len(out)))
		out = append(out, img[off:off+size]...)
	}
	return out
}
