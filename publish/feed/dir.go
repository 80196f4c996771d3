package feed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/cocobuild/cocobuild/internal/atomicfile"
	"github.com/cocobuild/cocobuild/internal/limits"
)

// Dir is a feed in a directory:
//
//	PATH/index.json             the releases, oldest first
//	PATH/blobs/sha256/HEX       the documents, by digest
//
// Appending writes the blobs first and then renames a new index.json into
// place, under an exclusive lock, so readers (and `cocobuild serve`) see the
// old or the new index, never a release whose blobs are missing.
//
// Its index and blobs are read within the document limit of Limits (nil:
// the defaults), and only when they are regular files.
type Dir struct {
	Path string
	// Limits bound what is read from the feed (--limit document=SIZE);
	// nil holds the defaults.
	Limits *limits.Values
}

// IndexFile is the name of the index in a directory feed.
const IndexFile = "index.json"

func (d Dir) blobPath(hexDigest string) string {
	return filepath.Join(d.Path, "blobs", "sha256", hexDigest)
}

// IndexBytes implements Reader.
func (d Dir) IndexBytes(ctx context.Context) ([]byte, error) {
	b, err := d.Limits.ReadFile(filepath.Join(d.Path, IndexFile), limits.Document)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no %s (publish to dir:%s first)", ErrNoIndex, d.Path, IndexFile, d.Path)
	}
	return b, err
}

// Location implements Reader: "dir:" and the absolute path.
func (d Dir) Location() string {
	p, err := filepath.Abs(d.Path)
	if err != nil {
		p = filepath.Clean(d.Path)
	}
	return "dir:" + p
}

// Index returns the index, its form checked but not its signature (see
// VerifyIndex), or ErrNoIndex (wrapped).
func (d Dir) Index(ctx context.Context) (*Index, error) {
	b, err := d.IndexBytes(ctx)
	if err != nil {
		return nil, err
	}
	return ParseIndex(b)
}

// Blob implements Reader.
func (d Dir) Blob(ctx context.Context, digest string) ([]byte, error) {
	h, err := checkDigest(digest)
	if err != nil {
		return nil, err
	}
	b, err := d.Limits.ReadFile(d.blobPath(h), limits.Document)
	if err != nil {
		return nil, err
	}
	if got := Digest(b); got != digest {
		return nil, fmt.Errorf("blob %s holds %s: the feed is corrupt", digest, got)
	}
	return b, nil
}

// Append adds a release with the bytes of its documents (by digest) and
// re-signs the index: version + 1, expiring sg.TTL after sg.Now. It returns
// false when the identical release is already in the feed (the index is
// re-signed all the same: publishing again is how a publisher keeps a
// feed fresh), ErrImmutable when the version is there with other
// documents, ErrRollback when the version is not newer than the latest of
// its name, ErrOtherKey when the feed is signed by another key and
// ErrUnsigned when it is in the unsigned format of earlier versions.
func (d Dir) Append(ctx context.Context, rel Release, blobs map[string][]byte, sg Signing) (added bool, ix *Index, err error) {
	if err := sg.checkSigner(&rel); err != nil {
		return false, nil, err
	}
	for _, doc := range rel.Documents {
		b, ok := blobs[doc.Digest]
		if !ok {
			return false, nil, fmt.Errorf("document %s: no bytes for %s", doc.Name, doc.Digest)
		}
		if Digest(b) != doc.Digest || int64(len(b)) != doc.Size {
			return false, nil, fmt.Errorf("document %s: bytes do not match %s (%d bytes)", doc.Name, doc.Digest, doc.Size)
		}
	}
	if err := os.MkdirAll(filepath.Join(d.Path, "blobs", "sha256"), 0o755); err != nil {
		return false, nil, err
	}
	unlock, err := lockDir(d.Path)
	if err != nil {
		return false, nil, err
	}
	defer unlock()
	prev, releases, add, err := sg.previous(ctx, d, "the feed "+d.Path, &rel)
	if err != nil {
		return false, nil, err
	}
	if add {
		for _, doc := range rel.Documents {
			if err := ctx.Err(); err != nil {
				return false, nil, err
			}
			h, _ := checkDigest(doc.Digest)
			p := d.blobPath(h)
			if existing, err := d.Limits.ReadFile(p, limits.Document); err == nil && Digest(existing) == doc.Digest {
				continue
			}
			if err := atomicfile.WriteFile(p, blobs[doc.Digest], 0o644); err != nil {
				return false, nil, err
			}
		}
		releases = append(releases, rel)
	}
	ix, b, err := sg.next(prev, releases)
	if err != nil {
		return false, nil, err
	}
	if err := atomicfile.WriteFile(filepath.Join(d.Path, IndexFile), b, 0o644); err != nil {
		return false, nil, err
	}
	return add, ix, nil
}

// lockDir takes an exclusive lock on PATH/.lock, serialising appends by
// several processes.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
