package uki

import (
	"os"
	"testing"
)

// FuzzAssemble: no stub makes Assemble panic; what it accepts it
// assembles into an image debug/pe reads back.
func FuzzAssemble(f *testing.F) {
	if b, err := os.ReadFile("/usr/lib/systemd/boot/efi/linuxx64.efi.stub"); err == nil {
		f.Add(b)
		f.Add(b[:0x400])
	}
	f.Add([]byte("MZ"))
	f.Fuzz(func(t *testing.T, stub []byte) {
		img, err := Assemble(stub, []Section{{Name: ".cmdline", Data: []byte("x")}, {Name: ".linux", Data: []byte("kernel")}})
		if err != nil {
			return
		}
		if _, err := Assemble(img, nil); err != nil {
			t.Errorf("the assembled image does not parse again: %v", err)
		}
	})
}
