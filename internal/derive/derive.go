// Package derive makes the identifiers cocobuild derives from content
// (file system, partition, disk and verity superblock UUIDs), so that the
// same content always gets the same identifiers.
package derive

import "github.com/google/uuid"

// namespace is the UUID namespace of every identifier cocobuild derives
// from content (name-based, SHA-1, RFC 9562 version 5).
var namespace = uuid.MustParse("5b0c0c0b-7b1d-4b8e-9c0d-636f636f6275")

// UUID returns a name-based UUID for the given purpose and content
// digest: the same inputs always give the same UUID.
func UUID(purpose, digest string) uuid.UUID {
	return uuid.NewSHA1(namespace, []byte(purpose+"\x00"+digest))
}
