package builder

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"

	"github.com/cocobuild/cocobuild/internal/atomicfile"
	"github.com/cocobuild/cocobuild/manifest"
)

// delivered is what a build recorded of the artifacts it left in an
// output directory, kept in the cache (outputs/<sha256 of OUT's path>.json,
// never in OUT, whose contents are the build's): for each artifact path,
// its digest and the identity the file had once OUT was complete. A later
// build into the same directory links an artifact whose file still has
// that identity into its stage instead of copying and hashing it again
// (a no-op rebuild of a guest with a Debian root copied 400 MB). Any write
// to the file since, of its content, mode, owner or times, or a file put
// in its place, changes its inode or change time, which no one but the
// kernel sets: such a file is copied from the cache and checked as always.
type delivered map[string]fileIdentity

// fileIdentity is a delivered file's digest and identity.
type fileIdentity struct {
	SHA256 string `json:"sha256"`
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
	Size   int64  `json:"size"`
	Mode   uint32 `json:"mode"`
	Mtime  int64  `json:"mtime_ns"`
	Ctime  int64  `json:"ctime_ns"`
}

// maxDeliveredRecord bounds what readDelivered reads.
const maxDeliveredRecord = 16 << 20

// deliveredPath is where the record of the output directory out (absolute)
// is kept in the cache at dir.
func deliveredPath(cacheDir, out string) string {
	sum := sha256.Sum256([]byte(out))
	return filepath.Join(cacheDir, "outputs", hex.EncodeToString(sum[:])+".json")
}

// readDelivered reads a record; a missing, oversized or unreadable one is
// no record.
func readDelivered(path string) delivered {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > maxDeliveredRecord {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var d delivered
	if json.Unmarshal(b, &d) != nil {
		return nil
	}
	return d
}

// identify returns the identity of the regular file at p.
func identify(p, sum string) (fileIdentity, bool) {
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return fileIdentity{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileIdentity{}, false
	}
	return fileIdentity{SHA256: sum, Dev: uint64(st.Dev), Ino: st.Ino, Size: fi.Size(), Mode: uint32(fi.Mode()),
		Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano()}, true
}

// unchanged says whether the file at p is the one the record describes,
// with the digest want.
func (d delivered) unchanged(p, rel, want string) bool {
	rec, ok := d[rel]
	if !ok || rec.SHA256 != want {
		return false
	}
	now, ok := identify(p, want)
	return ok && now == rec
}

// recordDelivered writes the record of out's artifacts (m's) as they are
// now. A failure loses only the shortcut of the next build.
func recordDelivered(path, out string, m *manifest.Manifest) {
	d := delivered{}
	for _, a := range m.Artifacts {
		if id, ok := identify(filepath.Join(out, filepath.FromSlash(a.Path)), a.SHA256); ok {
			d[a.Path] = id
		}
	}
	b, err := json.Marshal(d)
	if err != nil || os.MkdirAll(filepath.Dir(path), 0o755) != nil {
		return
	}
	_ = atomicfile.WriteFile(path, b, 0o644)
}
