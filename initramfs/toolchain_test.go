package initramfs

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestGoToolchainRoot: the GOROOT handed to the u-root build is the one the
// go command reports, even when GOROOT is not in the environment (as for a
// cocobuild built with -trimpath, whose runtime.GOROOT() is empty).
func TestGoToolchainRoot(t *testing.T) {
	t.Setenv("GOROOT", "")
	goBin, goroot, err := goToolchain(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(goroot, "src", "runtime")); err != nil || !fi.IsDir() {
		t.Errorf("GOROOT %q has no src/runtime: %v", goroot, err)
	}
	if _, err := os.Stat(goBin); err != nil {
		t.Errorf("go command %q: %v", goBin, err)
	}
}
