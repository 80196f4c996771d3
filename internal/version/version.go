// Package version holds cocobuild's version, the same in every build of one
// source tree so that outputs that carry it stay reproducible.
package version

// Version is cocobuild's release version.
const Version = "0.1.0-dev"
