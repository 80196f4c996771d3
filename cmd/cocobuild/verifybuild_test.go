package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// TestVerifyBuild publishes a release from a recipe, checks that a rebuild
// matches it, then changes the kernel cmdline: the rebuild's RTMR2 and the
// event log (a subject) no longer match, and verify-build names both.
func TestVerifyBuild(t *testing.T) {
	fw := testenv.VectorFile(t, "inputs/debian12_OVMF.fd")
	fwBytes, err := os.ReadFile(fw)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	real := testenv.VectorFile(t, "inputs/vmlinuz-6.1.0-56-cloud-amd64")
	realBytes, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`
variable "console" {
  default = "ttyS0"
}

input "fw" {
  file   = %q
  sha256 = %q
}

input "k" {
  file   = %q
  sha256 = %q
}

measure "snp" {
  firmware = input.fw
}

measure "tdx" {
  firmware = input.fw
  kernel   = input.k
  cmdline  = "console=${var.console}"
  # Debian 12's OVMF does not measure into RTMRs.
  assume_rtmr_measurement = true
}

publish "vb" {
  version = "1.0.0"
  expires = "2099-01-01T00:00:00Z"
  key     = "dev"
  # SNP on Debian 12's OVMF without a kernel vouches for the firmware only.
  allow_partial_coverage = true
}
`, fw, hexSHA(fwBytes), real, hexSHA(realBytes))
	recipe := filepath.Join(dir, "vb.hcl")
	if err := os.WriteFile(recipe, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cache, out := t.TempDir(), filepath.Join(t.TempDir(), "out")
	if code, stdout, stderr := runCLI(t, "build", "--cache-dir", cache, "-o", out, recipe); code != 0 {
		t.Fatalf("build: exit %d\n%s%s", code, stdout, stderr)
	}
	release := filepath.Join(t.TempDir(), "published")
	if err := os.Rename(filepath.Join(out, "publish", "vb"), release); err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(release, "cosign.pub")

	code, stdout, stderr := runCLI(t, "verify-build", "--cache-dir", cache, "--against", release, "--key", pub, recipe)
	if code != 0 || !strings.Contains(stdout, "comes from this recipe") {
		t.Fatalf("verify-build of the same recipe: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = runCLI(t, "verify-build", "--cache-dir", cache, "--against", release, "--key", pub, "-var", "console=hvc0", recipe)
	if code != 1 {
		t.Fatalf("verify-build of a changed recipe: exit %d, want 1\n%s", code, stdout)
	}
	for _, want := range []string{"MISMATCH  tdx tdx/memory=2G,qemu=10.2,order=single-pass,separator=current rtmr2: published", "the statement says"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("verify-build output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "MISMATCH  snp") {
		t.Errorf("the SNP value does not depend on the cmdline here, yet it is reported:\n%s", stdout)
	}
}
