package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// SHA256Hex is the lowercase hex sha256 of b, as recipes pin inputs.
func SHA256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// WriteKernelRecipe writes a recipe r.hcl into dir: recipe "t", a fake
// bzImage pinned as input "k" (vmlinuz), a kernel block "guest" taking it
// with cmdline console=ttyS0, then extra. It returns the kernel's bytes.
func WriteKernelRecipe(t testing.TB, dir, extra string) (kernel []byte) {
	t.Helper()
	kernel = FakeBzImage("6.1.0-test", 256*1024)
	if err := os.WriteFile(filepath.Join(dir, "vmlinuz"), kernel, 0o644); err != nil {
		t.Fatal(err)
	}
	recipe := fmt.Sprintf(`
recipe {
  name = "t"
}

input "k" {
  file   = "vmlinuz"
  sha256 = %q
}

kernel "guest" {
  image   = input.k
  cmdline = ["console=ttyS0"]
}
%s`, SHA256Hex(kernel), extra)
	if err := os.WriteFile(filepath.Join(dir, "r.hcl"), []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	return kernel
}
