package sgx

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cocobuild/cocobuild/measure/sgx/sgxtest"
)

// load and note are program headers of a test ELF.
func load(flags elf.ProgFlag, off, filesz uint64) sgxtest.Prog {
	return sgxtest.Prog{Type: elf.PT_LOAD, Flags: flags, Off: off, Filesz: filesz}
}

func note() sgxtest.Prog {
	return sgxtest.Prog{Type: elf.PT_NOTE, Flags: elf.PF_R, Off: 0x40, Filesz: 0x10}
}

var (
	testELF         = sgxtest.ELF
	selftestLikeELF = sgxtest.SelftestLike
)

func TestSelftestLayout(t *testing.T) {
	img := selftestLikeELF()
	got, err := SelftestLayout(img, 0x3000)
	if err != nil {
		t.Fatal(err)
	}
	want := &Layout{SSAFrameSize: 1, Size: 0x10000, Segments: []Segment{
		{Name: "TCS", Offset: 0, Size: 0x2000, Flags: 0x100, Measure: true, Data: img[0x1000:0x3000]},
		{Name: "PT_LOAD 1 (program header 1)", Offset: 0x2000, Size: 0x1000, Flags: 0x205, Measure: true, Data: img[0x3000:0x4000]},
		// 0x5800 bytes are six pages, the last past the file's end.
		{Name: "PT_LOAD 2 (program header 3)", Offset: 0x3000, Size: 0x6000, Flags: 0x203, Measure: true, Data: img[0x4000:0xa000]},
		{Name: "heap", Offset: 0x9000, Size: 0x3000, Flags: 0x203},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SelftestLayout (-want +got):\n%s", diff)
	}
	if n := got.Pages(); n != 12 {
		t.Errorf("Pages() = %d, want 12", n)
	}
}

func TestSelftestLayoutErrors(t *testing.T) {
	rw, rx := elf.PF_R|elf.PF_W, elf.PF_R|elf.PF_X
	for _, tc := range []struct {
		name string
		img  []byte
		heap uint64
		want string
	}{
		{"not ELF", make([]byte, 0x2000), 0x1000, "reading the enclave ELF"},
		{"heap 0", selftestLikeELF(), 0, "not a positive multiple"},
		{"heap unaligned", selftestLikeELF(), 0x1800, "not a positive multiple"},
		{"heap huge", selftestLikeELF(), MaxPages*PageSize + PageSize, "is over"},
		{"no PT_LOAD", testELF(0x2000, note()), 0x1000, "no PT_LOAD"},
		{"TCS not RW", testELF(0x2000, load(rx, 0x1000, 0x1000)), 0x1000, "must be read-write"},
		{"bad flags", testELF(0x3000, load(rw, 0x1000, 0x1000), load(rw|8, 0x2000, 0x1000)), 0x1000, "invalid segment flags"},
		{"before base", testELF(0x3000, load(rw, 0x2000, 0x1000), load(rx, 0x1000, 0x1000)), 0x1000, "before the TCS"},
		{"past end", testELF(0x3000, load(rw, 0x1000, 0x1000), load(rx, 0x3000, 0x1000)), 0x1000, "past the end"},
		{"filesz huge", testELF(0x3000, load(rw, 0x1000, 1<<62)), 0x1000, "more than the file's"},
		{"overlap", testELF(0x3000, load(rw, 0x1000, 0x1000), load(rx, 0x1000, 0x1000)), 0x1000, "overlaps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := SelftestLayout(tc.img, tc.heap)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("SelftestLayout: got error %v, want one with %q", err, tc.want)
			}
		})
	}
}

