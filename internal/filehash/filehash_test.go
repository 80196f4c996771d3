package filehash

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSHA256 compares with coreutils' sha256sum.
func TestSHA256(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	data := []byte(strings.Repeat("cocobuild\n", 100000))
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sha256sum", p).Output()
	if err != nil {
		t.Fatalf("sha256sum: %v", err)
	}
	want := strings.Fields(string(out))[0]
	got, n, err := SHA256(p)
	if err != nil || got != want || n != int64(len(data)) {
		t.Errorf("SHA256 = %s, %d, %v; want %s, %d", got, n, err, want, len(data))
	}
	if _, _, err := SHA256(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("SHA256 of a missing file: no error")
	}
}
