package sgx

import (
	"bytes"
	"debug/elf"
	"testing"
)

// FuzzParseSigStruct checks that the SIGSTRUCT parser never panics, that
// what it accepts marshals back to the same bytes, and that Verify and
// MRSigner take any parsed SIGSTRUCT.
func FuzzParseSigStruct(f *testing.F) {
	s := SelftestSigStruct([32]byte{9})
	f.Add(s.Marshal())
	f.Add(make([]byte, SigStructSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseSigStruct(b)
		if err != nil {
			return
		}
		if got := p.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("Marshal(ParseSigStruct(b)) differs from b")
		}
		_ = p.Verify()
		_ = p.MRSigner()
	})
}

// FuzzSelftestLayout checks that the selftest ELF layout never panics and
// that what it accepts measures.
func FuzzSelftestLayout(f *testing.F) {
	f.Add(selftestLikeELF(), uint64(0x1000))
	f.Add(testELF(0x3000, load(elf.PF_R|elf.PF_W, 0x1000, 0x1000), load(elf.PF_R|elf.PF_X, 0x1800, 0x1000)), uint64(0x2000))
	f.Fuzz(func(t *testing.T, img []byte, heap uint64) {
		heap %= 1 << 24 // keep the fuzzer's heaps small: measuring is linear in them
		l, err := SelftestLayout(img, heap)
		if err != nil {
			return
		}
		if _, err := l.MREnclave(); err != nil {
			t.Fatalf("accepted layout does not measure: %v", err)
		}
	})
}

// FuzzParsePageList checks that the page list parser and its layout never
// panic and that an accepted layout measures.
func FuzzParsePageList(f *testing.F) {
	f.Add([]byte(`{"ssa_frame_size":1,"runs":[{"offset":0,"size":8192,"type":"tcs","measure":true,"file":"a"},{"offset":8192,"size":4096,"type":"reg","perm":"rw"}]}`))
	f.Add([]byte(`{"size":4096,"runs":[{"offset":0,"size":4096,"type":"reg","perm":"rwx","measure":true}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := ParsePageList(doc)
		if err != nil {
			return
		}
		l, err := p.Layout(func(string, uint64, uint64) ([]byte, error) { return []byte{1, 2, 3}, nil })
		if err != nil || l.Pages() > 1<<12 {
			return
		}
		if _, err := l.MREnclave(); err != nil {
			t.Fatalf("accepted layout does not measure: %v", err)
		}
	})
}
