package tee_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/testkinds"
)

// testTEEs are the TEEs cocobuild registers.
var testTEEs = testkinds.TEEs()

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// load loads the recipe in dir with the registered TEEs and the cache in
// cache; recipe diagnostics fail the test, shown against their sources.
func load(t testing.TB, dir, cache string, opts input.Options) *builder.Loaded {
	t.Helper()
	return testkinds.Load(t, dir, cache, opts)
}
