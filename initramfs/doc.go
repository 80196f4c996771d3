// Package initramfs implements the `initramfs "NAME"` block: a u-root
// busybox (built with mkuimage from the Go module cache), the guest agent
// (a Go package built with `go build -trimpath`, or a prebuilt file),
// kernel modules resolved with their dependencies, and the recipe's extra
// files, directories, symbolic links and device nodes, packed into a newc
// cpio archive that is identical byte for byte on every build: entries
// sorted, owned by 0:0, mtimes set to the recipe epoch; compressed with
// gzip, zstd or xz with fixed settings, or not at all.
//
// Inspect lists the entries of any initramfs (the base of `cocobuild
// inspect`).
package initramfs
