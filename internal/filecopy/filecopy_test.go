package filecopy

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestCopy(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	data := []byte("some bytes to copy\n")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	old := syscall.Umask(0o077) // a umask that would hide the mode
	defer syscall.Umask(old)
	for _, perm := range []os.FileMode{0o644, 0o755, 0o600} {
		dst := filepath.Join(dir, "dst-"+perm.String())
		got, err := Copy(src, dst, perm)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		want := Copied{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}
		if got != want {
			t.Errorf("Copy = %+v, want %+v", got, want)
		}
		b, err := os.ReadFile(dst)
		if err != nil || string(b) != string(data) {
			t.Errorf("dst holds %q (%v), want %q", b, err, data)
		}
		st, err := os.Stat(dst)
		if err != nil || st.Mode().Perm() != perm {
			t.Errorf("dst mode %v (%v), want %v", st.Mode().Perm(), err, perm)
		}
	}
}

func TestCopyErrors(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.WriteFile(src, []byte("x"), 0o644)
	exists := filepath.Join(dir, "exists")
	os.WriteFile(exists, []byte("keep"), 0o644)
	tests := []struct{ name, src, dst string }{
		{"dst exists", src, exists},
		{"src missing", filepath.Join(dir, "missing"), filepath.Join(dir, "d1")},
		{"src a directory", dir, filepath.Join(dir, "d2")},
	}
	for _, tc := range tests {
		if _, err := Copy(tc.src, tc.dst, 0o644); err == nil {
			t.Errorf("%s: Copy succeeded, want an error", tc.name)
		}
	}
	if b, _ := os.ReadFile(exists); string(b) != "keep" {
		t.Errorf("an existing dst was changed to %q", b)
	}
	for _, d := range []string{"d1", "d2"} {
		if _, err := os.Stat(filepath.Join(dir, d)); !os.IsNotExist(err) {
			t.Errorf("%s left behind after a failed copy", d)
		}
	}
}
