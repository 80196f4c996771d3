package tee

import (
	"errors"
	"fmt"
	"os"

	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/internal/termsafe"
)

// ReadInput reads the file a command-line flag names (flag without its
// dashes, e.g. "ovmf"), through the limits in force: a regular file of at
// most l, opened once and read into one buffer of its size. A pipe or
// device is refused at once, without blocking, except /dev/null, which
// reads as an empty file (sev-snp-measure's users pass it for an empty
// kernel or initrd). The error names the flag and, for size, the limit and
// the --limit that raises it; it prints the path escaped (termsafe), and
// errors.Is/As still find limits.ErrExceeded and the *limits.Error.
func ReadInput(lim *limits.Values, flag, path string, l limits.Limit) ([]byte, error) {
	b, err := lim.ReadFile(path, l)
	if err == nil {
		return b, nil
	}
	var nr *limits.NotRegularError
	if errors.As(err, &nr) && isDevNull(path) {
		return []byte{}, nil
	}
	return nil, Escaped(fmt.Errorf("--%s: %w", flag, err))
}

// isDevNull says whether path is the null device.
func isDevNull(path string) bool {
	st, err := os.Stat(path)
	if err != nil {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err == nil && os.SameFile(st, null)
}

// Escaped returns err with its message escaped for a terminal (see
// termsafe): for errors of a command's text output that quote input file
// names or firmware contents. errors.Is and errors.As see through it; nil
// stays nil.
func Escaped(err error) error {
	if err == nil {
		return nil
	}
	return &escapedError{err}
}

type escapedError struct{ err error }

func (e *escapedError) Error() string { return termsafe.Escape(e.err.Error()) }
func (e *escapedError) Unwrap() error { return e.err }

// Exact is the message unescaped, for --json (which escapes what it must).
func (e *escapedError) Exact() string { return e.err.Error() }
