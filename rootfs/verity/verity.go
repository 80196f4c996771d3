// Package verity computes dm-verity hash trees, reproducibly: the trees,
// superblocks and root hashes are byte-identical to those of
// `veritysetup format` with the same parameters. The tree is built here
// (tree.go says why); github.com/containerd/go-dmverity encodes and reads
// the superblock and verifies trees. It also writes the parameters the way kernels and init
// systems take them: a device-mapper table, Kata's `dm-mod.create=` kernel
// argument and systemd's `roothash=` arguments.
//
// Two layouts are supported: a separate hash device (the tree in its own
// file or partition) and a tree appended to the data (one file, the hash
// area starting at the first hash block after the data).
package verity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	dmverity "github.com/containerd/go-dmverity/pkg/verity"
	"github.com/google/uuid"

	"github.com/cocobuild/cocobuild/internal/filehash"
)

// Defaults of Params.
const (
	DefaultAlgorithm = "sha256"
	DefaultBlockSize = 4096
)

// Layouts.
const (
	LayoutSeparate = "separate" // the hash tree in its own file (hash device)
	LayoutAppended = "appended" // the hash tree after the data, in the same file
)

// Params are the choices of a dm-verity format.
type Params struct {
	Algorithm     string // sha256 (default), sha512 or sha1
	DataBlockSize uint32 // default 4096
	HashBlockSize uint32 // default 4096
	// Salt is hashed before every block; empty means no salt. Use
	// DeriveSalt for a salt that depends only on the data.
	Salt []byte
	// Superblock writes a veritysetup superblock before the tree, so that
	// `veritysetup open/verify` need only the root hash.
	Superblock bool
	// UUID goes into the superblock; zero means derived from the data.
	UUID [16]byte
}

func (p *Params) setDefaults() {
	if p.Algorithm == "" {
		p.Algorithm = DefaultAlgorithm
	}
	if p.DataBlockSize == 0 {
		p.DataBlockSize = DefaultBlockSize
	}
	if p.HashBlockSize == 0 {
		p.HashBlockSize = DefaultBlockSize
	}
}

// Check reports parameters that veritysetup and the kernel would refuse.
func (p Params) Check() error {
	p.setDefaults()
	switch p.Algorithm {
	case "sha256", "sha512", "sha1":
	default:
		return fmt.Errorf("hash algorithm %q is not supported: use sha256, sha512 or sha1", p.Algorithm)
	}
	for _, b := range []struct {
		name string
		v    uint32
	}{{"data block size", p.DataBlockSize}, {"hash block size", p.HashBlockSize}} {
		if !dmverity.IsBlockSizeValid(b.v) {
			return fmt.Errorf("%s %d is not a power of two between 512 and 524288", b.name, b.v)
		}
	}
	if p.DataBlockSize > 4096 {
		return fmt.Errorf("data block size %d is larger than the page size (4096): the kernel cannot activate it", p.DataBlockSize)
	}
	if len(p.Salt) > dmverity.MaxSaltSize {
		return fmt.Errorf("salt of %d bytes is longer than %d", len(p.Salt), dmverity.MaxSaltSize)
	}
	return nil
}

// Result describes a formatted hash tree: everything needed to open or
// verify the device.
type Result struct {
	RootHash      string `json:"root_hash"` // lowercase hex
	Salt          string `json:"salt"`      // lowercase hex, "" for none
	Algorithm     string `json:"hash_algorithm"`
	HashType      uint32 `json:"hash_type"` // 1: the format of veritysetup (salt first, padded digests)
	DataBlocks    uint64 `json:"data_blocks"`
	DataBlockSize uint32 `json:"data_block_size"`
	HashBlockSize uint32 `json:"hash_block_size"`
	// HashOffset is the byte offset in the hash device where the verity
	// area starts (the superblock, if any): veritysetup's --hash-offset.
	HashOffset uint64 `json:"hash_offset"`
	// HashStartBlock is the first block of the tree on the hash device, in
	// hash blocks: the hash_start of the device-mapper table.
	HashStartBlock uint64 `json:"hash_start_block"`
	Superblock     bool   `json:"superblock"`
	UUID           string `json:"uuid,omitempty"` // of the superblock
	Layout         string `json:"layout"`
	// HashSize is the size of the verity area in bytes (superblock and tree).
	HashSize uint64 `json:"hash_size"`
}

