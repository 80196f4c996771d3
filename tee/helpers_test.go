package tee_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/testkinds"
	"github.com/cocobuild/cocobuild/recipes"
)

// testTEEs are the TEEs cocobuild registers (cmd/cocobuild/registry.go).
var testTEEs = testkinds.TEEs()

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// load loads the recipe in dir with the registered TEEs and the cache in
// cache; recipe diagnostics fail the test, shown against their sources.
func load(t testing.TB, dir, cache string, opts input.Options) *builder.Loaded {
	t.Helper()
	l, err := builder.Load(dir, testkinds.LoadOptions(cache, opts))
	if err != nil {
		var de *builder.DiagError
		if errors.As(err, &de) {
			var sb strings.Builder
			recipes.WriteDiagnostics(&sb, de.Files, de.Diags)
			t.Fatalf("loading recipe:\n%s", sb.String())
		}
		t.Fatal(err)
	}
	return l
}
