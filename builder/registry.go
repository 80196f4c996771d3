package builder

import (
	"github.com/cocobuild/cocobuild/disk"
	"github.com/cocobuild/cocobuild/initramfs"
	"github.com/cocobuild/cocobuild/kernel"
	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/recipes"
	"github.com/cocobuild/cocobuild/rootfs"
)

// NewRegistry returns the block kinds of cocobuild: the builder's own
// (input) and those of the packages that implement the others.
func NewRegistry(env *Env, extra ...recipes.Kind) *recipes.Registry {
	return recipes.NewRegistry(append([]recipes.Kind{
		InputKind{Env: env},
		kernel.Kind{},
		initramfs.Kind{},
		rootfs.Kind{},
		disk.Kind{},
		MeasureKind{},
		publish.Kind{CacheDir: env.Cache.Dir},
	}, extra...)...)
}
