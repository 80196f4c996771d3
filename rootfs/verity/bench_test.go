package verity

import (
	"context"
	"path/filepath"
	"testing"
)

// BenchmarkFormat64MiB times a separate hash tree with a superblock (bench/verity.sh
// compares the same with veritysetup on 256 MiB).
func BenchmarkFormat64MiB(b *testing.B) {
	dir := b.TempDir()
	data := filepath.Join(dir, "data")
	writeData(b, data, 16384, 1)
	p := Params{Superblock: true, Salt: DeriveSalt("x"), UUID: DeriveUUID("b", "x")}
	b.SetBytes(64 << 20)
	for i := 0; i < b.N; i++ {
		if _, err := Format(context.Background(), data, filepath.Join(dir, "hash"), p); err != nil {
			b.Fatal(err)
		}
	}
}
