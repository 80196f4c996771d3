// Package disk implements the `disk "NAME"` block: a GPT disk image
// (go-diskfs) with a protective MBR, partitions placed on 1 MiB boundaries,
// the disk and partition GUIDs derived from content, partitions filled
// with other blocks' artifacts (a rootfs image, its dm-verity tree) or
// with a FAT32 EFI system partition holding given files; written raw and
// converted to qcow2 with qemu-img.
//
// go-diskfs makes an invalid FAT32 for some sizes (exactly 64 MiB: its FAT
// is two entries short); every FAT32 it makes here is checked with
// CheckFAT32 before it is used.
package disk

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/google/uuid"

	"github.com/cocobuild/cocobuild/internal/units"
	"github.com/cocobuild/cocobuild/recipes"
)

// Sizes of the layout.
const (
	SectorSize = 512
	Alignment  = units.MiB // partitions start and end on 1 MiB boundaries
	// MinESPSize is the smallest FAT32 with the 65525 clusters FAT32 must
	// have (go-diskfs uses 512-byte clusters up to 260 MiB).
	MinESPSize = 33 * units.MiB
)

// Partition type GUIDs by name.
var PartitionTypes = map[string]string{
	"esp":                "c12a7328-f81f-11d2-ba4b-00a0c93ec93b",
	"linux":              "0fc63daf-8483-4772-8e79-3d69d8477de4",
	"root-x86-64":        "4f68bce3-e8cd-4db1-96e7-fbcaf984b709",
	"root-x86-64-verity": "2c7357ed-ebd2-46d9-aec1-23d437ec2bf5",
	"root-arm64":         "b921b045-1df0-41c3-af44-4c6f280d3fae",
	"root-arm64-verity":  "df3300ce-d69f-4c92-978c-9bfb0f38d820",
	"swap":               "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f",
}

// PartitionType resolves a type name or GUID to a lowercase GUID.
func PartitionType(s string) (string, error) {
	if g, ok := PartitionTypes[s]; ok {
		return g, nil
	}
	u, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		names := make([]string, 0, len(PartitionTypes))
		for n := range PartitionTypes {
			names = append(names, n)
		}
		sort.Strings(names)
		return "", fmt.Errorf("partition type %q is not one of %s or a GUID", s, strings.Join(names, ", "))
	}
	return u.String(), nil
}

// FATFile is a file to put into a FAT32 partition.
type FATFile struct {
	Path   string // absolute, "/"-separated, e.g. /EFI/BOOT/BOOTX64.EFI
	Source string // host file with the bytes
}

// Partition is one partition of a Spec.
type Partition struct {
	Name string // GPT partition name (at most 36 UTF-16 units)
	Type string // type GUID
	GUID string // partition GUID
	// Size in bytes, a multiple of 1 MiB; 0 means the content's size
	// rounded up to 1 MiB.
	Size int64
	// Content is a host file written at the partition's start ("" for none).
	Content string
	// ContentSize is the size of Content; 0 means look at the file.
	ContentSize int64
	// FAT, when not nil, makes the partition a FAT32 file system holding
	// these files (an EFI system partition).
	FAT      []FATFile
	FATLabel string
}

// Spec describes a disk image.
type Spec struct {
	GUID       string // disk GUID
	Size       int64  // 0: just large enough
	Partitions []Partition
	Epoch      int64 // times of FAT entries
}

// Placed is a partition with its place on the disk.
type Placed struct {
	Partition
	Index      int    // 1-based
	Start, End uint64 // first and last sector
}

// Layout is a planned disk.
type Layout struct {
	GUID  string
	Size  int64
	Parts []Placed
}

