// Package testkinds loads recipes in the tests of the block kinds (and of
// tee, repro and input) with every block kind and TEE, composed as the
// command line composes them (internal/registry, internal/tees).
package testkinds

import (
	"errors"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/registry"
	"github.com/cocobuild/cocobuild/internal/tees"
	"github.com/cocobuild/cocobuild/recipes"
	"github.com/cocobuild/cocobuild/tee"
)

// TEEs returns the TEEs cocobuild registers.
func TEEs() tee.Set { return tees.All() }

// LoadOptions are builder.LoadOptions with the cache in cache (""
// for the default), every block kind and TEE, the input kind with o, and
// the kinds of extra.
func LoadOptions(cache string, o input.Options, extra ...recipes.Kind) builder.LoadOptions {
	return builder.LoadOptions{CacheDir: cache, Kinds: registry.Kinds(o, tees.All(), extra...)}
}

// Load loads the recipe in dir with every block kind and TEE, the cache in
// cache and the input kind with o; a recipe error fails the test, shown
// against its sources.
func Load(t testing.TB, dir, cache string, o input.Options) *builder.Loaded {
	t.Helper()
	l, err := builder.Load(dir, LoadOptions(cache, o))
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
