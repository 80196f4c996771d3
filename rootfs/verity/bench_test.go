package verity

import (
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/cocobuild/cocobuild/internal/derive"
)

// BenchmarkFormat64MiB times a separate hash tree with a superblock (bench/verity.sh
// compares the same with veritysetup on 256 MiB).
func BenchmarkFormat64MiB(b *testing.B) {
	dir := b.TempDir()
	data := filepath.Join(dir, "data")
	writeData(b, data, 16384, 1)
	p := Params{Superblock: true, Salt: DeriveSalt("x"), UUID: derive.UUID("b", "x")}
	b.SetBytes(64 << 20)
	for b.Loop() {
		if _, err := Format(context.Background(), data, filepath.Join(dir, "hash"), p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTree256MiB times the tree alone (read, hash, assemble; no
// superblock, no output file) of the data bench/verity.sh uses: 256 MiB,
// sha256, 4096-byte blocks, a 32-byte salt.
func BenchmarkTree256MiB(b *testing.B) {
	path := filepath.Join(b.TempDir(), "data")
	buf := make([]byte, 256<<20)
	rand.NewChaCha8([32]byte{1}).Read(buf)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		b.Fatal(err)
	}
	buf = nil
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	t, err := newTree("sha256", 4096, 4096, DeriveSalt("x"), 65536)
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, t.size)
	b.SetBytes(256 << 20)
	for b.Loop() {
		clear(dst)
		if _, err := t.build(context.Background(), f, dst); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDigest4096 compares ways of taking the digest of a 4096-byte
// block with crypto/sha256: the tree reuses one hash.Hash per goroutine
// (Reset), which a salt needs as it is hashed before the block; Sum256
// cannot take the salt without copying the block after it.
func BenchmarkDigest4096(b *testing.B) {
	block := make([]byte, 4096)
	rand.NewChaCha8([32]byte{2}).Read(block)
	salt := DeriveSalt("x")
	out := make([]byte, 0, sha256.Size)
	b.Run("Sum256", func(b *testing.B) {
		b.SetBytes(4096)
		for b.Loop() {
			s := sha256.Sum256(block)
			out = append(out[:0], s[:]...)
		}
	})
	b.Run("Sum256-salt-copied", func(b *testing.B) {
		buf := append(append([]byte(nil), salt...), block...)
		b.SetBytes(4096)
		for b.Loop() {
			copy(buf[len(salt):], block)
			s := sha256.Sum256(buf)
			out = append(out[:0], s[:]...)
		}
	})
	b.Run("Reset", func(b *testing.B) {
		h := sha256.New()
		b.SetBytes(4096)
		for b.Loop() {
			h.Reset()
			h.Write(block)
			out = h.Sum(out[:0])
		}
	})
	b.Run("Reset-salt", func(b *testing.B) {
		h := sha256.New()
		b.SetBytes(4096)
		for b.Loop() {
			h.Reset()
			h.Write(salt)
			h.Write(block)
			out = h.Sum(out[:0])
		}
	})
	b.Run("New-salt", func(b *testing.B) {
		b.SetBytes(4096)
		for b.Loop() {
			h := sha256.New()
			h.Write(salt)
			h.Write(block)
			out = h.Sum(out[:0])
		}
	})
}
