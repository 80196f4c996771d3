package verity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

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
		{name: "data 1024", blocks: 10, p: Params{Superblock: true, DataBlockSize: 1024, Salt: salt}},
		{name: "appended", blocks: 300, appended: true, p: Params{Superblock: true, Salt: DeriveSalt("z")}},
		{name: "appended no superblock", blocks: 300, appended: true, p: Params{Salt: DeriveSalt("z")}},
		{name: "appended one block", blocks: 1, appended: true, p: Params{Superblock: true}},
	}
	ctx := context.Background()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			orig := writeData(t, data, tc.blocks, uint64(i))
			p := tc.p
			if p.Superblock {
				p.UUID = DeriveUUID("test", tc.name)
			}
			var r *Result
			var err error
			ours := filepath.Join(dir, "hash")
			if tc.appended {
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
			if tc.appended {
				theirsData = filepath.Join(dir, "theirs")
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
			vargs := append([]string{"verify", data, ours, r.RootHash}, veritysetupArgs(r, p)...)
			veritysetup(t, vargs...)
			if err := Verify(ctx, data, ours, r); err != nil {
				t.Errorf("Verify: %v", err)
			}
			if p.Superblock {
				f, _ := os.Open(ours)
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
		})
	}
}

func TestVerifyRejectsFlippedByte(t *testing.T) {
	testenv.Tool(t, "veritysetup", "cryptsetup-bin")
	ctx := context.Background()
	dir := t.TempDir()
	data, hash := filepath.Join(dir, "data"), filepath.Join(dir, "hash")
	b := writeData(t, data, 64, 7)
	r, err := Format(ctx, data, hash, Params{Superblock: true, Salt: DeriveSalt(sha(b)), UUID: DeriveUUID("t", sha(b))})
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
	if DeriveUUID("p", "a") == DeriveUUID("q", "a") {
		t.Error("DeriveUUID ignores the purpose")
	}
	if got := DeriveUUID("p", "a").Version(); got != 5 {
		t.Errorf("DeriveUUID version %d, want 5", got)
	}
}

func FuzzReadSuperblock(f *testing.F) {
	dir := f.TempDir()
	data, hash := filepath.Join(dir, "d"), filepath.Join(dir, "h")
	writeData(f, data, 3, 1)
	if _, err := Format(context.Background(), data, hash, Params{Superblock: true, Salt: []byte{1, 2, 3}, UUID: DeriveUUID("f", "f")}); err != nil {
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