// DataSize is the number of bytes of data the tree covers.
func (r *Result) DataSize() uint64 { return r.DataBlocks * uint64(r.DataBlockSize) }

// DeriveSalt returns a 32-byte salt that depends only on the data digest
// (lowercase hex sha256 of the data), so that equal data gives equal trees.
func DeriveSalt(dataSHA256 string) []byte {
	s := sha256.Sum256([]byte("cocobuild dm-verity salt\x00" + dataSHA256))
	return s[:]
}

// FileSHA256 hashes a file (lowercase hex).
func FileSHA256(path string) (string, error) {
	sum, _, err := filehash.SHA256(path)
	return sum, err
}

// dataBlocks returns how many data blocks a file holds, and checks that it
// is a whole, non-zero number of them.
func dataBlocks(path string, blockSize uint32) (uint64, int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	size := st.Size()
	if size == 0 {
		return 0, 0, fmt.Errorf("%s is empty: dm-verity needs at least one data block", path)
	}
	if size%int64(blockSize) != 0 {
		return 0, 0, fmt.Errorf("%s is %d bytes, not a multiple of the data block size %d: pad it first", path, size, blockSize)
	}
	return uint64(size / int64(blockSize)), size, nil
}

// Format writes the hash tree of the data file into a new file hashPath
// (the separate layout). The data file must be a whole number of data
// blocks.
func Format(ctx context.Context, dataPath, hashPath string, p Params) (*Result, error) {
	return format(ctx, dataPath, hashPath, p, false)
}

// Append writes the hash tree after the data in the same file (the
// appended layout): the verity area starts right after the data, which
// must be a whole number of data blocks and of hash blocks.
func Append(ctx context.Context, path string, p Params) (*Result, error) {
	return format(ctx, path, path, p, true)
}

func format(ctx context.Context, dataPath, hashPath string, p Params, appended bool) (*Result, error) {
	p.setDefaults()
	if err := p.Check(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	blocks, size, err := dataBlocks(dataPath, p.DataBlockSize)
	if err != nil {
		return nil, err
	}
	if p.Superblock && p.UUID == ([16]byte{}) {
		return nil, errors.New("a verity superblock needs a UUID: give one (internal/derive derives it from content)")
	}
	if appended && size%int64(p.HashBlockSize) != 0 {
		return nil, fmt.Errorf("%s is %d bytes, not a multiple of the hash block size %d: the appended tree must start on a hash block", dataPath, size, p.HashBlockSize)
	}
	res := &Result{
		Salt: hex.EncodeToString(p.Salt), Algorithm: p.Algorithm, HashType: 1,
		DataBlocks: blocks, DataBlockSize: p.DataBlockSize, HashBlockSize: p.HashBlockSize,
		Superblock: p.Superblock, Layout: LayoutSeparate,
	}
	if appended {
		res.Layout, res.HashOffset = LayoutAppended, uint64(size)
	}
	if p.Superblock {
		res.UUID = uuid.UUID(p.UUID).String()
	}

	// The verity area (superblock and tree) is the same bytes whether it
	// is a file of its own or follows the data: only its offset differs,
	// and the superblock does not record it. It is assembled in memory
	// (the tree is about 1/127 of the data with the default parameters)
	// and written with one write.
	t, err := newTree(p.Algorithm, p.DataBlockSize, p.HashBlockSize, p.Salt, blocks)
	if err != nil {
		return nil, err
	}
	sbSize := uint64(0)
	if p.Superblock {
		sbSize = uint64(alignUp(dmverity.SuperblockSize, p.HashBlockSize))
	}
	res.HashSize = sbSize + t.size
	res.HashStartBlock = (res.HashOffset + sbSize) / uint64(p.HashBlockSize)
	area := make([]byte, res.HashSize)
	if p.Superblock {
		sb, err := superblock(p, blocks)
		if err != nil {
			return nil, err
		}
		copy(area, sb)
	}
	data, err := os.Open(dataPath)
	if err != nil {
		return nil, err
	}
	root, err := t.build(ctx, data, area[sbSize:])
	data.Close()
	if err != nil {
		return nil, fmt.Errorf("dm-verity tree of %s: %w", dataPath, err)
	}
	res.RootHash = hex.EncodeToString(root)

	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if appended {
		flags = os.O_WRONLY
	}
	out, err := os.OpenFile(hashPath, flags, 0o644)
	if err != nil {
		return nil, err
	}
	_, err = out.WriteAt(area, int64(res.HashOffset))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("writing the hash tree to %s: %w", hashPath, err)
	}
	return res, nil
}

