// Package registry composes cocobuild's block kinds: the one list of them,
// used by the command line and by the tests that load recipes as it does
// (internal/testkinds).
package registry

import (
	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/disk"
	"github.com/cocobuild/cocobuild/initramfs"
	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/kernel"
	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/recipes"
	"github.com/cocobuild/cocobuild/rootfs"
	"github.com/cocobuild/cocobuild/seimage"
	"github.com/cocobuild/cocobuild/tee"
	"github.com/cocobuild/cocobuild/uki"
)

// Kinds returns, for builder.LoadOptions.Kinds, the block kinds of
// cocobuild. The input kind reads the recipe's lock file and fetches into
// the cache with the settings in; measure and publish blocks know the TEEs
// of tees (internal/tees.All), and measure steps read their inputs within
// lim (nil: the default limits); extra are more kinds (tests register
// theirs).
func Kinds(in input.Options, tees tee.Set, lim *limits.Values, extra ...recipes.Kind) func(c *builder.Cache, recipeDir string) ([]recipes.Kind, error) {
	return func(c *builder.Cache, recipeDir string) ([]recipes.Kind, error) {
		inputKind, err := input.New(c, c.Dir, recipeDir, in)
		if err != nil {
			return nil, err
		}
		return append([]recipes.Kind{
			inputKind,
			kernel.Kind{},
			initramfs.Kind{},
			rootfs.Kind{Debian: inputKind.Debian()},
			uki.Kind{},
			disk.Kind{},
			seimage.Kind{},
			tee.MeasureKind{TEEs: tees, ReadVerified: builder.ReadVerified, Limits: lim},
			publish.Kind{CacheDir: c.Dir, TEEs: tees},
		}, extra...), nil
	}
}
