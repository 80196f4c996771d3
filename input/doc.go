// Package input is the `input` block kind: one pinned source of bytes (a
// local file, a URL, or a Debian package from the host's apt or a named
// suite, whole or one file or directory of it), fetched into the build
// cache and checked against its sha256 pin. It also holds the lock file,
// cocobuild.lock.hcl, that records resolved pins (Lock, Pin, ResolvePin,
// UpdateLock for `cocobuild lock`).
//
// The kind is made with New, from the cache it fetches into (the part of
// builder.Cache it needs, Cache) and the invocation's Options; the command
// line composes it with the other kinds.
package input
