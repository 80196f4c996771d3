package verity

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
)

// The hash tree is built here, not with go-dmverity's Create: Create reads
// the data one block per read(2) and writes every 32-byte digest with its
// own write(2). For 256 MiB that is 66,000 reads and 66,000 writes, which
// took as long as all the hashing (perf: sha256 30% of the samples, the
// system calls around them most of the rest), and it hashes on one core.
// This builder reads the data in chunks of a MiB with pread(2), hashes
// them on every CPU, and assembles the verity area in memory, to be
// written out with one write. go-dmverity still encodes the superblock,
// and Verify (its own reading of the format) checks what this writes.

// chunkSize is how much data one pread reads and one worker hashes at a time.
const chunkSize = 1 << 20

// tree is the layout of a dm-verity hash tree, format version 1 (that of
// veritysetup): digest = H(salt || block); a hash block holds the digests
// of 2^k blocks of the level below, each in a slot of digest size rounded
// up to a power of two, zero padded; the levels are stored top level
// first, each level starting on a hash block.
type tree struct {
	newHash        func() hash.Hash
	slot           int // bytes of a digest in a hash block
	dataBS, hashBS int
	salt           []byte
	dataBlocks     uint64
	// levels[0] holds the digests of the data blocks; the last level is a
	// single hash block, whose digest is the root hash. No levels when the
	// data is a single block: its digest is the root hash.
	levels []level
	size   uint64 // bytes of all levels
}

type level struct {
	off    uint64 // byte offset in the tree
	blocks uint64 // hash blocks
}

// hashes maps the supported algorithms to their implementations.
var hashes = map[string]func() hash.Hash{"sha256": sha256.New, "sha512": sha512.New, "sha1": sha1.New}

func newTree(algorithm string, dataBS, hashBS uint32, salt []byte, dataBlocks uint64) (*tree, error) {
	newHash, ok := hashes[algorithm]
	if !ok {
		return nil, fmt.Errorf("hash algorithm %q is not supported: use sha256, sha512 or sha1", algorithm)
	}
	if dataBlocks == 0 {
		return nil, errors.New("dm-verity needs at least one data block")
	}
	t := &tree{newHash: newHash, dataBS: int(dataBS), hashBS: int(hashBS), salt: salt, dataBlocks: dataBlocks}
	size := newHash().Size()
	for t.slot = 1; t.slot < size; t.slot <<= 1 {
	}
	perBlock := uint64(t.hashBS / t.slot)
	if perBlock < 2 {
		return nil, fmt.Errorf("hash block size %d is too small for %s digests", hashBS, algorithm)
	}
	for n := dataBlocks; n > 1; {
		n = (n + perBlock - 1) / perBlock
		t.levels = append(t.levels, level{blocks: n})
	}
	for i := len(t.levels) - 1; i >= 0; i-- {
		t.levels[i].off = t.size
		t.size += t.levels[i].blocks * uint64(hashBS)
	}
	return t, nil
}

// build computes the tree of the data into dst (t.size zeroed bytes) and
// returns the root hash. The result does not depend on how the work is
// spread over the CPUs: every digest has its own place.
func (t *tree) build(ctx context.Context, data io.ReaderAt, dst []byte) ([]byte, error) {
	if uint64(len(dst)) != t.size {
		return nil, fmt.Errorf("hash tree buffer is %d bytes, the tree %d", len(dst), t.size)
	}
	root := make([]byte, t.slot)
	if len(t.levels) == 0 {
		if err := t.hashBlocks(ctx, data, t.dataBS, 1, root); err != nil {
			return nil, fmt.Errorf("hashing the data: %w", err)
		}
		return root[:t.newHash().Size()], nil
	}
	src, bs, n := data, t.dataBS, t.dataBlocks
	for i, l := range t.levels {
		out := dst[l.off : l.off+l.blocks*uint64(t.hashBS)]
		if err := t.hashBlocks(ctx, src, bs, n, out); err != nil {
			if i == 0 {
				return nil, fmt.Errorf("hashing the data: %w", err)
			}
			return nil, fmt.Errorf("hashing level %d of the tree: %w", i, err)
		}
		src, bs, n = bytes.NewReader(out), t.hashBS, l.blocks
	}
	if err := t.hashBlocks(ctx, src, bs, 1, root); err != nil {
		return nil, err
	}
	return root[:t.newHash().Size()], nil
}

// hashBlocks writes the digests of the first n blocks of bs bytes of src
// to dst, one every t.slot bytes. Chunks of the blocks are read and hashed
// by up to GOMAXPROCS goroutines.
func (t *tree) hashBlocks(ctx context.Context, src io.ReaderAt, bs int, n uint64, dst []byte) error {
	perChunk := uint64(max(1, chunkSize/bs))
	chunks := (n + perChunk - 1) / perChunk
	workers := min(uint64(runtime.GOMAXPROCS(0)), chunks)
	var (
		next  atomic.Uint64 // the next chunk to take
		wg    sync.WaitGroup
		errs  = make([]error, workers)
		stop  atomic.Bool
		count = perChunk
	)
	for w := range workers {
		wg.Go(func() {
			h := t.newHash()
			buf := make([]byte, int(min(count, n))*bs)
			for !stop.Load() {
				c := next.Add(1) - 1
				if c >= chunks {
					return
				}
				if err := ctx.Err(); err != nil {
					errs[w] = err
					stop.Store(true)
					return
				}
				first := c * perChunk
				k := min(perChunk, n-first)
				b := buf[:int(k)*bs]
				off := int64(first) * int64(bs)
				if m, err := src.ReadAt(b, off); m < len(b) {
					if err == nil || err == io.EOF {
						err = io.ErrUnexpectedEOF
					}
					errs[w] = fmt.Errorf("reading %d bytes at offset %d: %w", len(b), off, err)
					stop.Store(true)
					return
				}
				d := dst[first*uint64(t.slot):]
				for i := range int(k) {
					h.Reset()
					h.Write(t.salt)
					h.Write(b[i*bs : (i+1)*bs])
					h.Sum(d[i*t.slot : i*t.slot])
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
