package pe

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// tdxVectors is the part of tdx.json these tests read.
type tdxVectors struct {
	Vectors []struct {
		ID     string `json:"id"`
		Kind   string `json:"kind"`
		Inputs []struct {
			Path string `json:"path"`
		} `json:"inputs"`
		Expected map[string]json.RawMessage `json:"expected"`
	} `json:"vectors"`
}

func TestAuthenticodeVectors(t *testing.T) {
	var v tdxVectors
	if err := json.Unmarshal(testenv.ReadVector(t, "tdx.json"), &v); err != nil {
		t.Fatalf("parsing tdx.json: %v", err)
	}
	n := 0
	for _, vec := range v.Vectors {
		if vec.Kind != "PE authenticode (unmodified file)" {
			continue
		}
		img := testenv.ReadVector(t, vec.Inputs[0].Path)
		for _, tc := range []struct {
			key string
			h   crypto.Hash
		}{{"sha256", crypto.SHA256}, {"sha384", crypto.SHA384}} {
			var want string
			if err := json.Unmarshal(vec.Expected[tc.key], &want); err != nil {
				t.Fatalf("%s: expected.%s: %v", vec.ID, tc.key, err)
			}
			got, err := Authenticode(img, tc.h)
			if err != nil {
				t.Fatalf("%s: Authenticode(%v): %v", vec.ID, tc.h, err)
			}
			if hex.EncodeToString(got) != want {
				t.Errorf("%s: Authenticode(%v) = %x, want %s", vec.ID, tc.h, got, want)
			}
			n++
		}
	}
	if n != 2 {
		t.Errorf("checked %d Authenticode digests, want 2 (did tdx.json change?)", n)
	}
}

func TestCertificates(t *testing.T) {
	img := testenv.ReadVector(t, "inputs/vmlinuz-6.1.0-56-cloud-amd64")
	f, err := Parse(img)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	off, size := f.CertificateTable()
	if off != 14184960 || size != 1472 {
		t.Errorf("CertificateTable() = 0x%x+%d, want 0xd87200+1472", off, size)
	}
	certs, err := f.Certificates()
	if err != nil {
		t.Fatalf("Certificates: %v", err)
	}
	if len(certs) != 1 {
		t.Fatalf("got %d certificates, want 1", len(certs))
	}
	if c := certs[0]; c.Revision != 0x200 || c.Type != 2 || len(c.Data) == 0 || c.Data[0] != 0x30 {
		t.Errorf("certificate = rev 0x%x type %d, %d bytes starting %x; want rev 0x200 type 2 (PKCS#7, DER SEQUENCE)", c.Revision, c.Type, len(c.Data), c.Data[:1])
	}
	if got, want := len(f.Sections), 4; got != want {
		t.Fatalf("got %d sections, want %d", got, want)
	}
	if s := f.Section(".text"); s == nil || s.PointerToRawData != 0x5000 || s.SizeOfRawData != 0xd81000 {
		t.Errorf("Section(.text) = %+v, want raw data 0x5000+0xd81000", s)
	}
	if f.Magic != MagicPE32Plus {
		t.Errorf("Magic = 0x%x, want 0x20b", f.Magic)
	}
}