// superblock encodes the veritysetup superblock (format version 1) of the
// parameters, with go-dmverity's encoding.
func superblock(p Params, dataBlocks uint64) ([]byte, error) {
	sb := dmverity.DefaultSuperblock()
	sb.HashType = 1
	sb.UUID = p.UUID
	sb.Algorithm = [32]byte{}
	copy(sb.Algorithm[:], p.Algorithm)
	sb.DataBlockSize, sb.HashBlockSize, sb.DataBlocks = p.DataBlockSize, p.HashBlockSize, dataBlocks
	sb.SaltSize = uint16(len(p.Salt))
	copy(sb.Salt[:], p.Salt)
	b, err := sb.Serialize()
	if err != nil {
		return nil, fmt.Errorf("encoding the verity superblock: %w", err)
	}
	return b, nil
}

func alignUp(n int, align uint32) int {
	a := int(align)
	return (n + a - 1) / a * a
}

// Verify recomputes the tree of the data and compares it with the hash
// device and the root hash in r.
func Verify(ctx context.Context, dataPath, hashPath string, r *Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	root, err := hex.DecodeString(r.RootHash)
	if err != nil {
		return fmt.Errorf("root hash %q is not hexadecimal", r.RootHash)
	}
	salt, err := hex.DecodeString(r.Salt)
	if err != nil {
		return fmt.Errorf("salt %q is not hexadecimal", r.Salt)
	}
	dp := &dmverity.Params{
		HashName: r.Algorithm, DataBlockSize: r.DataBlockSize, HashBlockSize: r.HashBlockSize,
		DataBlocks: r.DataBlocks, HashType: r.HashType, Salt: salt, SaltSize: uint16(len(salt)),
		HashAreaOffset: r.HashStartBlock * uint64(r.HashBlockSize), NoSuperblock: true,
	}
	if len(salt) == 0 {
		dp.Salt = nil
	}
	if err := dmverity.Verify(dp, dataPath, hashPath, root); err != nil {
		return fmt.Errorf("dm-verity verification of %s failed: %w", dataPath, err)
	}
	return nil
}

// ReadSuperblock reads a veritysetup superblock at off in r and returns the
// parameters it records (the root hash is not in the superblock).
func ReadSuperblock(r io.ReaderAt, off uint64) (*Result, error) {
	sb, err := dmverity.ReadSuperblock(r, off)
	if err != nil {
		return nil, err
	}
	if sb.HashType > 1 {
		return nil, fmt.Errorf("verity superblock: hash type %d is not supported", sb.HashType)
	}
	if int(sb.SaltSize) > len(sb.Salt) {
		return nil, fmt.Errorf("verity superblock: salt size %d exceeds %d", sb.SaltSize, len(sb.Salt))
	}
	algo := strings.ToLower(strings.TrimRight(string(sb.Algorithm[:]), "\x00"))
	p := Params{Algorithm: algo, DataBlockSize: sb.DataBlockSize, HashBlockSize: sb.HashBlockSize}
	if err := p.Check(); err != nil {
		return nil, fmt.Errorf("verity superblock: %w", err)
	}
	sbBlocks := uint64(alignUp(dmverity.SuperblockSize, sb.HashBlockSize)) / uint64(sb.HashBlockSize)
	return &Result{
		Salt: hex.EncodeToString(sb.Salt[:sb.SaltSize]), Algorithm: algo, HashType: sb.HashType,
		DataBlocks: sb.DataBlocks, DataBlockSize: sb.DataBlockSize, HashBlockSize: sb.HashBlockSize,
		HashOffset: off, HashStartBlock: off/uint64(sb.HashBlockSize) + sbBlocks,
		Superblock: true, UUID: uuid.UUID(sb.UUID).String(),
	}, nil
}