// Plan places the partitions: the first at 1 MiB, each following on the
// next 1 MiB boundary, and checks names, sizes and GUIDs.
func Plan(s *Spec) (*Layout, error) {
	if _, err := uuid.Parse(s.GUID); err != nil {
		return nil, fmt.Errorf("disk GUID %q: %w", s.GUID, err)
	}
	if len(s.Partitions) == 0 {
		return nil, errors.New("a disk needs at least one partition")
	}
	if len(s.Partitions) > 128 {
		return nil, fmt.Errorf("%d partitions: a GPT holds at most 128", len(s.Partitions))
	}
	l := &Layout{GUID: s.GUID}
	next := uint64(Alignment / SectorSize)
	seen := map[string]string{strings.ToLower(s.GUID): "the disk"}
	names := map[string]bool{}
	for i, p := range s.Partitions {
		if p.Name == "" || len(utf16.Encode([]rune(p.Name))) > 36 {
			return nil, fmt.Errorf("partition %d: name %q must have 1 to 36 characters", i+1, p.Name)
		}
		if names[p.Name] {
			return nil, fmt.Errorf("two partitions are named %q", p.Name)
		}
		names[p.Name] = true
		if _, err := uuid.Parse(p.Type); err != nil {
			return nil, fmt.Errorf("partition %q: type %q: %w", p.Name, p.Type, err)
		}
		g, err := uuid.Parse(p.GUID)
		if err != nil {
			return nil, fmt.Errorf("partition %q: GUID %q: %w", p.Name, p.GUID, err)
		}
		if other, dup := seen[g.String()]; dup {
			return nil, fmt.Errorf("partition %q has GUID %s, as %s does: GUIDs must be unique (is the same content in two partitions?)", p.Name, g, other)
		}
		seen[g.String()] = "partition " + p.Name
		pl := Placed{Partition: p, Index: i + 1}
		if p.Content != "" {
			if p.FAT != nil {
				return nil, fmt.Errorf("partition %q has both content and FAT files", p.Name)
			}
			if pl.ContentSize == 0 {
				st, err := os.Stat(p.Content)
				if err != nil {
					return nil, fmt.Errorf("partition %q: %w", p.Name, err)
				}
				pl.ContentSize = st.Size()
			}
		}
		size := p.Size
		switch {
		case size == 0 && p.FAT != nil:
			return nil, fmt.Errorf("partition %q: a FAT partition needs a size (at least %s)", p.Name, units.FormatSize(MinESPSize))
		case size == 0 && pl.ContentSize == 0:
			return nil, fmt.Errorf("partition %q has neither a size nor content", p.Name)
		case size == 0:
			size = units.AlignUp(pl.ContentSize, Alignment)
		case size%Alignment != 0:
			return nil, fmt.Errorf("partition %q: size %d is not a multiple of 1MiB", p.Name, size)
		case size < pl.ContentSize:
			return nil, fmt.Errorf("partition %q: size %s is smaller than its content (%d bytes)", p.Name, units.FormatSize(size), pl.ContentSize)
		}
		if p.FAT != nil && size < MinESPSize {
			return nil, fmt.Errorf("partition %q: a FAT32 partition needs at least %s (65525 clusters)", p.Name, units.FormatSize(MinESPSize))
		}
		pl.Start = next
		pl.End = next + uint64(size/SectorSize) - 1
		next = pl.End + 1
		l.Parts = append(l.Parts, pl)
	}
	need := int64(next)*SectorSize + Alignment // room for the backup GPT, aligned
	l.Size = s.Size
	switch {
	case l.Size == 0:
		l.Size = need
	case l.Size < need:
		return nil, fmt.Errorf("disk size %s is too small: the partitions need %s", units.FormatSize(l.Size), units.FormatSize(need))
	case l.Size%SectorSize != 0:
		return nil, fmt.Errorf("disk size %d is not a multiple of %d", l.Size, SectorSize)
	}
	return l, nil
}

// fatEnv serialises FAT32 creation: go-diskfs takes the time of FAT
// directory entries from the SOURCE_DATE_EPOCH environment variable (or
// the clock), so it must be set, process-wide, while a FAT is written.
var fatEnv sync.Mutex

