package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildLimitRaisesMeasureInputLimit: a measure block's firmware over
// the firmware limit fails the build with an error naming --limit, and
// build's --limit raises it (the step then reads the file and finds it is
// no firmware).
func TestBuildLimitRaisesMeasureInputLimit(t *testing.T) {
	dir := t.TempDir()
	const size = 64<<20 + 4096
	big := filepath.Join(dir, "big.fd")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, size); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.CopyN(h, zeroReader{}, size); err != nil {
		t.Fatal(err)
	}
	recipe := fmt.Sprintf(`recipe {
  name = "limits"
}

input "fw" {
  file   = "big.fd"
  sha256 = %q
}

measure "sev" {
  firmware = input.fw
}
`, hex.EncodeToString(h.Sum(nil)))
	if err := os.WriteFile(filepath.Join(dir, "r.hcl"), []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	code, _, stderr := runCLI(t, "build", "--cache-dir", cache, "-o", filepath.Join(dir, "out"), dir)
	if code != exitFailure || !strings.Contains(stderr, "over the firmware limit of 64MiB") || !strings.Contains(stderr, "--limit firmware=65MiB") {
		t.Fatalf("build with a 64 MiB + 4 KiB firmware: exit %d, stderr %q; want exit %d and the firmware limit with --limit firmware=65MiB", code, stderr, exitFailure)
	}
	code, _, stderr = runCLI(t, "build", "--limit", "firmware=65MiB", "--cache-dir", cache, "-o", filepath.Join(dir, "out"), dir)
	if code != exitFailure || strings.Contains(stderr, "limit") || !strings.Contains(stderr, "not a UEFI firmware image") {
		t.Fatalf("build --limit firmware=65MiB: exit %d, stderr %q; want exit %d past the limit, refusing the zeros as no firmware", code, stderr, exitFailure)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
