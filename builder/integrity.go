package builder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cocobuild/cocobuild/internal/filecopy"
	"github.com/cocobuild/cocobuild/recipes"
)

// CorruptError says that a cached file's bytes are not those its record
// states (the digest in its step's result.json): the cache was tampered
// with or the disk corrupted it. Build evicts the entry and rebuilds the
// step; nothing is copied into OUT or signed from such a file.
type CorruptError struct {
	Path string // the file, inside the cache
	Want string // the digest its record states
	Got  string // the digest of its bytes now ("" when it is missing)
}

func (e *CorruptError) Error() string {
	if e.Got == "" {
		return fmt.Sprintf("cached file %s is missing (its record states sha256 %s)", e.Path, e.Want)
	}
	return fmt.Sprintf("cached file %s has sha256 %s, its record states %s", e.Path, e.Got, e.Want)
}

// hashingCopy copies src to w while hashing it and checks the digest
// against want: a mismatch is a *CorruptError.
func hashingCopy(w io.Writer, src, want string) error {
	in, err := os.Open(src)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return &CorruptError{Path: src, Want: want}
		}
		return err
	}
	defer in.Close()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(w, h), in); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return &CorruptError{Path: src, Want: want, Got: got}
	}
	return nil
}

// verifyFile hashes a cached file and compares it with the digest its
// record states.
func verifyFile(path, want string) error { return hashingCopy(io.Discard, path, want) }

// ReadVerified reads a cached file whose digest is recorded, checking the
// bytes it returns against the record.
func ReadVerified(a recipes.Artifact) ([]byte, error) {
	var b bytes.Buffer
	if err := hashingCopy(&b, a.Path, a.SHA256); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// copyVerified copies src to dst (a new file) with mode perm, hashing the
// bytes as they are copied: when they are not want, dst is removed and the
// error is a *CorruptError.
func copyVerified(src, dst string, perm os.FileMode, want string) error {
	c, err := filecopy.Copy(src, dst, perm)
	var pe *fs.PathError
	switch {
	case errors.As(err, &pe) && pe.Path == src && errors.Is(err, fs.ErrNotExist):
		return &CorruptError{Path: src, Want: want}
	case err != nil:
		return err
	case c.SHA256 != want:
		os.Remove(dst)
		return &CorruptError{Path: src, Want: want, Got: c.SHA256}
	}
	return nil
}

// verifyUsed checks, before a step runs, the cached files it reads: every
// file of the results of the steps it comes after and every input
// artifact. A step that runs must not build on bytes its records do not
// state, or its own result (and everything signed from it) would carry the
// damage under a key that looks right. Cache hits that only feed other
// cache hits are not rehashed: their bytes are checked where they are
// used, when copied into OUT or read.
func verifyUsed(s *recipes.Step, after map[string]*recipes.Result) error {
	for _, id := range s.After {
		r := after[id]
		if r == nil {
			continue
		}
		for _, f := range r.Files {
			if err := verifyFile(filepath.Join(r.Dir, filepath.FromSlash(f.Path)), f.SHA256); err != nil {
				return err
			}
		}
	}
	for _, in := range s.Inputs {
		if in.Path == "" || in.SHA256 == "" {
			continue
		}
		if err := verifyFile(in.Path, in.SHA256); err != nil {
			return err
		}
	}
	return nil
}

// EntryOf returns the step key whose cache entry holds path, if any.
func (c *Cache) EntryOf(path string) (string, bool) {
	rel, err := filepath.Rel(filepath.Join(c.Dir, "steps"), path)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return "", false
	}
	key, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
	return key, key != ""
}

// Evict removes the cache entry of key, so that the next build runs its
// step again, and says whether there was one. The entry is renamed away
// first, under the step's lock, so that no other process sees it
// half-removed, then removed.
func (c *Cache) Evict(ctx context.Context, key string) (bool, error) {
	unlock, err := c.LockStep(ctx, key, nil)
	if err != nil {
		return false, err
	}
	defer unlock()
	work, err := c.TempDir("evict-" + key[:min(12, len(key))])
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(work)
	if err := os.Rename(c.stepDir(key), filepath.Join(work, "entry")); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil // none, or evicted already (by another process)
		}
		return false, fmt.Errorf("evicting step %.12s from the cache: %w", key, err)
	}
	return true, nil
}

// RemoveBlob removes the download with digest sha from the cache: renamed
// away first, so that no other process reads it half-removed.
func (c *Cache) RemoveBlob(sha string) error {
	work, err := c.TempDir("evict-blob")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := os.Rename(c.BlobPath(sha), filepath.Join(work, "blob")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
