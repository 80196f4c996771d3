package gotool

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLook finds the go command as a shell would, and says what to
// install when there is none.
func TestLook(t *testing.T) {
	real, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("these tests need the go command on PATH: %v", err)
	}
	real, _ = filepath.Abs(real)
	out, err := exec.Command(real, "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	root := strings.TrimSpace(string(out))
	empty := t.TempDir()
	for _, tc := range []struct {
		name, path, goroot string
		want               string // the go command found, or "" for an error
		wantErr            []string
	}{
		{name: "on PATH", path: filepath.Dir(real), want: real},
		{name: "GOROOT only", path: empty, goroot: root, want: filepath.Join(root, "bin", "go")},
		{name: "nothing", path: empty, wantErr: []string{"no Go toolchain", "install Go", "PATH"}},
		{name: "GOROOT without go", path: empty, goroot: empty, wantErr: []string{"no Go toolchain", "GOROOT=" + empty + " has no bin/go"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PATH", tc.path)
			t.Setenv("GOROOT", tc.goroot)
			got, err := Look()
			if tc.want != "" {
				if err != nil || got != tc.want {
					t.Errorf("Look() = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Look() = %q, want an error", got)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