// Table is the device-mapper table line of the verity target for the
// given data and hash devices (paths, major:minor, or PARTUUID=…):
//
//	0 <data sectors> verity 1 <data dev> <hash dev> <data block size> <hash block size> <data blocks> <hash start block> <algorithm> <root hash> <salt>
func (r *Result) Table(dataDev, hashDev string) string {
	salt := r.Salt
	if salt == "" {
		salt = "-"
	}
	return strings.Join([]string{"0", strconv.FormatUint(r.DataSize()/512, 10), "verity",
		strconv.FormatUint(uint64(r.HashType), 10), dataDev, hashDev,
		strconv.FormatUint(uint64(r.DataBlockSize), 10), strconv.FormatUint(uint64(r.HashBlockSize), 10),
		strconv.FormatUint(r.DataBlocks, 10), strconv.FormatUint(r.HashStartBlock, 10),
		r.Algorithm, r.RootHash, salt}, " ")
}

// KataCmdline returns the kernel arguments that map and mount the verity
// root the way Kata Containers' guest images do (dm-init, CONFIG_DM_INIT):
//
//	dm-mod.create="dm-verity,,,ro,<table>" root=/dev/dm-0 rootfstype=<fstype> ro
//
// fstype may be empty to leave rootfstype out.
func (r *Result) KataCmdline(dataDev, hashDev, fstype string) []string {
	args := []string{`dm-mod.create="dm-verity,,,ro,` + r.Table(dataDev, hashDev) + `"`, "root=/dev/dm-0"}
	if fstype != "" {
		args = append(args, "rootfstype="+fstype)
	}
	return append(args, "ro")
}

// SystemdCmdline returns the kernel arguments systemd-veritysetup-generator
// reads to open the root as /dev/mapper/root:
//
//	roothash=<hex> systemd.verity_root_data=<dev> systemd.verity_root_hash=<dev> [systemd.verity_root_options=…] root=/dev/mapper/root
//
// The options carry what the hash device does not: everything without a
// superblock, the hash offset with one when it is not zero.
func (r *Result) SystemdCmdline(dataDev, hashDev, fstype string) []string {
	args := []string{"roothash=" + r.RootHash, "systemd.verity_root_data=" + dataDev, "systemd.verity_root_hash=" + hashDev}
	var opts []string
	if !r.Superblock {
		opts = append(opts, "superblock=false",
			"data-block-size="+strconv.FormatUint(uint64(r.DataBlockSize), 10),
			"hash-block-size="+strconv.FormatUint(uint64(r.HashBlockSize), 10),
			"data-blocks="+strconv.FormatUint(r.DataBlocks, 10), "hash="+r.Algorithm)
		if r.Salt != "" {
			opts = append(opts, "salt="+r.Salt)
		}
	}
	if r.HashOffset != 0 {
		opts = append(opts, "hash-offset="+strconv.FormatUint(r.HashOffset, 10))
	}
	if len(opts) > 0 {
		args = append(args, "systemd.verity_root_options="+strings.Join(opts, ","))
	}
	args = append(args, "root=/dev/mapper/root")
	if fstype != "" {
		args = append(args, "rootfstype="+fstype)
	}
	return append(args, "ro")
}

// PartitionUUIDs returns the partition UUIDs the Discoverable Partitions
// Specification gives a verity root and its hash partition: the first and
// the last 128 bits of the root hash, so that the root hash alone finds
// both partitions.
func (r *Result) PartitionUUIDs() (data, hash uuid.UUID, err error) {
	b, err := hex.DecodeString(r.RootHash)
	if err != nil || len(b) < 32 {
		return uuid.Nil, uuid.Nil, fmt.Errorf("root hash %q is not a hash of at least 256 bits", r.RootHash)
	}
	copy(data[:], b[:16])
	copy(hash[:], b[len(b)-16:])
	return data, hash, nil
}
