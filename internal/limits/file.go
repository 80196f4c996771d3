package limits

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/cocobuild/cocobuild/internal/fsinfo"
)

// Open opens path for reading when it is a regular file (a symbolic link
// to one is followed) of at most the value of l in force, and returns it
// with its size. A named pipe, socket or device is refused without
// blocking (it is opened non-blocking, then checked), and so is a file
// over the limit, before anything is read.
func (v *Values) Open(path string, l Limit) (*os.File, int64, error) {
	f, size, err := openRegular(path)
	if err != nil {
		return nil, 0, err
	}
	if err := v.Check(path, l, size); err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, size, nil
}

// openRegular opens path when it is a regular file, without blocking on a
// pipe or device.
func openRegular(path string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, &NotRegularError{Path: path, Mode: st.Mode()}
	}
	return f, st.Size(), nil
}

// ReadHead reads the first n bytes of a regular file of any size (all of
// it when shorter): a disk image's partition table, say. A pipe or device
// is refused as by Open.
func ReadHead(path string, n int) ([]byte, error) {
	f, size, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, min(int64(n), size))
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// ReadFile reads a whole regular file of at most the value of l in force,
// into one buffer of its size (see Open). A file that grows while it is
// read is an error, not a longer read.
func (v *Values) ReadFile(path string, l Limit) ([]byte, error) {
	f, size, err := v.Open(path, l)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: shorter than its size %d: it changed while it was read", path, size)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var one [1]byte
	if n, _ := f.Read(one[:]); n > 0 {
		return nil, fmt.Errorf("%s: longer than its size %d: it changed while it was read", path, size)
	}
	return b, nil
}

// NotRegularError says an input is not a regular file.
type NotRegularError struct {
	Path string
	Mode fs.FileMode
}

func (e *NotRegularError) Error() string {
	why := "a pipe or device could block or never end"
	if e.Mode.IsDir() {
		why = "this reads one file"
	}
	return fmt.Sprintf("%s is a %s, not a regular file: give a file (%s)", e.Path, fsinfo.Kind(e.Mode), why)
}
