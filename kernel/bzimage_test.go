package kernel

import (
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

func TestInspectDebianKernel(t *testing.T) {
	b := testenv.ReadVector(t, "inputs/vmlinuz-6.1.0-56-cloud-amd64")
	info, err := Inspect(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.Release, "6.1.0-56-cloud-amd64"; got != want {
		t.Errorf("Release = %q, want %q", got, want)
	}
	if got, want := info.ProtocolString(), "2.15"; got != want {
		t.Errorf("protocol = %s, want %s", got, want)
	}
	if !info.PE {
		t.Error("PE = false for an EFI-stub kernel")
	}
	if info.XLoadFlags&1 == 0 {
		t.Errorf("xloadflags = %#x: XLF_KERNEL_64 missing", info.XLoadFlags)
	}
}

func TestInspectRejects(t *testing.T) {
	bad := make([]byte, 0x300)
	if _, err := Inspect(bad); err == nil {
		t.Error("Inspect accepted zeros")
	}
	if _, err := Inspect([]byte("MZ")); err == nil {
		t.Error("Inspect accepted 2 bytes")
	}
	b := make([]byte, 0x300)
	b[0x1fe], b[0x1ff] = 0x55, 0xaa
	copy(b[0x202:], "HdrS")
	b[0x206], b[0x207] = 0x0f, 0x02
	b[0x20e], b[0x20f] = 0xff, 0x7f // pointer past the end
	if _, err := Inspect(b); err == nil {
		t.Error("Inspect accepted a version pointer past the end")
	}
}

func FuzzInspect(f *testing.F) {
	b := testenv.ReadVector(f, "inputs/vmlinuz-6.1.0-56-cloud-amd64")
	f.Add(b[:0x4000])
	f.Add(make([]byte, 0x300))
	f.Fuzz(func(t *testing.T, b []byte) {
		Inspect(b)
	})
}
