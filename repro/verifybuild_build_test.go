package repro

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/filehash"
	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/internal/testkinds"
	"github.com/cocobuild/cocobuild/publish/sign"
)

// signedRecipe writes a recipe whose prebuilt kernel is measured for TDX
// and published with the development key.
func signedRecipe(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	pins := map[string]string{}
	for name, vector := range map[string]string{"ovmf.fd": "inputs/debian12_OVMF.fd", "vmlinuz": "inputs/vmlinuz-6.1.0-56-cloud-amd64"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, testenv.ReadVector(t, vector), 0o644); err != nil {
			t.Fatal(err)
		}
		sum, _, err := filehash.SHA256(p)
		if err != nil {
			t.Fatal(err)
		}
		pins[name] = sum
	}
	src := fmt.Sprintf(`
recipe {
  name = "tamper"
}

input "fw" {
  file   = "ovmf.fd"
  sha256 = %q
}

input "k" {
  file   = "vmlinuz"
  sha256 = %q
}

kernel "guest" {
  image   = input.k
  cmdline = ["console=ttyS0"]
}

measure "tdx" {
  firmware = input.fw
  kernel   = kernel.guest
  memory   = ["2G"]
  # Debian 12's OVMF does not measure into RTMRs.
  assume_rtmr_measurement = true
}

publish "t" {
  version = "1.0.0"
  expires = "2099-01-01T00:00:00Z"
  key     = "dev"
  allow_partial_coverage = true
}
`, pins["ovmf.fd"], pins["vmlinuz"])
	if err := os.WriteFile(filepath.Join(dir, "r.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// load loads the recipe in dir.
func load(t testing.TB, dir, cache string) *builder.Loaded {
	t.Helper()
	return testkinds.Load(t, dir, cache, input.Options{})
}

// TestVerifyBuildKeepsNotes: a rebuild that meets a corrupt cache entry
// evicts and rebuilds it, and verify-build's report carries the warning.
func TestVerifyBuildKeepsNotes(t *testing.T) {
	ctx := context.Background()
	dir := signedRecipe(t)
	cache := t.TempDir()
	out := filepath.Join(t.TempDir(), "out")
	first, err := load(t, dir, cache).Build(ctx, out, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := load(t, dir, cache)
	// The kernel step's cached image gets one byte flipped.
	p := ""
	for _, s := range first.Report.Steps {
		if s.Block == "kernel.guest" && s.Step == "image" && s.Key != "" {
			p = filepath.Join(l.Cache.Dir, "steps", s.Key, "files", "vmlinuz")
		}
	}
	if p == "" {
		t.Fatalf("the report has no step kernel.guest:image: %+v", first.Report.Steps)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := VerifyBuild(ctx, l, testkinds.TEEs(), filepath.Join(out, "publish", "t"), nil, filepath.Join(t.TempDir(), "rebuilt"), sign.DevSigner().Public(), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("verify-build mismatches: %q", rep.Mismatches)
	}
	want := "WARNING: step kernel.guest:image: cached file vmlinuz is not what its cache record states"
	if !strings.Contains(strings.Join(rep.Notes, "\n"), want) {
		t.Errorf("report notes %q: want %q", rep.Notes, want)
	}
}
