package builder

import (
	"github.com/cocobuild/cocobuild/disk"
	"github.com/cocobuild/cocobuild/initramfs"
	"github.com/cocobuild/cocobuild/kernel"
	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/recipes"
	"github.com/cocobuild/cocobuild/rootfs"
	"github.com/cocobuild/cocobuild/tee"
)

// NewRegistry returns the block kinds of cocobuild: the builder's own
// (input) and those of the packages that implement the others, measuring
// and publishing for the TEEs of tees.
func NewRegistry(env *Env, tees tee.Set, extra ...recipes.Kind) *recipes.Registry {
	return recipes.NewRegistry(append([]recipes.Kind{
		InputKind{Env: env},
		kernel.Kind{},
		initramfs.Kind{},
		rootfs.Kind{},
		disk.Kind{},
		tee.MeasureKind{TEEs: tees, ReadVerified: readVerified},
		publish.Kind{CacheDir: env.Cache.Dir, TEEs: tees},
	}, extra...)...)
}
