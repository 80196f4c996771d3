// Package rootfs implements the `rootfs "NAME"` block: a root file system
// assembled from host directories, pinned tar archives and OCI images
// (local layouts or registry references pinned by digest, layers applied
// with their whiteouts), plus files, directories, symlinks, devices,
// exclusions and owner/mode overrides; made into an erofs, squashfs or
// ext4 image with the distribution's mkfs tools; and, with a verity block,
// protected by a dm-verity hash tree (package rootfs/verity).
//
// Every step is reproducible by construction:
//
//   - the tree is a sorted, reproducible tar (numeric owners, clamped
//     whole-second mtimes, hard links to the first path), so the image step
//     is keyed by its digest;
//   - host directories contribute names, contents, normalised modes
//     (0755/0644) and root ownership, never their times or owners;
//   - archive entries and links that would leave the root are errors that
//     name the entry;
//   - mkfs runs with a fixed environment, a UUID and hash seed derived from
//     the tree's digest, and the recipe epoch as SOURCE_DATE_EPOCH; what a
//     tool still takes from the clock (ext4 inode change times) is set to
//     the epoch afterwards;
//   - the verity salt and superblock UUID are derived from the image's
//     digest unless given, and a verity root's partition UUIDs are the
//     first and last 128 bits of its root hash (the Discoverable Partitions
//     Specification's convention).
//
// Tools: mkfs.erofs (erofs-utils), mksquashfs (squashfs-tools), mke2fs and
// debugfs (e2fsprogs). A missing one is a *ToolMissingError naming the
// Debian package.
package rootfs
