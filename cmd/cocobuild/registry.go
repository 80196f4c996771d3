package main

import (
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

// newTEEs returns the TEEs cocobuild measures and publishes for: the one
// list of them. Adding a TEE is adding its registration here.
func newTEEs() tee.Set {
	return tee.NewSet(
		sev.TEE{},
		tdx.TEE{},
	)
}

// kinds returns, for builder.LoadOptions.Kinds, the block kinds of
// cocobuild: the only list of them. The input kind reads the recipe's lock
// file and fetches into the cache with the settings in; measure and
// publish blocks know the TEEs of tees; extra are more kinds (tests
// register theirs).
func kinds(in input.Options, tees tee.Set, extra []recipes.Kind) func(c *builder.Cache, recipeDir string) ([]recipes.Kind, error) {
	return func(c *builder.Cache, recipeDir string) ([]recipes.Kind, error) {
		inputKind, err := input.New(c, c.Dir, recipeDir, in)
		if err != nil {
			return nil, err
		}
		return append([]recipes.Kind{
			inputKind,
			kernel.Kind{},
			initramfs.Kind{},
			rootfs.Kind{},
			disk.Kind{},
			tee.MeasureKind{TEEs: tees, ReadVerified: builder.ReadVerified},
			publish.Kind{CacheDir: c.Dir, TEEs: tees},
		}, extra...), nil
	}
}
