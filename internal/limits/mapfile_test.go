package limits

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cocobuild/cocobuild/internal/units"
)

func TestMapFile(t *testing.T) {
	dir := t.TempDir()
	content := bytes.Repeat([]byte("firmware"), 3000) // more than a page, not a whole number of them
	for _, tc := range []struct {
		name string
		data []byte
	}{{"small", []byte("firmware")}, {"pages", content}, {"empty", []byte{}}} {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, tc.data, 0o644); err != nil {
			t.Fatal(err)
		}
		var v Values
		m, err := v.MapFile(path, Firmware)
		if err != nil {
			t.Fatalf("MapFile(%s): %v", tc.name, err)
		}
		if m.Data == nil || !bytes.Equal(m.Data, tc.data) {
			t.Errorf("MapFile(%s).Data = %d bytes (nil: %v), want the file's %d", tc.name, len(m.Data), m.Data == nil, len(tc.data))
		}
		if err := m.Unchanged(); err != nil {
			t.Errorf("MapFile(%s).Unchanged() = %v, want nil", tc.name, err)
		}
		if err := m.Close(); err != nil {
			t.Errorf("MapFile(%s).Close() = %v", tc.name, err)
		}
		if err := m.Close(); err != nil {
			t.Errorf("MapFile(%s): second Close() = %v, want nil", tc.name, err)
		}
	}
}

func TestMapFileRefuses(t *testing.T) {
	dir := t.TempDir()
	sparse := filepath.Join(dir, "sparse")
	if err := os.WriteFile(sparse, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(sparse, 8*units.GiB); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	var v Values
	for _, tc := range []struct {
		path, want string
		is         error
	}{
		{sparse, "over the firmware limit", ErrExceeded},
		{fifo, "is a named pipe, not a regular file", nil},
		{"/dev/zero", "is a device, not a regular file", nil},
		{dir, "is a directory, not a regular file", nil},
		{filepath.Join(dir, "missing"), "no such file", nil},
	} {
		start := time.Now()
		m, err := v.MapFile(tc.path, Firmware)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("MapFile(%s) = %v, %v; want an error with %q", tc.path, m, err, tc.want)
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("MapFile(%s) = %v, want errors.Is %v", tc.path, err, tc.is)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("MapFile(%s) took %v: refusing must not read or block", tc.path, d)
		}
	}
}

// TestMapFileUnchanged checks that Unchanged notices a mapped file that was
// appended to, rewritten in place with the same size, replaced or removed.
func TestMapFileUnchanged(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(path string) error
	}{
		{"appended", func(p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Write([]byte("more"))
			return err
		}},
		{"rewritten, same size and mtime", func(p string) error {
			st, err := os.Stat(p)
			if err != nil {
				return err
			}
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			if _, err := f.WriteAt([]byte("X"), 0); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			return os.Chtimes(p, st.ModTime(), st.ModTime()) // the ctime still moves
		}},
		{"replaced", func(p string) error {
			tmp := p + ".new"
			if err := os.WriteFile(tmp, []byte("firmware"), 0o644); err != nil {
				return err
			}
			return os.Rename(tmp, p)
		}},
		{"removed", os.Remove},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "fw")
			if err := os.WriteFile(path, []byte("firmware"), 0o644); err != nil {
				t.Fatal(err)
			}
			var v Values
			m, err := v.MapFile(path, Firmware)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			time.Sleep(10 * time.Millisecond) // a coarse file system clock still moves
			if err := tc.change(path); err != nil {
				t.Fatal(err)
			}
			if err := m.Unchanged(); err == nil {
				t.Errorf("Unchanged() = nil after the file was %s, want an error", tc.name)
			}
		})
	}
}
