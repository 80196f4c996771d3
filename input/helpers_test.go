package input_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/internal/testkinds"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// writeRecipe writes a recipe directory with a fake kernel as a file input.
func writeRecipe(t testing.TB, dir, extra string) (kernel []byte) {
	t.Helper()
	kernel = testenv.FakeBzImage("6.1.0-test", 256*1024)
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
%s`, sha(kernel), extra)
	if err := os.WriteFile(filepath.Join(dir, "r.hcl"), []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	return kernel
}

func load(t testing.TB, dir, cache string, o input.Options) *builder.Loaded {
	t.Helper()
	return testkinds.Load(t, dir, cache, o)
}

// updateLock is `cocobuild lock` (-update with update) on the recipe in
// dir: its errors as the command shows them.
func updateLock(ctx context.Context, t testing.TB, dir, cache string, update bool) (*input.Lock, error) {
	t.Helper()
	l := load(t, dir, cache, input.Options{Resolving: true})
	lock, err := input.UpdateLock(ctx, l.Recipe, update)
	if err != nil {
		return nil, l.Diagnose(err)
	}
	return lock, nil
}

// flipByte changes one byte in the middle of a file.
func flipByte(b []byte) []byte {
	b = append([]byte(nil), b...)
	b[len(b)/2] ^= 0x01
	return b
}
