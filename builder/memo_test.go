package builder

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cocobuild/cocobuild/recipes"
)

// TestProbeMemo: a memoized value is computed once while its files stay as
// they were, and again after any change a probe could depend on.
func TestProbeMemo(t *testing.T) {
	c, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := c.probeMemo()
	m.racy = 0 // the test's files were all written before each computation
	dir := t.TempDir()
	file, missing := filepath.Join(dir, "a.go"), filepath.Join(dir, "go.work")
	write := func(p, s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(file, "package a")
	ctx := recipes.WithProbeMemo(context.Background(), m)
	runs := 0
	probe := func() string {
		t.Helper()
		v, err := recipes.Memoize(ctx, "k", func() (string, []string, error) {
			runs++
			b, err := os.ReadFile(file)
			return string(b), []string{file, dir, missing}, err
		})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	steps := []struct {
		name     string
		change   func()
		want     string
		wantRuns int
	}{
		{"first", func() {}, "package a", 1},
		{"unchanged", func() {}, "package a", 1},
		{"content", func() { write(file, "package b") }, "package b", 2},
		{"unchanged again", func() {}, "package b", 2},
		{"same content rewritten", func() { write(file, "package b") }, "package b", 3},
		{"mode", func() { os.Chmod(file, 0o600) }, "package b", 4},
		{"file added to the directory", func() { write(filepath.Join(dir, "b.go"), "package b") }, "package b", 5},
		{"missing file appears", func() { write(missing, "go 1.26") }, "package b", 6},
		{"missing file again", func() { os.Remove(missing) }, "package b", 7},
		{"unchanged at last", func() {}, "package b", 7},
	}
	for _, s := range steps {
		s.change()
		time.Sleep(10 * time.Millisecond) // the next computation starts after the change
		if got := probe(); got != s.want || runs != s.wantRuns {
			t.Errorf("%s: value %q after %d computations, want %q after %d", s.name, got, runs, s.want, s.wantRuns)
		}
	}
}

// TestProbeMemoRacy: a file changed during (or just before) a computation
// leaves nothing stored, and errors are not stored.
func TestProbeMemoRacy(t *testing.T) {
	c, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := recipes.WithProbeMemo(context.Background(), c.ProbeMemo())
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	runs := 0
	for range 2 {
		recipes.Memoize(ctx, "k", func() (string, []string, error) { runs++; return "v", []string{file}, nil })
	}
	if runs != 2 {
		t.Errorf("a file written just before the computation: %d computations, want 2 (not remembered)", runs)
	}
	runs = 0
	for range 2 {
		_, err := recipes.Memoize(ctx, "e", func() (string, []string, error) { runs++; return "", nil, errors.New("boom") })
		if err == nil {
			t.Error("Memoize dropped the error")
		}
	}
	if runs != 2 {
		t.Errorf("a failing computation ran %d times, want 2 (errors are not remembered)", runs)
	}
}

// TestProbeMemoCorrupt: a damaged or foreign entry is recomputed, not
// believed.
func TestProbeMemoCorrupt(t *testing.T) {
	c, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := c.probeMemo()
	m.racy = 0
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	m.Store("k", "v", []string{file}, time.Now())
	if v, ok := m.Lookup("k"); !ok || v != "v" {
		t.Fatalf("the intact entry: Lookup gave %q, %v; want v, true", v, ok)
	}
	for _, damage := range []string{"{not json", `{"key":"other","value":"w","files":[]}`, ""} {
		if err := os.WriteFile(m.path("k"), []byte(damage), 0o644); err != nil {
			t.Fatal(err)
		}
		if v, ok := m.Lookup("k"); ok {
			t.Errorf("entry %q: Lookup gave %q, want a miss", damage, v)
		}
	}
}
