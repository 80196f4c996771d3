package kernel

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRemoveTree(t *testing.T) {
	tests := []struct {
		name    string
		files   []string // below the tree; a trailing / makes a directory
		workers int
	}{
		{"empty", nil, 2},
		{"shallow", []string{"a", "b/", "c/d"}, 2},
		{"deep", []string{"linux/drivers/net/e1000/e1000.c", "linux/drivers/net/Kconfig", "linux/Makefile", "linux/arch/x86/boot/", "modules/lib/modules/6.12/kernel/a.ko", "top"}, 3},
		{"one worker", []string{"linux/drivers/net/x.c", "linux/kernel/fork.c"}, 1},
		{"no workers", []string{"linux/drivers/net/x.c"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			if err := os.MkdirAll(filepath.Join(outside, "keep"), 0o755); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(base, "work")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, f := range tc.files {
				p := filepath.Join(dir, f)
				if f[len(f)-1] == '/' {
					if err := os.MkdirAll(p, 0o755); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(f), 0o444); err != nil {
					t.Fatal(err)
				}
			}
			// Links to directories at and below the cut are removed, not followed.
			for _, l := range []string{"link", "linux/link", "linux/drivers/link"} {
				if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, l)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(outside, filepath.Join(dir, l)); err != nil {
					t.Fatal(err)
				}
			}
			if err := removeTree(dir, tc.workers); err != nil {
				t.Fatalf("removeTree: %v", err)
			}
			if _, err := os.Lstat(dir); !os.IsNotExist(err) {
				t.Errorf("after removeTree, Lstat(%s) = %v, want not exist", dir, err)
			}
			if _, err := os.Stat(filepath.Join(outside, "keep")); err != nil {
				t.Errorf("a link's target went with the tree: %v", err)
			}
		})
	}
}

func TestRemoveTreeMissing(t *testing.T) {
	if err := removeTree(filepath.Join(t.TempDir(), "nothing"), 2); err != nil {
		t.Errorf("removeTree of a missing directory = %v, want nil", err)
	}
}
