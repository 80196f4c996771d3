// Package recipes loads and evaluates cocobuild recipes: HCL files that say
// which pinned inputs enter a build and which blocks (kernel, initramfs,
// rootfs, disk, measure, publish, …) turn them into artifacts.
//
// The package knows the language — variables, locals, functions, references
// between blocks, diagnostics — but no block kind by name. A kind is
// registered by the package that implements it through the Kind interface;
// its decoded blocks plan the Steps that the builder runs.
//
// A loaded Recipe records what decided its build (Sources: its files, the
// var files, the lock file, the files its functions read, its variables'
// values) and digests them (Digest), the recipe digest of the manifest.
package recipes
