package input

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/internal/debroot"
)

// TestLockPackagesRoundTrip writes a lock with a package set and reads it
// back; a malformed sha256 is a diagnostic at its attribute.
func TestLockPackagesRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cocobuild.lock.hcl")
	sum := strings.Repeat("ab", 32)
	l := &Lock{Path: path, Pins: map[string]Pin{"k": {Source: "file:k", SHA256: sum}}, Packages: map[string]debroot.Set{
		"rootfs.root": {Suite: "bookworm", Request: strings.Repeat("cd", 32), Packages: []debroot.Package{
			{Name: "libc6", Version: "2.36-9+deb12u13", Arch: "amd64", SHA256: sum},
			{Name: "base-files", Version: "12.4+deb12u15", Arch: "amd64", SHA256: sum},
			{Name: "libaudit-common", Version: "1:3.0.9-1", Arch: "all", SHA256: sum},
		}},
	}}
	if err := l.Write(); err != nil {
		t.Fatal(err)
	}
	got, diags := ReadLock(path)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := l.Packages["rootfs.root"]
	want.Sort()
	if diff := cmp.Diff(want, got.Packages["rootfs.root"]); diff != "" {
		t.Errorf("package set after a round trip (-want +got):\n%s", diff)
	}
	if got.Pins["k"] != l.Pins["k"] {
		t.Errorf("input pin after a round trip: got %+v, want %+v", got.Pins["k"], l.Pins["k"])
	}
	text, _ := os.ReadFile(path)
	if i, j := strings.Index(string(text), `package "base-files"`), strings.Index(string(text), `package "libc6"`); i < 0 || j < i {
		t.Errorf("packages not written sorted by name:\n%s", text)
	}
	bad := strings.Replace(string(text), sum, "xyz", 2)
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, diags := ReadLock(path); !diags.HasErrors() || !strings.Contains(diags.Error(), "sha256 is 64 lowercase hexadecimal digits") {
		t.Errorf("malformed package sha256: got %v, want a diagnostic", diags)
	}
}
