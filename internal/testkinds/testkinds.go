// Package testkinds loads recipes in the tests of the block kinds (and of
// repro and input) with every block kind, composed as the command line
// composes them (cmd/cocobuild/registry.go), which tests cannot import.
package testkinds

import (
	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/disk"
	"github.com/cocobuild/cocobuild/initramfs"
	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/kernel"
	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/recipes"
	"github.com/cocobuild/cocobuild/rootfs"
)

// LoadOptions are builder.LoadOptions with the cache in cache (""
// for the default) and every block kind, the input kind with o.
func LoadOptions(cache string, o input.Options) builder.LoadOptions {
	return builder.LoadOptions{CacheDir: cache, Kinds: func(c *builder.Cache, recipeDir string) ([]recipes.Kind, error) {
		in, err := input.New(c, c.Dir, recipeDir, o)
		if err != nil {
			return nil, err
		}
		return []recipes.Kind{in, kernel.Kind{}, initramfs.Kind{}, rootfs.Kind{}, disk.Kind{}, builder.MeasureKind{},
			publish.Kind{CacheDir: c.Dir}}, nil
	}}
}
