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

// Inputs are the input files of one command, mapped into memory rather
// than read (limits.MapFile): the measure commands hash 20 MB of firmware,
// kernel and initrd, and a copy of them costs about as much as the process
// start. The zero value is ready to use; Close unmaps them all.
type Inputs struct {
	files []mappedInput
}

type mappedInput struct {
	flag string
	m    *limits.Mapped
}

// Map returns the bytes of the file a flag names, with ReadInput's checks,
// /dev/null and errors. They stay valid until Close: no goroutine may still
// read them then.
func (in *Inputs) Map(lim *limits.Values, flag, path string, l limits.Limit) ([]byte, error) {
	m, err := lim.MapFile(path, l)
	if err != nil {
		var nr *limits.NotRegularError
		if errors.As(err, &nr) && isDevNull(path) {
			return []byte{}, nil
		}
		return nil, Escaped(fmt.Errorf("--%s: %w", flag, err))
	}
	in.files = append(in.files, mappedInput{flag, m})
	return m.Data, nil
}

// Unchanged returns an error naming the first input written, truncated or
// replaced since it was mapped: call it after the last read of their bytes,
// before printing what was computed from them.
func (in *Inputs) Unchanged() error {
	for _, f := range in.files {
		if err := f.m.Unchanged(); err != nil {
			return Escaped(fmt.Errorf("--%s: %w", f.flag, err))
		}
	}
	return nil
}

// Close unmaps every input.
func (in *Inputs) Close() {
	for _, f := range in.files {
		_ = f.m.Close() // munmap of a mapping we made fails only on a bug
	}
	in.files = nil
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