// TestAuthenticodeOsslsigncode cross-checks the SHA-256 digest with
// osslsigncode's "Calculated message digest".
func TestAuthenticodeOsslsigncode(t *testing.T) {
	tool := testenv.Tool(t, "osslsigncode", "osslsigncode")
	path := testenv.VectorFile(t, "inputs/vmlinuz-6.1.0-56-cloud-amd64")
	out, _ := exec.Command(tool, "verify", "-in", path).CombinedOutput() // fails on the untrusted chain; the digest is still printed
	m := regexp.MustCompile(`Calculated message digest\s*:\s*([0-9A-Fa-f]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("osslsigncode printed no calculated digest:\n%s", out)
	}
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Authenticode(img, crypto.SHA256)
	if err != nil {
		t.Fatalf("Authenticode: %v", err)
	}
	if want := strings.ToLower(string(m[1])); hex.EncodeToString(got) != want {
		t.Errorf("Authenticode(SHA256) = %x, osslsigncode says %s", got, want)
	}
}

// minimalPE builds a small PE32+ image with the given sections' raw data and
// an optional certificate table appended at the end.
func minimalPE(t testing.TB, sections [][]byte, cert []byte) []byte {
	t.Helper()
	const peOff, optSize, hdrSize = 0x40, 240, 0x200
	b := make([]byte, hdrSize)
	copy(b, "MZ")
	binary.LittleEndian.PutUint32(b[dosLfanewOff:], peOff)
	copy(b[peOff:], "PE\x00\x00")
	coff := b[peOff+4:]
	binary.LittleEndian.PutUint16(coff[0:], 0x8664)
	binary.LittleEndian.PutUint16(coff[2:], uint16(len(sections)))
	binary.LittleEndian.PutUint16(coff[16:], optSize)
	opt := b[peOff+4+coffHeaderSize:]
	binary.LittleEndian.PutUint16(opt, MagicPE32Plus)
	binary.LittleEndian.PutUint32(opt[60:], hdrSize)
	binary.LittleEndian.PutUint32(opt[checksumOff:], 0xdeadbeef)
	binary.LittleEndian.PutUint32(opt[dirOffPE32Plus-4:], numStandardDir)
	// Lay out the headers completely before appending data: appending may
	// move b, and opt/sec point into it.
	sec := opt[optSize:]
	pos := hdrSize
	for i, data := range sections {
		s := sec[sectionHeaderLen*i:]
		copy(s, fmt.Sprintf(".s%d", i))
		binary.LittleEndian.PutUint32(s[16:], uint32(len(data)))
		binary.LittleEndian.PutUint32(s[20:], uint32(pos))
		pos += len(data)
	}
	if cert != nil {
		binary.LittleEndian.PutUint32(opt[dirOffPE32Plus+8*DirSecurity:], uint32(pos))
		binary.LittleEndian.PutUint32(opt[dirOffPE32Plus+8*DirSecurity+4:], uint32(len(cert)))
	}
	for _, data := range sections {
		b = append(b, data...)
	}
	b = append(b, cert...)
	return b
}

func TestAuthenticodeSkipsChecksumAndSignature(t *testing.T) {
	cert := make([]byte, 16)
	binary.LittleEndian.PutUint32(cert, 16)
	base := minimalPE(t, [][]byte{[]byte("section zero"), []byte("section one!")}, cert)
	want, err := Authenticode(base, crypto.SHA256)
	if err != nil {
		t.Fatalf("Authenticode(base): %v", err)
	}
	f, _ := Parse(base)
	tests := []struct {
		name   string
		mutate func([]byte)
		same   bool
	}{
		{"checksum changed", func(b []byte) { b[f.CheckSumOffset] ^= 0xff }, true},
		{"certificate bytes changed", func(b []byte) { b[len(b)-1] ^= 1 }, true},
		{"section byte changed", func(b []byte) { b[0x200] ^= 1 }, false},
		{"header byte changed", func(b []byte) { b[0x100] ^= 1 }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := append([]byte(nil), base...)
			tc.mutate(b)
			got, err := Authenticode(b, crypto.SHA256)
			if err != nil {
				t.Fatalf("Authenticode: %v", err)
			}
			if same := bytes.Equal(got, want); same != tc.same {
				t.Errorf("digest unchanged = %v, want %v (got %x, base %x)", same, tc.same, got, want)
			}
		})
	}
}

func TestAuthenticodeTrailingData(t *testing.T) {
	img := minimalPE(t, [][]byte{[]byte("abc")}, nil)
	withTrail := append(append([]byte(nil), img...), "trailer"...)
	a, err := Authenticode(img, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Authenticode(withTrail, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Errorf("trailing data after the last section did not change the digest; Authenticode covers it")
	}
	h := sha256.New()
	f, _ := Parse(withTrail)
	h.Write(withTrail[:f.CheckSumOffset])
	h.Write(withTrail[f.CheckSumOffset+4 : f.SecurityDirOffset])
	h.Write(withTrail[f.SecurityDirOffset+8:])
	if want := h.Sum(nil); !bytes.Equal(b, want) {
		t.Errorf("digest with trailer = %x, want %x (headers, section, trailer in file order)", b, want)
	}
}

func TestParseErrors(t *testing.T) {
	good := minimalPE(t, [][]byte{[]byte("abc")}, nil)
	tests := []struct {
		name   string
		mutate func([]byte) []byte
	}{
		{"empty", func([]byte) []byte { return nil }},
		{"no MZ", func(b []byte) []byte { b[0] = 'X'; return b }},
		{"e_lfanew out of range", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[dosLfanewOff:], 1<<30); return b }},
		{"no PE signature", func(b []byte) []byte { b[0x40] = 'X'; return b }},
		{"bad magic", func(b []byte) []byte { b[0x40+24] = 0x99; return b }},
		{"too many directories", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[0x40+24+dirOffPE32Plus-4:], 1000)
			return b
		}},
		{"section table truncated", func(b []byte) []byte { binary.LittleEndian.PutUint16(b[0x40+6:], 60000); return b }},
		{"SizeOfHeaders beyond file", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[0x40+24+60:], 1<<31); return b }},
		{"SizeOfHeaders inside optional header", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[0x40+24+60:], 0x50); return b }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mutate(append([]byte(nil), good...))
			if _, err := Parse(b); err == nil {
				t.Errorf("Parse succeeded, want an error")
			}
		})
	}
}

func TestAuthenticodeErrors(t *testing.T) {
	tests := []struct {
		name string
		img  func() []byte
	}{
		{"section beyond file", func() []byte {
			b := minimalPE(t, [][]byte{[]byte("abc")}, nil)
			return b[:len(b)-1]
		}},
		{"certificate table larger than file", func() []byte {
			b := minimalPE(t, [][]byte{[]byte("abc")}, make([]byte, 8))
			b = append(b, "x"...)
			binary.LittleEndian.PutUint32(b[0x40+24+dirOffPE32Plus+8*DirSecurity+4:], 1<<20)
			return b
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if d, err := Authenticode(tc.img(), crypto.SHA384); err == nil {
				t.Errorf("Authenticode = %x, want an error", d)
			}
		})
	}
}
