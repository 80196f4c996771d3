package builder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cocobuild/cocobuild/internal/atomicfile"
	"github.com/cocobuild/cocobuild/internal/filecopy"
	"github.com/cocobuild/cocobuild/internal/filehash"
	"github.com/cocobuild/cocobuild/recipes"
)

// Cache is the content-addressed store of step results and downloads:
//
//	steps/<key>/result.json  the result's file list and metadata
//	steps/<key>/files/…      the result's files
//	blobs/sha256/<digest>    downloaded inputs, by digest
//	tmp/<pid>-…              work in progress, renamed into place when complete
//	apt/<suite>-<hash>/      apt's sources, lists and lock for deb inputs of another suite
//
// An entry appears by rename only when complete, so a killed build leaves
// nothing that a later build takes as a result.
type Cache struct {
	Dir string
}

// DefaultCacheDir is $XDG_CACHE_HOME/cocobuild (or ~/.cache/cocobuild).
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding a cache directory: %w (give one with --cache-dir)", err)
	}
	return filepath.Join(d, "cocobuild"), nil
}

// OpenCache creates the cache layout under dir and removes work left by
// processes that no longer run. A relative dir is resolved against the
// working directory now: every path the cache hands out (step results,
// work directories) is absolute, so that tools run in other directories
// (the go command in the module, for the initramfs agent) find them.
func OpenCache(dir string) (*Cache, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("cache directory: %w", err)
	}
	for _, d := range []string{"steps", "blobs/sha256", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("creating cache directory: %w", err)
		}
	}
	c := &Cache{Dir: dir}
	c.removeStaleTemps()
	return c, nil
}

