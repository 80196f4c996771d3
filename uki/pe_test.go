package uki

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/measure/pcr"
)

// debianStub is Debian 12's systemd-stub (package systemd-boot-efi); the
// tests that need it fail in CI when it is missing.
func debianStub(t *testing.T) []byte {
	t.Helper()
	const p = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"
	b, err := os.ReadFile(p)
	if err != nil {
		if testenv.InCI() {
			t.Fatalf("%v: apt-get install systemd-boot-efi", err)
		}
		t.Skipf("%v: apt-get install systemd-boot-efi", err)
	}
	return b
}

// TestChecksumMatchesTheLinkers: the checksum of Debian's stub, computed
// with its CheckSum field zeroed, is the one its linker wrote.
func TestChecksumMatchesTheLinkers(t *testing.T) {
	stub := debianStub(t)
	f, err := pe.NewFile(bytes.NewReader(stub))
	if err != nil {
		t.Fatal(err)
	}
	want := f.OptionalHeader.(*pe.OptionalHeader64).CheckSum
	b := bytes.Clone(stub)
	off := int(binary.LittleEndian.Uint32(b[0x3c:])) + 24 + optCheckSum
	binary.LittleEndian.PutUint32(b[off:], 0)
	if got := checksum(b); got != want {
		t.Errorf("checksum = %#x, want the stub's %#x", got, want)
	}
}

func TestAssembleObjdump(t *testing.T) {
	stub := debianStub(t)
	objdump := testenv.Tool(t, "objdump", "binutils")
	secs := []Section{{Name: ".osrel", Data: []byte("ID=test\n")}, {Name: ".cmdline", Data: []byte("console=ttyS0")}, {Name: ".initrd", Data: bytes.Repeat([]byte("i"), 5000)}, {Name: ".linux", Data: bytes.Repeat([]byte("k"), 70001)}}
	img, err := Assemble(stub, secs)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Assemble(stub, secs)
	if !bytes.Equal(img, again) {
		t.Error("two assemblies differ")
	}
	p := filepath.Join(t.TempDir(), "uki.efi")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(objdump, "-h", p).CombinedOutput()
	if err != nil {
		t.Fatalf("objdump -h: %v\n%s", err, out)
	}
	for _, s := range append([]string{".text", ".sbat", ".sdmagic"}, ".osrel", ".cmdline", ".initrd", ".linux") {
		if !strings.Contains(string(out), " "+s+" ") {
			t.Errorf("objdump -h lists no %s:\n%s", s, out)
		}
	}
	got, err := pcr.UKISections(img)
	if err != nil {
		t.Fatal(err)
	}
	// Read back in the order the stub measures them.
	want := []pcr.Section{{Name: ".linux", Data: secs[3].Data}, {Name: ".osrel", Data: secs[0].Data}, {Name: ".cmdline", Data: secs[1].Data}, {Name: ".initrd", Data: secs[2].Data}}
	if len(got) != len(want) {
		t.Fatalf("read back %d measured sections, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Name != want[i].Name || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Errorf("section %d read back: %s, %d bytes; want %s, %d bytes", i, got[i].Name, len(got[i].Data), want[i].Name, len(want[i].Data))
		}
	}
	t.Logf("%s", out)
}

func TestAssembleRefuses(t *testing.T) {
	stub := debianStub(t)
	uki, err := Assemble(stub, []Section{{Name: ".linux", Data: []byte("k")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		stub []byte
		secs []Section
		want string
	}{
		{"not PE", []byte("MZ nothing"), nil, "not a PE image"},
		{"truncated", stub[:0x300], nil, ""},
		{"a UKI as stub", uki, []Section{{Name: ".linux", Data: []byte("k")}}, "already has a section .linux"},
		{"long name", stub, []Section{{Name: ".toolongname", Data: nil}}, "want 1 to 8 bytes"},
	} {
		_, err := Assemble(c.stub, c.secs)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one with %q", c.name, err, c.want)
		}
	}
}