func TestLayoutCheck(t *testing.T) {
	reg := SecInfoFlags(PageREG, PermR|PermW)
	for _, tc := range []struct {
		name string
		l    Layout
		want string // "" for no error
	}{
		{"ok", Layout{SSAFrameSize: 1, Size: 0x4000, Segments: []Segment{{Offset: 0, Size: 0x1000, Flags: 0x100}, {Offset: 0x3000, Size: 0x1000, Flags: reg}}}, ""},
		{"size not power of two", Layout{SSAFrameSize: 1, Size: 0x3000}, "power of two"},
		{"size zero", Layout{SSAFrameSize: 1}, "power of two"},
		{"SSA zero", Layout{Size: 0x2000}, "SSA frame size is 0"},
		{"one page", Layout{SSAFrameSize: 1, Size: 0x1000}, "at least two pages"},
		{"unaligned", Layout{SSAFrameSize: 1, Size: 0x4000, Segments: []Segment{{Offset: 0x800, Size: 0x1000, Flags: reg}}}, "multiples"},
		{"outside", Layout{SSAFrameSize: 1, Size: 0x4000, Segments: []Segment{{Offset: 0x3000, Size: 0x2000, Flags: reg}}}, "outside"},
		{"outside wrap", Layout{SSAFrameSize: 1, Size: 0x4000, Segments: []Segment{{Offset: 1<<64 - 0x1000, Size: 0x2000, Flags: reg}}}, "outside"},
		{"SECS page", Layout{SSAFrameSize: 1, Size: 0x4000, Segments: []Segment{{Size: 0x1000, Flags: 0x3}}}, "not a TCS or REG"},
		{"reserved flag", Layout{SSAFrameSize: 1, Size: 0x4000, Segments: []Segment{{Size: 0x1000, Flags: reg | 8}}}, "not a TCS or REG"},
		{"data too long", Layout{SSAFrameSize: 1, Size: 0x4000, Segments: []Segment{{Size: 0x1000, Flags: reg, Measure: true, Data: make([]byte, 0x1001)}}}, "bytes of data"},
		{"data unmeasured", Layout{SSAFrameSize: 1, Size: 0x4000, Segments: []Segment{{Size: 0x1000, Flags: reg, Data: []byte{1}}}}, "not measured"},
		{"overlap", Layout{SSAFrameSize: 1, Size: 0x4000, Segments: []Segment{{Offset: 0x2000, Size: 0x1000, Flags: reg}, {Offset: 0, Size: 0x3000, Flags: reg}}}, "overlaps"},
		{"overlap across empty", Layout{SSAFrameSize: 1, Size: 0x4000, Segments: []Segment{{Offset: 0, Size: 0x2000, Flags: reg}, {Offset: 0x1000, Flags: reg}, {Offset: 0x1000, Size: 0x1000, Flags: reg}}}, "overlaps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.l.Check()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Check: got error %v, want %q", err, tc.want)
			}
			if _, merr := tc.l.MREnclave(); (merr == nil) != (err == nil) {
				t.Errorf("MREnclave error %v, Check error %v", merr, err)
			}
		})
	}
}

// TestMREnclaveBlocks checks the hash input of a one-page enclave block
// by block, as the SDM lays out ECREATE, EADD and EEXTEND.
func TestMREnclaveBlocks(t *testing.T) {
	page := bytes.Repeat([]byte{0xab}, PageSize)
	l := Layout{SSAFrameSize: 2, Size: 0x2000, Segments: []Segment{
		{Offset: 0x1000, Size: 0x1000, Flags: 0x205, Measure: true, Data: page},
		{Offset: 0, Size: 0x1000, Flags: 0x203},
	}}
	block := func(s string) []byte {
		b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
		if err != nil || len(b) != 64 {
			t.Fatalf("bad block %q", s)
		}
		return b
	}
	zeros := strings.Repeat("00", 44)
	var in []byte
	in = append(in, block("4543524541544500"+"02000000"+"0020000000000000"+zeros)...)
	in = append(in, block("4541444400000000"+"0010000000000000"+"0502000000000000"+strings.Repeat("00", 40))...)
	for c := 0; c < PageSize; c += ChunkSize {
		var off [8]byte
		binary.LittleEndian.PutUint64(off[:], uint64(0x1000+c))
		in = append(in, block("45455854454e4400"+hex.EncodeToString(off[:])+strings.Repeat("00", 48))...)
		in = append(in, page[c:c+ChunkSize]...)
	}
	in = append(in, block("4541444400000000"+"0000000000000000"+"0302000000000000"+strings.Repeat("00", 40))...)
	got, err := l.MREnclave()
	if err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256(in); got != want {
		t.Errorf("MREnclave = %x, want %x", got, want)
	}
}

// TestPageListRoundTrip checks that the page list of a selftest layout,
// with its measured runs read from the ELF, gives the same MRENCLAVE.
func TestPageListRoundTrip(t *testing.T) {
	img := selftestLikeELF()
	l, err := SelftestLayout(img, 0x2000)
	if err != nil {
		t.Fatal(err)
	}
	want, err := l.MREnclave()
	if err != nil {
		t.Fatal(err)
	}
	pl := l.PageList()
	fileOff := map[string]uint64{}
	for i := range pl.Runs {
		if pl.Runs[i].Measure {
			pl.Runs[i].File = "encl.elf"
			pl.Runs[i].FileOffset = 0x1000 + pl.Runs[i].Offset
			fileOff[pl.Runs[i].Name] = pl.Runs[i].FileOffset
		}
	}
	pl.Size = 0 // the smallest that fits, as the selftest's
	var doc bytes.Buffer
	if err := json.NewEncoder(&doc).Encode(pl); err != nil {
		t.Fatal(err)
	}
	parsed, err := ParsePageList(doc.Bytes())
	if err != nil {
		t.Fatalf("ParsePageList(%s): %v", doc.Bytes(), err)
	}
	if diff := cmp.Diff(pl, parsed, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("page list round trip (-want +got):\n%s", diff)
	}
	read := func(file string, off, n uint64) ([]byte, error) {
		if file != "encl.elf" {
			t.Fatalf("read %q", file)
		}
		return img[min(off, uint64(len(img))):min(off+n, uint64(len(img)))], nil
	}
	l2, err := parsed.Layout(read)
	if err != nil {
		t.Fatal(err)
	}
	got, err := l2.MREnclave()
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("MRENCLAVE of the page list = %x, of the ELF = %x", got, want)
	}
}

