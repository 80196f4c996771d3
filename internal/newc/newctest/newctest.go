// Package newctest writes newc (cpio) archives as hostile inputs have
// them, for the tests of the readers: headers with any sizes, archives of
// many entries.
package newctest

import (
	"bytes"
	"fmt"
)

// Header is a newc header as a hostile input may have it: any size and
// name size, followed by name (not padded).
func Header(ino, mode, size, nameSize uint64, name string) []byte {
	s := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x", ino, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, nameSize, 0)
	return append([]byte(s), name...)
}

// Archive is a newc archive of regular files (mode 0644) named names, the
// i-th holding data(i), in the order given, with the trailer.
func Archive(names []string, data func(i int) string) []byte {
	var buf bytes.Buffer
	pad := func() { buf.Write(make([]byte, (4-buf.Len()%4)%4)) }
	for i, n := range names {
		d := data(i)
		buf.Write(Header(uint64(i+1), 0o100644, uint64(len(d)), uint64(len(n)+1), n+"\x00"))
		pad()
		buf.WriteString(d)
		pad()
	}
	buf.Write(Header(0, 0, 0, 11, "TRAILER!!!\x00"))
	pad()
	return buf.Bytes()
}
