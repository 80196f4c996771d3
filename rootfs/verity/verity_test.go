package verity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	dmverity "github.com/containerd/go-dmverity/pkg/verity"
	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/internal/derive"
	"github.com/cocobuild/cocobuild/internal/testenv"
)

// writeData writes n blocks of seeded pseudo-random data.
func writeData(t testing.TB, path string, n int, seed uint64) []byte {
	t.Helper()
	b := make([]byte, n*4096)
	r := rand.New(rand.NewPCG(seed, 0))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

var rootHashRe = regexp.MustCompile(`(?m)^Root hash:\s+([0-9a-f]+)$`)

// veritysetup runs the real tool and returns its output.
func veritysetup(t testing.TB, args ...string) string {
	t.Helper()
	bin := testenv.Tool(t, "veritysetup", "cryptsetup-bin")
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("veritysetup %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func veritysetupArgs(r *Result, p Params) []string {
	args := []string{"--hash", r.Algorithm, "--data-block-size", fmt.Sprint(r.DataBlockSize),
		"--hash-block-size", fmt.Sprint(r.HashBlockSize)}
	if r.Salt == "" {
		args = append(args, "--salt", "-")
	} else {
		args = append(args, "--salt", r.Salt)
	}
	if !p.Superblock {
		args = append(args, "--no-superblock", "--data-blocks", fmt.Sprint(r.DataBlocks))
	} else {
		args = append(args, "--uuid", r.UUID)
	}
	if r.HashOffset != 0 {
		args = append(args, "--hash-offset", fmt.Sprint(r.HashOffset))
	}
	return args
}

// TestMatchesVeritysetup formats the same data with this package and with
// `veritysetup format` and requires identical hash devices and root
// hashes; then `veritysetup verify` must accept ours.
func TestMatchesVeritysetup(t *testing.T) {
	testenv.Tool(t, "veritysetup", "cryptsetup-bin")
	salt, _ := hex.DecodeString("f00dfeedc0ffee")
	tests := []struct {
		name     string
		blocks   int
		appended bool
		p        Params
	}{
		{name: "one block", blocks: 1, p: Params{Superblock: true}},
		{name: "two blocks no salt", blocks: 2, p: Params{Superblock: true}},
		{name: "129 blocks salted", blocks: 129, p: Params{Superblock: true, Salt: salt}},
		{name: "derived salt, two levels", blocks: 300, p: Params{Superblock: true, Salt: DeriveSalt("x")}},
		{name: "no superblock", blocks: 300, p: Params{Salt: DeriveSalt("y")}},
		{name: "sha512 hash 1024", blocks: 70, p: Params{Superblock: true, Algorithm: "sha512", HashBlockSize: 1024, Salt: salt}},
		{name: "sha512 hash 512, four levels", blocks: 513, p: Params{Superblock: true, Algorithm: "sha512", HashBlockSize: 512, Salt: salt}},
		{name: "data 1024", blocks: 10, p: Params{Superblock: true, DataBlockSize: 1024, Salt: salt}},
		{name: "appended", blocks: 300, appended: true, p: Params{Superblock: true, Salt: DeriveSalt("z")}},
		{name: "appended no superblock", blocks: 300, appended: true, p: Params{Salt: DeriveSalt("z")}},
		{name: "appended one block", blocks: 1, appended: true, p: Params{Superblock: true}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			writeData(t, data, tc.blocks, uint64(i))
			p := tc.p
			if p.Superblock {
				p.UUID = derive.UUID("test", tc.name)
			}
			matchVeritysetup(t, data, p, tc.appended)
		})
	}
}

// TestMatchesVeritysetupMatrix compares with `veritysetup format` over the
// parameters this package supports: every algorithm, data and hash block
// sizes 512 to 4096, and for each of them the data sizes where the tree
// changes shape (one block, no tree; one hash block's worth of data; one
// block more, a second level; a third level where the data stays under
// 4 MiB, else two partly filled levels). The salt (0, 1, 32 or 256 bytes),
// the superblock and the layout vary from case to case, pseudo-randomly
// but always the same way, and every combination of them appears.
func TestMatchesVeritysetupMatrix(t *testing.T) {
	testenv.Tool(t, "veritysetup", "cryptsetup-bin")
	sizes := []uint32{512, 1024, 2048, 4096}
	saltLens := []int{0, 1, 32, 256}
	r := rand.New(rand.NewPCG(6, 6))
	seen := map[string]bool{}
	n := 0
	for _, algo := range []string{"sha256", "sha512", "sha1"} {
		digest := hashes[algo]().Size()
		slot := 1
		for slot < digest {
			slot <<= 1
		}
		for _, dbs := range sizes {
			for _, hbs := range sizes {
				hpb := uint64(hbs) / uint64(slot)
				third := hpb*hpb + 1
				if third*uint64(dbs) > 4<<20 {
					third = 3*hpb - 1
				}
				for _, blocks := range []uint64{1, hpb, hpb + 1, third} {
					n++
					saltLen := saltLens[r.IntN(len(saltLens))]
					p := Params{Algorithm: algo, DataBlockSize: dbs, HashBlockSize: hbs, Superblock: r.IntN(2) == 0,
						Salt: make([]byte, saltLen)}
					for i := range p.Salt {
						p.Salt[i] = byte(r.Uint32())
					}
					// An appended tree starts on a hash block after the data.
					appended := r.IntN(2) == 0 && blocks*uint64(dbs)%uint64(hbs) == 0
					seen[fmt.Sprint(saltLen, p.Superblock, appended)] = true
					name := fmt.Sprintf("%s/data%d/hash%d/blocks%d/salt%d/sb=%t/appended=%t", algo, dbs, hbs, blocks, saltLen, p.Superblock, appended)
					seed := uint64(n)
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						b := make([]byte, blocks*uint64(dbs))
						rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
						if p.Superblock {
							p.UUID = derive.UUID("matrix", name)
						}
						path := filepath.Join(t.TempDir(), "data")
						if err := os.WriteFile(path, b, 0o644); err != nil {
							t.Fatal(err)
						}
						matchVeritysetup(t, path, p, appended)
					})
				}
			}
		}
	}
	if want := len(saltLens) * 2 * 2; len(seen) != want {
		t.Errorf("the matrix covers %d of the %d combinations of salt length, superblock and layout: change the seed", len(seen), want)
	}
}

