package feed

import (
	"fmt"
	"io"

	"github.com/cocobuild/cocobuild/internal/limits"
)

// Every document a feed reader returns (an index, a blob) is read within
// the document limit in force (limits.Document, raised with --limit
// document=SIZE): from a directory feed through limits.ReadFile, which
// refuses a named pipe, a device or a file over the limit before reading;
// from a server or a registry through readBounded, which refuses a stated
// size (Content-Length, an OCI descriptor's size) over the limit before
// reading, and stops a body that runs past it.

// readBounded reads r, whose size is stated as size (-1: unknown), within
// the document limit of lim: a stated size over it is refused before
// anything is read, and a body that runs past it fails once it has read one
// byte more than the limit. what names the input in the error.
func readBounded(lim *limits.Values, what string, size int64, r io.Reader) ([]byte, error) {
	max := lim.Get(limits.Document)
	if size >= 0 {
		if err := lim.Check(what, limits.Document, size); err != nil {
			return nil, err
		}
	}
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if int64(len(b)) > max {
		return nil, &limits.Error{What: what, Limit: limits.Document, Max: max, Got: int64(len(b)), AtLeast: true}
	}
	return b, nil
}