func (c *Cache) removeStaleTemps() {
	ents, _ := os.ReadDir(filepath.Join(c.Dir, "tmp"))
	for _, e := range ents {
		pidStr, _, _ := strings.Cut(e.Name(), "-")
		pid, err := strconv.Atoi(pidStr)
		if err == nil && pid != os.Getpid() && processAlive(pid) {
			continue
		}
		if err == nil && pid == os.Getpid() {
			continue
		}
		os.RemoveAll(filepath.Join(c.Dir, "tmp", e.Name()))
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// TempDir makes a fresh directory for work in progress.
func (c *Cache) TempDir(prefix string) (string, error) {
	return os.MkdirTemp(filepath.Join(c.Dir, "tmp"), fmt.Sprintf("%d-%s-", os.Getpid(), prefix))
}

func (c *Cache) stepDir(key string) string { return filepath.Join(c.Dir, "steps", key) }

// Lookup returns the cached result for key.
func (c *Cache) Lookup(key string) (*recipes.Result, bool) {
	b, err := os.ReadFile(filepath.Join(c.stepDir(key), "result.json"))
	if err != nil {
		return nil, false
	}
	r, err := c.decodeResult(key, b)
	if err != nil {
		return nil, false
	}
	return r, true
}

// decodeResult reads the result.json of the entry for key. Store and
// Lookup both return what it gives, so that a step's metadata has the same
// Go types (JSON numbers as float64, objects as map[string]any) whether the
// step ran or its result came from the cache.
func (c *Cache) decodeResult(key string, b []byte) (*recipes.Result, error) {
	var r recipes.Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	if r.Key != key {
		return nil, fmt.Errorf("result.json is the result of %s, not of %s", r.Key, key)
	}
	r.Dir = filepath.Join(c.stepDir(key), "files")
	return &r, nil
}

// Store hashes the files below work/files, writes result.json and renames
// work to the entry for key. When another process stored the same key
// first, its entry is kept and work is removed. The result is what Lookup
// of key returns: result.json as read back.
func (c *Cache) Store(key, work string, meta map[string]any) (*recipes.Result, error) {
	files, err := hashTree(filepath.Join(work, "files"))
	if err != nil {
		return nil, fmt.Errorf("hashing step output: %w", err)
	}
	r := &recipes.Result{Key: key, Files: files, Meta: meta}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding step result: %w (a step's metadata must be JSON-encodable)", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(work, "result.json"), b, 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(work, c.stepDir(key)); err != nil {
		if got, ok := c.Lookup(key); ok {
			os.RemoveAll(work)
			return got, nil
		}
		return nil, fmt.Errorf("storing step result: %w", err)
	}
	return c.decodeResult(key, b)
}

// hashTree lists the regular files below root, sorted, with their digests.
func hashTree(root string) ([]recipes.FileDigest, error) {
	var out []recipes.FileDigest
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == root {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("%s: only regular files may be step outputs", p)
		}
		// Modes are normalised to 0644 or 0755, so the umask of whoever ran
		// the step never reaches a key or an output.
		mode := os.FileMode(0o644)
		if info.Mode().Perm()&0o111 != 0 {
			mode = 0o755
		}
		if info.Mode().Perm() != mode {
			if err := os.Chmod(p, mode); err != nil {
				return err
			}
		}
		sum, size, err := fileSHA256(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, recipes.FileDigest{Path: filepath.ToSlash(rel), SHA256: sum, Size: size, Mode: uint32(mode)})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, err
}

// fileSHA256 returns the hex sha256 and size of a file.
func fileSHA256(p string) (string, int64, error) { return filehash.SHA256(p) }

// BlobPath is where a download with the given digest is kept.
func (c *Cache) BlobPath(sha string) string { return filepath.Join(c.Dir, "blobs", "sha256", sha) }

// LockStep takes the lock of a step key, shared by every process that uses
// the cache: two builds that need the same missing step do not both run
// it; the second waits (calling waiting once) and then finds the result.
// The lock is the kernel's (flock), so it dies with its process. It
// returns the function that releases it.
func (c *Cache) LockStep(ctx context.Context, key string, waiting func()) (func(), error) {
	dir := filepath.Join(c.Dir, "locks")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the cache's lock directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, key), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking step %.12s in the cache: %w", key, err)
	}
	fd := int(f.Fd())
	for told := false; ; {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(fd, syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking step %.12s in the cache: %w", key, err)
		}
		if !told && waiting != nil {
			waiting()
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Import copies the entry of key from another cache into c (a no-op when
// c has it), so that a build with c takes that step as cached. The copy is
// made in c's tmp and renamed into place, like a built result.
func (c *Cache) Import(from *Cache, key string) error {
	if _, ok := c.Lookup(key); ok {
		return nil
	}
	if _, ok := from.Lookup(key); !ok {
		return fmt.Errorf("step %.12s is not in the cache %s", key, from.Dir)
	}
	work, err := c.TempDir("import")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	dst := filepath.Join(work, "entry")
	if err := copyTree(from.stepDir(key), dst); err != nil {
		return fmt.Errorf("copying step %.12s from %s: %w", key, from.Dir, err)
	}
	if err := os.Rename(dst, c.stepDir(key)); err != nil {
		if _, ok := c.Lookup(key); ok {
			return nil
		}
		return fmt.Errorf("importing step %.12s: %w", key, err)
	}
	return nil
}

// copyTree copies the directories and regular files below src to dst with
// their modes.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Mkdir(target, info.Mode().Perm()|0o700)
		case info.Mode().IsRegular():
			_, err := filecopy.Copy(p, target, info.Mode().Perm())
			return err
		default:
			return fmt.Errorf("%s: not a regular file or directory", p)
		}
	})
}

// ImportBlocks copies into c, from another cache, the entries of the steps
// (as a build's report lists them) of the named blocks (TYPE.NAME), so
// that a build with c takes those blocks as cached.
func ImportBlocks(c, from *Cache, steps []StepReport, blocks []string) error {
	for _, blk := range blocks {
		found := false
		for _, s := range steps {
			if s.Block != blk || s.Key == "" { // post-build work has no cache entry
				continue
			}
			found = true
			if err := c.Import(from, s.Key); err != nil {
				return fmt.Errorf("--reuse %s: %w", blk, err)
			}
		}
		if !found {
			return fmt.Errorf("--reuse %s: the recipe has no block %s with steps (give blocks as TYPE.NAME, e.g. kernel.guest)", blk, blk)
		}
	}
	return nil
}
