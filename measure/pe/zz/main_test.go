package zz

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"os"
	"testing"
	"unicode"
)

func TestDump(t *testing.T) {
	b, _ := os.ReadFile("/tmp/boot/evlog.bin")
	r := bytes.NewReader(b)
	var pcr, typ uint32
	var dig [20]byte
	var sz uint32
	binary.Read(r, binary.LittleEndian, &pcr)
	binary.Read(r, binary.LittleEndian, &typ)
	r.Read(dig[:])
	binary.Read(r, binary.LittleEndian, &sz)
	r.Seek(int64(sz), 1)
	for r.Len() > 0 {
		binary.Read(r, binary.LittleEndian, &pcr)
		binary.Read(r, binary.LittleEndian, &typ)
		var n uint32
		binary.Read(r, binary.LittleEndian, &n)
		var s256 string
		for i := 0; i < int(n); i++ {
			var alg uint16
			binary.Read(r, binary.LittleEndian, &alg)
			l := map[uint16]int{4: 20, 0xb: 32, 0xc: 48, 0xd: 64}[alg]
			d := make([]byte, l)
			r.Read(d)
			if alg == 0xb {
				s256 = hex.EncodeToString(d)
			}
		}
		binary.Read(r, binary.LittleEndian, &sz)
		ev := make([]byte, sz)
		r.Read(ev)
		if pcr == 4 || pcr == 7 || pcr == 9 || pcr == 11 || pcr == 12 || pcr == 5 {
			p := []rune{}
			for _, c := range ev {
				if c >= 32 && c < 127 {
					p = append(p, rune(c))
				} else if c != 0 {
					p = append(p, '.')
				}
			}
			_ = unicode.IsPrint
			if len(p) > 100 {
				p = p[:100]
			}
			t.Logf("pcr %d type %#x %s [%d] %s", pcr, typ, s256, sz, string(p))
		}
	}
}
