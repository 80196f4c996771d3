package builder

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cocobuild/cocobuild/internal/atomicfile"
	"github.com/cocobuild/cocobuild/recipes"
)

// probeMemo is the cache's recipes.ProbeMemo: probes/<sha256 of key>.json
// holds the value and the state of each file it was computed from.
type probeMemo struct {
	dir string
	// racy is how close to the start of a computation a file's change
	// may be for the memo to distrust it: file system timestamps are
	// coarse, and a file written while it was read must not be taken as
	// the version the value came from.
	racy time.Duration
}

// ProbeMemo returns the memo of probe results kept in the cache.
func (c *Cache) ProbeMemo() recipes.ProbeMemo { return c.probeMemo() }

func (c *Cache) probeMemo() *probeMemo {
	return &probeMemo{dir: filepath.Join(c.Dir, "probes"), racy: 2 * time.Second}
}

// fileState is what a memo entry remembers of a file: enough that any
// write, replacement, or (for a directory) added or removed entry shows.
type fileState struct {
	Path   string `json:"path"`
	Exists bool   `json:"exists"`
	Size   int64  `json:"size,omitempty"`
	Mode   uint32 `json:"mode,omitempty"`
	Mtime  int64  `json:"mtime_ns,omitempty"`
	Ctime  int64  `json:"ctime_ns,omitempty"`
	Ino    uint64 `json:"ino,omitempty"`
	Dev    uint64 `json:"dev,omitempty"`
}

type memoEntry struct {
	Key   string      `json:"key"`
	Value string      `json:"value"`
	Files []fileState `json:"files"`
}

func statFile(p string) fileState {
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		return fileState{Path: p}
	}
	return fileState{Path: p, Exists: true, Size: st.Size, Mode: st.Mode, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(),
		Ino: st.Ino, Dev: st.Dev}
}

func (m *probeMemo) path(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(m.dir, hex.EncodeToString(sum[:])+".json")
}

// Lookup implements recipes.ProbeMemo.
func (m *probeMemo) Lookup(key string) (string, bool) {
	b, err := os.ReadFile(m.path(key))
	if err != nil {
		return "", false
	}
	var e memoEntry
	if json.Unmarshal(b, &e) != nil || e.Key != key {
		return "", false
	}
	for _, f := range e.Files {
		if statFile(f.Path) != f {
			return "", false
		}
	}
	return e.Value, true
}

// Store implements recipes.ProbeMemo. Failing to store only costs a
// recomputation next time, so errors are dropped.
func (m *probeMemo) Store(key, value string, files []string, started time.Time) {
	e := memoEntry{Key: key, Value: value}
	limit := started.Add(-m.racy).UnixNano()
	for _, p := range files {
		s := statFile(p)
		if s.Exists && (s.Mtime >= limit || s.Ctime >= limit) {
			return // changed while (or just before) it was read
		}
		e.Files = append(e.Files, s)
	}
	b, err := json.Marshal(e)
	if err != nil || os.MkdirAll(m.dir, 0o755) != nil {
		return
	}
	atomicfile.WriteFile(m.path(key), b, 0o644)
}
