package limits

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
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