// WriteRaw writes the disk image to path (which must not exist).
func WriteRaw(ctx context.Context, path string, l *Layout, epoch int64) (err error) {
	d, err := diskfs.Create(path, l.Size, diskfs.SectorSize512)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	defer func() {
		if cerr := d.Close(); err == nil {
			err = cerr
		}
	}()
	t := &gpt.Table{LogicalSectorSize: SectorSize, PhysicalSectorSize: SectorSize, ProtectiveMBR: true, GUID: l.GUID}
	for _, p := range l.Parts {
		t.Partitions = append(t.Partitions, &gpt.Partition{
			Index: p.Index, Start: p.Start, End: p.End, Size: (p.End - p.Start + 1) * SectorSize,
			Type: gpt.Type(strings.ToUpper(p.Type)), Name: p.Name, GUID: strings.ToUpper(p.GUID),
		})
	}
	if err := d.Partition(t); err != nil {
		return fmt.Errorf("writing the partition table: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range l.Parts {
		if err := ctx.Err(); err != nil {
			return err
		}
		switch {
		case p.Content != "":
			if err := copyAt(f, p.Content, int64(p.Start)*SectorSize, p.ContentSize); err != nil {
				return fmt.Errorf("partition %q: %w", p.Name, err)
			}
		case p.FAT != nil:
			if err := writeFAT(d, p, epoch); err != nil {
				return fmt.Errorf("partition %q: %w", p.Name, err)
			}
			bs := make([]byte, SectorSize)
			if _, err := f.ReadAt(bs, int64(p.Start)*SectorSize); err != nil {
				return err
			}
			if err := CheckFAT32(bs); err != nil {
				return fmt.Errorf("partition %q: go-diskfs made an invalid FAT32 of %s (%w); choose another size, such as %s", p.Name,
					units.FormatSize(int64(p.End-p.Start+1)*SectorSize), err, units.FormatSize(int64(p.End-p.Start+1)*SectorSize+units.MiB))
			}
		}
	}
	return f.Sync()
}

func copyAt(f *os.File, src string, off, size int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	n, err := io.Copy(io.NewOffsetWriter(f, off), in)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%s changed size (%d bytes, planned %d)", src, n, size)
	}
	return nil
}

func writeFAT(d *disk.Disk, p Placed, epoch int64) error {
	fatEnv.Lock()
	defer fatEnv.Unlock()
	old, had := os.LookupEnv("SOURCE_DATE_EPOCH")
	os.Setenv("SOURCE_DATE_EPOCH", strconv.FormatInt(epoch, 10))
	defer func() {
		if had {
			os.Setenv("SOURCE_DATE_EPOCH", old)
		} else {
			os.Unsetenv("SOURCE_DATE_EPOCH")
		}
	}()
	label := p.FATLabel
	if label == "" {
		label = strings.ToUpper(p.Name)
	}
	fs, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: p.Index, FSType: filesystem.TypeFat32, VolumeLabel: label, Reproducible: true})
	if err != nil {
		return fmt.Errorf("creating FAT32: %w", err)
	}
	files := append([]FATFile(nil), p.FAT...)
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	made := map[string]bool{"/": true}
	for _, ff := range files {
		for dir := path.Dir(ff.Path); !made[dir]; dir = path.Dir(dir) {
			if err := fs.Mkdir(dir); err != nil {
				return fmt.Errorf("FAT32 directory %s: %w", dir, err)
			}
			made[dir] = true
		}
		if err := copyToFAT(fs, ff); err != nil {
			return err
		}
	}
	return nil
}

