// Package testkinds loads recipes in the tests of the block kinds (and of
// tee, repro and input) with every block kind and TEE, composed as the
// command line composes them (cmd/cocobuild/registry.go), which tests
// cannot import.
package testkinds

import (
	"errors"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/disk"
	"github.com/cocobuild/cocobuild/initramfs"
	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/kernel"
	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/recipes"
	"github.com/cocobuild/cocobuild/rootfs"
	"github.com/cocobuild/cocobuild/tee"
	"github.com/cocobuild/cocobuild/tee/sev"
	"github.com/cocobuild/cocobuild/tee/tdx"
)

// TEEs returns the TEEs cocobuild registers.
func TEEs() tee.Set { return tee.NewSet(sev.TEE{}, tdx.TEE{}) }

// LoadOptions are builder.LoadOptions with the cache in cache (""
// for the default), every block kind and TEE, the input kind with o, and
// the kinds of extra.
func LoadOptions(cache string, o input.Options, extra ...recipes.Kind) builder.LoadOptions {
	tees := TEEs()
	return builder.LoadOptions{CacheDir: cache, Kinds: func(c *builder.Cache, recipeDir string) ([]recipes.Kind, error) {
		in, err := input.New(c, c.Dir, recipeDir, o)
		if err != nil {
			return nil, err
		}
		return append([]recipes.Kind{in, kernel.Kind{}, initramfs.Kind{}, rootfs.Kind{}, disk.Kind{},
			tee.MeasureKind{TEEs: tees, ReadVerified: builder.ReadVerified},
			publish.Kind{CacheDir: c.Dir, TEEs: tees}}, extra...), nil
	}}
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