func TestParsePageListErrors(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{`{"runs":[{"offset":0,"size":4096,"type":"secs"}]}`, "want tcs or reg"},
		{`{"runs":[{"offset":0,"size":4096,"type":"reg","perm":"wr"}]}`, "subset"},
		{`{"runs":[{"offset":0,"size":4096,"type":"tcs","perm":"rw"}]}`, "no permissions"},
		{`{"runs":[{"offset":0,"size":4096,"type":"reg","file":"x"}]}`, "not measured"},
		{`{"runs":[],"extra":1}`, "unknown field"},
		{`{"runs":[]} {}`, "data after"},
		{`[1]`, "page list"},
	} {
		if _, err := ParsePageList([]byte(tc.doc)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParsePageList(%s): got error %v, want one with %q", tc.doc, err, tc.want)
		}
	}
	p, err := ParsePageList([]byte(`{"runs":[{"offset":4096,"size":4096,"type":"reg","perm":"rw"},{"offset":0,"size":8192,"type":"reg"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Layout(nil); err == nil || !strings.Contains(err.Error(), "overlaps") {
		t.Errorf("Layout of overlapping runs: got error %v, want an overlap", err)
	}
}

func readKey(t *testing.T, path string) *rsa.PrivateKey {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s holds no PEM block", path)
	}
	k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return k
}

func TestSigStructSignVerify(t *testing.T) {
	key := readKey(t, "testdata/key3.pem")
	s := SelftestSigStruct([32]byte{1, 2, 3})
	s.Vendor, s.Date, s.ISVProdID, s.ISVSVN = VendorIntel, 0x20261203, 7, 9
	s.ISVFamilyID[0], s.ISVExtProdID[15], s.CETAttributes = 0xf, 0xe, 1
	if err := s.Sign(key); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(); err != nil {
		t.Fatalf("Verify of a signed SIGSTRUCT: %v", err)
	}
	b := s.Marshal()
	if len(b) != SigStructSize {
		t.Fatalf("Marshal: %d bytes", len(b))
	}
	p, err := ParseSigStruct(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, p); diff != "" {
		t.Errorf("Parse(Marshal) (-want +got):\n%s", diff)
	}
	want, err := MRSigner(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.MRSigner(); got != want {
		t.Errorf("SigStruct.MRSigner = %x, MRSigner(key) = %x", got, want)
	}
	// Signing is deterministic.
	s2 := *s
	if err := s2.Sign(key); err != nil || s2 != *s {
		t.Errorf("a second signature differs (err %v)", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*SigStruct)
		want   string
	}{
		{"body", func(s *SigStruct) { s.ISVSVN++ }, "does not verify"},
		{"header", func(s *SigStruct) { s.Date++ }, "does not verify"},
		{"signature", func(s *SigStruct) { s.Signature[0] ^= 1 }, "does not verify"},
		{"Q1", func(s *SigStruct) { s.Q1[0] ^= 1 }, "Q1 or Q2"},
		{"Q2", func(s *SigStruct) { s.Q2[5] ^= 1 }, "Q1 or Q2"},
		{"exponent", func(s *SigStruct) { s.Exponent = 65537 }, "exponent"},
		{"modulus", func(s *SigStruct) { s.Modulus = [ModulusSize]byte{} }, "modulus"},
	} {
		c := *s
		tc.change(&c)
		if err := c.Verify(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Verify with a changed %s: got error %v, want one with %q", tc.name, err, tc.want)
		}
	}
}

func TestSignKeyErrors(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"testdata/key3-2048.pem", "RSA-2048"},
	} {
		if err := SelftestSigStruct([32]byte{}).Sign(readKey(t, tc.path)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Sign with %s: got error %v, want one with %q", tc.path, err, tc.want)
		}
	}
	k := readKey(t, "testdata/key3.pem")
	k65537 := *k
	k65537.E = 65537
	if err := SelftestSigStruct([32]byte{}).Sign(&k65537); err == nil || !strings.Contains(err.Error(), "exponent") {
		t.Errorf("Sign with exponent 65537: got error %v", err)
	}
}

func TestParseSigStructErrors(t *testing.T) {
	key := readKey(t, "testdata/key3.pem")
	s := SelftestSigStruct([32]byte{})
	if err := s.Sign(key); err != nil {
		t.Fatal(err)
	}
	good := s.Marshal()
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"short", good[:SigStructSize-1], "1808 bytes"},
		{"header", with(good, 0, 7), "not a SIGSTRUCT"},
		{"header2", with(good, offHeader2+4, 0x61), "not a SIGSTRUCT"},
		{"reserved1", with(good, 100, 1), "reserved byte 100"},
		{"reserved2", with(good, 911, 1), "reserved byte 911"},
		{"reserved3", with(good, 1000, 1), "reserved byte 1000"},
		{"reserved4", with(good, 1030, 1), "reserved byte 1030"},
	} {
		if _, err := ParseSigStruct(tc.b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseSigStruct(%s): got error %v, want one with %q", tc.name, err, tc.want)
		}
	}
}

// with returns a copy of b with byte i set to v.
func with(b []byte, i int, v byte) []byte {
	c := bytes.Clone(b)
	c[i] = v
	return c
}