func copyToFAT(fs filesystem.FileSystem, ff FATFile) error {
	in, err := os.Open(ff.Source)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := fs.OpenFile(ff.Path, os.O_CREATE|os.O_RDWR)
	if err != nil {
		return fmt.Errorf("FAT32 file %s: %w", ff.Path, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("FAT32 file %s: %w", ff.Path, err)
	}
	return out.Close()
}

// CheckFAT32 checks a FAT32 boot sector: the BIOS parameter block must
// describe a FAT32 (at least 65525 clusters) whose FATs have an entry for
// every cluster plus the two reserved ones.
func CheckFAT32(bs []byte) error {
	if len(bs) < 512 {
		return fmt.Errorf("boot sector of %d bytes", len(bs))
	}
	if bs[510] != 0x55 || bs[511] != 0xaa {
		return errors.New("no boot sector signature")
	}
	le16 := func(o int) uint64 { return uint64(binary.LittleEndian.Uint16(bs[o:])) }
	le32 := func(o int) uint64 { return uint64(binary.LittleEndian.Uint32(bs[o:])) }
	bps, spc, reserved, fats := le16(11), uint64(bs[13]), le16(14), uint64(bs[16])
	rootEntries, total16, fat16, total32, fat32 := le16(17), le16(19), le16(22), le32(32), le32(36)
	switch {
	case bps != 512 && bps != 1024 && bps != 2048 && bps != 4096:
		return fmt.Errorf("%d bytes per sector", bps)
	case spc == 0 || spc&(spc-1) != 0:
		return fmt.Errorf("%d sectors per cluster", spc)
	case reserved == 0 || fats == 0:
		return fmt.Errorf("%d reserved sectors, %d FATs", reserved, fats)
	case rootEntries != 0 || total16 != 0 || fat16 != 0:
		return errors.New("FAT12/16 fields are set: not a FAT32")
	case fat32 == 0 || total32 == 0:
		return errors.New("no FAT32 size")
	}
	meta := reserved + fats*fat32
	if meta >= total32 {
		return fmt.Errorf("%d sectors hold only the reserved area and FATs", total32)
	}
	clusters := (total32 - meta) / spc
	entries := fat32 * bps / 4
	if clusters < 65525 {
		return fmt.Errorf("%d clusters, fewer than the 65525 of a FAT32", clusters)
	}
	if entries < clusters+2 {
		return fmt.Errorf("%d clusters but FATs of %d entries (%d needed)", clusters, entries, clusters+2)
	}
	return nil
}

// QemuImgVersion returns the first line of `qemu-img --version`.
func QemuImgVersion(ctx context.Context) (string, error) {
	bin, err := exec.LookPath("qemu-img")
	if err != nil {
		return "", errors.New("qemu-img not found: install it with `apt-get install qemu-utils`")
	}
	// Remembered while the binary is unchanged: a no-op rebuild runs no tool.
	return recipes.Memoize(ctx, "tool-version "+bin+" --version", func() (string, []string, error) {
		cmd := exec.CommandContext(ctx, bin, "--version")
		cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"} // nothing of the caller's: no secrets
		out, err := cmd.Output()
		if err != nil {
			return "", nil, fmt.Errorf("qemu-img --version: %w", err)
		}
		line, _, _ := strings.Cut(string(out), "\n")
		return strings.TrimSpace(line), []string{bin}, nil
	})
}

// Qcow2 converts a raw image to qcow2 with qemu-img: version 3 (compat
// 1.1), 64 KiB clusters, no preallocation, zero areas left unallocated,
// one coroutine and in-order writes so that the layout never depends on
// timing.
func Qcow2(ctx context.Context, raw, out string, log io.Writer) error {
	bin, err := exec.LookPath("qemu-img")
	if err != nil {
		return errors.New("qemu-img not found: install it with `apt-get install qemu-utils`")
	}
	cmd := exec.CommandContext(ctx, bin, "convert", "-q", "-f", "raw", "-O", "qcow2",
		"-o", "compat=1.1,cluster_size=65536,preallocation=off,lazy_refcounts=off,refcount_bits=16",
		"-m", "1", raw, out)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "TZ=UTC"}
	b, err := cmd.CombinedOutput()
	if log != nil {
		log.Write(b)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("qemu-img convert: %w\n%s", err, b)
	}
	return nil
}