// matchVeritysetup formats the data file with this package and, on a copy,
// with `veritysetup format`, and requires identical hash devices (or
// files, when appended) and root hashes; `veritysetup verify` and Verify
// must then accept ours, and the superblock must read back as formatted.
func matchVeritysetup(t *testing.T, data string, p Params, appended bool) {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Dir(data)
	orig, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	var r *Result
	ours := filepath.Join(dir, "hash")
	if appended {
		r, err = Append(ctx, data, p)
		ours = data
	} else {
		r, err = Format(ctx, data, ours, p)
	}
	if err != nil {
		t.Fatal(err)
	}
	theirs := filepath.Join(dir, "theirs")
	theirsData := data
	if appended {
		theirsData = theirs
		if err := os.WriteFile(theirsData, orig, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := append([]string{"format", theirsData, theirs}, veritysetupArgs(r, p)...)
	out := veritysetup(t, args...)
	m := rootHashRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no root hash in veritysetup output:\n%s", out)
	}
	if got, want := r.RootHash, m[1]; got != want {
		t.Errorf("root hash = %s, veritysetup says %s", got, want)
	}
	a, _ := os.ReadFile(ours)
	b, _ := os.ReadFile(theirs)
	if !bytes.Equal(a, b) {
		t.Errorf("hash device differs from veritysetup's: %d vs %d bytes, sha %s vs %s", len(a), len(b), sha(a), sha(b))
	}
	if got, want := uint64(len(a)), r.HashOffset+r.HashSize; got != want {
		t.Errorf("hash device is %d bytes, Result says offset %d + size %d", got, r.HashOffset, r.HashSize)
	}
	sbSize := r.HashStartBlock*uint64(r.HashBlockSize) - r.HashOffset
	treeSize, err := dmverity.GetHashTreeSize(&dmverity.Params{HashName: r.Algorithm, DataBlockSize: r.DataBlockSize,
		HashBlockSize: r.HashBlockSize, DataBlocks: r.DataBlocks, HashType: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.HashSize != sbSize+treeSize {
		t.Errorf("hash area of %d bytes, go-dmverity sizes the tree %d bytes after %d of superblock", r.HashSize, treeSize, sbSize)
	}
	vargs := append([]string{"verify", data, ours, r.RootHash}, veritysetupArgs(r, p)...)
	veritysetup(t, vargs...)
	if err := Verify(ctx, data, ours, r); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if p.Superblock {
		f, err := os.Open(ours)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sb, err := ReadSuperblock(f, r.HashOffset)
		if err != nil {
			t.Fatal(err)
		}
		sb.RootHash, sb.Layout, sb.HashSize = r.RootHash, r.Layout, r.HashSize
		if diff := cmp.Diff(r, sb); diff != "" {
			t.Errorf("superblock read back (-formatted +read):\n%s", diff)
		}
	}
}

// TestTreeDeterministic builds a tree of more chunks than workers, the
// last one partial, on one CPU and on several: the bytes must not depend
// on which goroutine hashed what.
func TestTreeDeterministic(t *testing.T) {
	data := make([]byte, (3*chunkSize/4096+5)*4096)
	rand.NewChaCha8([32]byte{3}).Read(data)
	tr, err := newTree("sha256", 4096, 4096, []byte("salt"), uint64(len(data)/4096))
	if err != nil {
		t.Fatal(err)
	}
	var trees [][]byte
	var roots []string
	for _, procs := range []int{1, 2, 7} {
		old := runtime.GOMAXPROCS(procs)
		dst := make([]byte, tr.size)
		root, err := tr.build(context.Background(), bytes.NewReader(data), dst)
		runtime.GOMAXPROCS(old)
		if err != nil {
			t.Fatal(err)
		}
		trees, roots = append(trees, dst), append(roots, hex.EncodeToString(root))
	}
	for i := 1; i < len(trees); i++ {
		if !bytes.Equal(trees[0], trees[i]) || roots[0] != roots[i] {
			t.Errorf("tree %d differs from tree 0 (roots %s, %s)", i, roots[i], roots[0])
		}
	}
	// The first digest of level 0 is H(salt || first block), in the last
	// hash block of the tree (level 0 is stored last).
	want := sha256.Sum256(append([]byte("salt"), data[:4096]...))
	l0 := tr.levels[0]
	if got := trees[0][l0.off : l0.off+32]; !bytes.Equal(got, want[:]) {
		t.Errorf("first digest of level 0 = %x, want %x", got, want)
	}
}

// failingReader fails reads at or after off.
type failingReader struct {
	r   io.ReaderAt
	off int64
}

func (f failingReader) ReadAt(b []byte, off int64) (int, error) {
	if off+int64(len(b)) > f.off {
		return 0, errors.New("disk on fire")
	}
	return f.r.ReadAt(b, off)
}

func TestTreeErrors(t *testing.T) {
	data := make([]byte, 600*4096)
	tr, err := newTree("sha256", 4096, 4096, nil, 600)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := tr.build(ctx, failingReader{bytes.NewReader(data), 400 * 4096}, make([]byte, tr.size)); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("failing read: error %v, want the reader's", err)
	}
	if _, err := tr.build(ctx, bytes.NewReader(data[:599*4096]), make([]byte, tr.size)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short data: error %v, want io.ErrUnexpectedEOF", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := tr.build(cctx, bytes.NewReader(data), make([]byte, tr.size)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: error %v, want context.Canceled", err)
	}
	if _, err := tr.build(ctx, bytes.NewReader(data), make([]byte, tr.size-1)); err == nil {
		t.Error("build accepted a buffer of the wrong size")
	}
	if _, err := newTree("md5", 4096, 4096, nil, 1); err == nil {
		t.Error("newTree accepted md5")
	}
	if _, err := newTree("sha256", 4096, 4096, nil, 0); err == nil {
		t.Error("newTree accepted no data blocks")
	}
}

func TestVerifyRejectsFlippedByte(t *testing.T) {
	testenv.Tool(t, "veritysetup", "cryptsetup-bin")
	ctx := context.Background()
	dir := t.TempDir()
	data, hash := filepath.Join(dir, "data"), filepath.Join(dir, "hash")
	b := writeData(t, data, 64, 7)
	r, err := Format(ctx, data, hash, Params{Superblock: true, Salt: DeriveSalt(sha(b)), UUID: derive.UUID("t", sha(b))})
	if err != nil {
		t.Fatal(err)
	}
	b[40000] ^= 1
	if err := os.WriteFile(data, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Verify(ctx, data, hash, r); err == nil {
		t.Error("Verify accepted data with a flipped bit")
	}
	out, err := exec.Command(testenv.Tool(t, "veritysetup", "cryptsetup-bin"), "verify", data, hash, r.RootHash).CombinedOutput()
	if err == nil {
		t.Errorf("veritysetup verify accepted data with a flipped bit:\n%s", out)
	}
}

func TestFormatErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	odd := filepath.Join(dir, "odd")
	os.WriteFile(odd, make([]byte, 5000), 0o644)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o644)
	good := filepath.Join(dir, "good")
	os.WriteFile(good, make([]byte, 8192), 0o644)
	tests := []struct {
		name string
		data string
		p    Params
		want string
	}{
		{"not whole blocks", odd, Params{}, "not a multiple of the data block size"},
		{"empty", empty, Params{}, "is empty"},
		{"missing", filepath.Join(dir, "nope"), Params{}, "no such file"},
		{"bad algorithm", good, Params{Algorithm: "md5"}, "not supported"},
		{"bad block", good, Params{DataBlockSize: 3000}, "power of two"},
		{"big block", good, Params{DataBlockSize: 8192}, "page size"},
		{"superblock without uuid", good, Params{Superblock: true}, "needs a UUID"},
		{"long salt", good, Params{Salt: make([]byte, 300)}, "longer than"},
	}
	for _, tc := range tests {
		_, err := Format(ctx, tc.data, filepath.Join(dir, "hash"), tc.p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Format(cctx, good, filepath.Join(dir, "hash"), Params{}); err == nil {
		t.Error("Format with a cancelled context succeeded")
	}
}

func TestCmdlines(t *testing.T) {
	r := &Result{RootHash: strings.Repeat("ab", 32), Salt: "0011", Algorithm: "sha256", HashType: 1,
		DataBlocks: 100, DataBlockSize: 4096, HashBlockSize: 4096, HashStartBlock: 1, Superblock: true}
	tests := []struct {
		name string
		got  []string
		want []string
	}{
		{"kata", r.KataCmdline("/dev/vda1", "/dev/vda2", "erofs"), []string{
			`dm-mod.create="dm-verity,,,ro,0 800 verity 1 /dev/vda1 /dev/vda2 4096 4096 100 1 sha256 ` + r.RootHash + ` 0011"`,
			"root=/dev/dm-0", "rootfstype=erofs", "ro"}},
		{"systemd", r.SystemdCmdline("PARTUUID=a", "PARTUUID=b", ""), []string{
			"roothash=" + r.RootHash, "systemd.verity_root_data=PARTUUID=a", "systemd.verity_root_hash=PARTUUID=b",
			"root=/dev/mapper/root", "ro"}},
	}
	nosb := *r
	nosb.Superblock, nosb.Salt, nosb.HashStartBlock, nosb.HashOffset = false, "", 25, 102400
	tests = append(tests, struct {
		name string
		got  []string
		want []string
	}{"no superblock, appended", nosb.SystemdCmdline("/dev/vda1", "/dev/vda1", "ext4"), []string{
		"roothash=" + r.RootHash, "systemd.verity_root_data=/dev/vda1", "systemd.verity_root_hash=/dev/vda1",
		"systemd.verity_root_options=superblock=false,data-block-size=4096,hash-block-size=4096,data-blocks=100,hash=sha256,hash-offset=102400",
		"root=/dev/mapper/root", "rootfstype=ext4", "ro"}})
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, tc.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
	if got, want := nosb.Table("a", "b"), "0 800 verity 1 a b 4096 4096 100 25 sha256 "+r.RootHash+" -"; got != want {
		t.Errorf("Table = %q, want %q", got, want)
	}
	d, h, err := r.PartitionUUIDs()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.String(), "abababab-abab-abab-abab-abababababab"; got != want {
		t.Errorf("data partition UUID = %s, want %s", got, want)
	}
	if d != h {
		t.Errorf("hash partition UUID %s, want the last 128 bits %s", h, d)
	}
	if _, _, err := (&Result{RootHash: "zz"}).PartitionUUIDs(); err == nil {
		t.Error("PartitionUUIDs accepted a non-hex root hash")
	}
}

func TestDerived(t *testing.T) {
	if bytes.Equal(DeriveSalt("a"), DeriveSalt("b")) {
		t.Error("DeriveSalt gives the same salt for different data")
	}
	if !bytes.Equal(DeriveSalt("a"), DeriveSalt("a")) {
		t.Error("DeriveSalt is not deterministic")
	}
}

func FuzzReadSuperblock(f *testing.F) {
	dir := f.TempDir()
	data, hash := filepath.Join(dir, "d"), filepath.Join(dir, "h")
	writeData(f, data, 3, 1)
	if _, err := Format(context.Background(), data, hash, Params{Superblock: true, Salt: []byte{1, 2, 3}, UUID: derive.UUID("f", "f")}); err != nil {
		f.Fatal(err)
	}
	sb, _ := os.ReadFile(hash)
	f.Add(sb[:512])
	f.Add(make([]byte, 512))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ReadSuperblock(bytes.NewReader(b), 0)
		if err == nil && (r.DataBlockSize == 0 || r.HashBlockSize == 0) {
			t.Fatalf("accepted a superblock with zero block sizes: %+v", r)
		}
	})
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
