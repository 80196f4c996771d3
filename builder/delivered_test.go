package builder

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/manifest"
)

// TestRebuildLinksUnchangedArtifacts: a rebuild into the same output
// directory links the artifacts the previous build left there, unchanged
// (the same inode, no copy), and copies from the cache, checked, any that
// was written to since: appended to, rewritten with the same size and
// mtime, replaced by another file or removed. The output is always the
// first build's.
func TestRebuildLinksUnchangedArtifacts(t *testing.T) {
	dir := t.TempDir()
	testenv.WriteKernelRecipe(t, dir, "")
	cache, out := t.TempDir(), filepath.Join(t.TempDir(), "out")
	ctx := context.Background()
	build := func() {
		t.Helper()
		if _, err := load(t, dir, cache, testOptions{}).Build(ctx, out, 2, nil); err != nil {
			t.Fatal(err)
		}
	}
	build()
	want := testenv.TreeDigest(t, out)
	m, err := manifest.Read(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Artifacts) == 0 {
		t.Fatal("no artifacts")
	}
	a := filepath.Join(out, filepath.FromSlash(m.Artifacts[0].Path))
	ino := func() uint64 {
		t.Helper()
		fi, err := os.Stat(a)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	first := ino()
	build()
	if got := ino(); got != first {
		t.Errorf("unchanged artifact: inode %d after the rebuild, want %d (linked, not copied)", got, first)
	}
	for _, tc := range []struct {
		name   string
		damage func()
	}{
		{"appended to", func() {
			f, err := os.OpenFile(a, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte("x"))
			f.Close()
		}},
		{"same size and mtime", func() {
			fi, err := os.Stat(a)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(a)
			b[0] ^= 0xff
			if err := os.WriteFile(a, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(a, fi.ModTime(), fi.ModTime()); err != nil {
				t.Fatal(err)
			}
		}},
		{"replaced", func() {
			b, _ := os.ReadFile(a)
			b[0] ^= 0xff
			tmp := a + ".new"
			if err := os.WriteFile(tmp, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, a); err != nil {
				t.Fatal(err)
			}
		}},
		{"removed", func() {
			if err := os.Remove(a); err != nil {
				t.Fatal(err)
			}
		}},
		{"record damaged", func() {
			abs, err := filepath.Abs(out)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(deliveredPath(cache, abs), []byte("{not json"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := ino()
			time.Sleep(10 * time.Millisecond) // a change time the damage can differ in
			tc.damage()
			build()
			if diff := cmp.Diff(want, testenv.TreeDigest(t, out)); diff != "" {
				t.Errorf("output after a rebuild (-first build +now):\n%s", diff)
			}
			if (tc.name == "appended to" || tc.name == "same size and mtime" || tc.name == "record damaged") && ino() == before {
				t.Errorf("the damaged artifact kept its inode %d: it was linked, not copied from the cache", before)
			}
		})
	}
}
