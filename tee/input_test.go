package tee

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cocobuild/cocobuild/internal/limits"
)

// TestInputs checks what the measure commands read their files with: the
// bytes of a file, /dev/null as empty, a pipe refused under its flag's name,
// and a file rewritten after it was mapped reported under its flag's name.
func TestInputs(t *testing.T) {
	dir := t.TempDir()
	fw := filepath.Join(dir, "OVMF.fd")
	if err := os.WriteFile(fw, []byte("firmware"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	var lim limits.Values
	var in Inputs
	defer in.Close()
	for _, tc := range []struct {
		flag, path, want, wantErr string
	}{
		{"firmware", fw, "firmware", ""},
		{"initrd", os.DevNull, "", ""},
		{"kernel", fifo, "", "--kernel: " + fifo + " is a named pipe"},
	} {
		b, err := in.Map(&lim, tc.flag, tc.path, limits.Firmware)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Map(%s) = %q, %v; want an error with %q", tc.path, b, err, tc.wantErr)
			}
			continue
		}
		if err != nil || b == nil || string(b) != tc.want {
			t.Errorf("Map(%s) = %q (nil: %v), %v; want %q", tc.path, b, b == nil, err, tc.want)
		}
	}
	if err := in.Unchanged(); err != nil {
		t.Errorf("Unchanged() = %v before any change", err)
	}
	if err := os.WriteFile(fw, []byte("FIRMWARE and more"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := in.Unchanged(); err == nil || !strings.Contains(err.Error(), "--firmware: "+fw+" changed while it was read") {
		t.Errorf("Unchanged() = %v after the firmware was rewritten, want --firmware's change", err)
	}
	in.Close()
	in.Close()
}
