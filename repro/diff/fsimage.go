package diff

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cocobuild/cocobuild/internal/childenv"
	"github.com/cocobuild/cocobuild/internal/limits"
)

// fsImage is what the superblock at the start of an artifact says: the
// file system, how many bytes it spans, and where a dm-verity area
// appended to it starts (-1 without one).
type fsImage struct {
	kind     string // erofs, squashfs, ext4
	dataSize int64
	verityAt int64
}

// fsTools names, for each file system, the Debian tool that extracts it
// and its package.
var fsTools = map[string][2]string{
	"erofs":    {"fsck.erofs", "erofs-utils"},
	"squashfs": {"unsquashfs", "squashfs-tools"},
	"ext4":     {"debugfs", "e2fsprogs"},
}

// sniffFS reads the superblock of an erofs, squashfs or ext4 (also ext2/3)
// image at the start of r; ok is false for anything else. The size it
// reports is the superblock's claim, checked against the artifact's size.
func sniffFS(r *io.SectionReader) (fsImage, bool) {
	sb := make([]byte, 2048)
	n, _ := r.ReadAt(sb, 0)
	sb = sb[:n]
	size := r.Size()
	var img fsImage
	const block = 4096 // mksquashfs pads to 4 KiB; the verity data block
	switch {
	case len(sb) >= 96 && string(sb[:4]) == "hsqs" && binary.LittleEndian.Uint16(sb[28:]) == 4: // version 4
		img = fsImage{kind: "squashfs", dataSize: alignUp64(int64(binary.LittleEndian.Uint64(sb[40:])), block)}
	case len(sb) >= 1024+40 && binary.LittleEndian.Uint32(sb[1024:]) == 0xE0F5E1E2:
		bits := sb[1024+12]
		if bits < 9 || bits > 16 {
			return fsImage{}, false
		}
		img = fsImage{kind: "erofs", dataSize: int64(binary.LittleEndian.Uint32(sb[1024+36:])) << bits}
	case len(sb) >= 1024+0x158 && binary.LittleEndian.Uint16(sb[1024+0x38:]) == 0xEF53:
		e := sb[1024:]
		logBS := binary.LittleEndian.Uint32(e[24:])
		// A magic of two bytes is found by chance: the superblock must
		// also look like one (inodes, blocks per group, first data block,
		// revision).
		if logBS > 6 || binary.LittleEndian.Uint32(e[0:]) == 0 || binary.LittleEndian.Uint32(e[32:]) == 0 ||
			binary.LittleEndian.Uint32(e[20:]) > 1 || binary.LittleEndian.Uint32(e[76:]) > 1 {
			return fsImage{}, false
		}
		blocks := uint64(binary.LittleEndian.Uint32(sb[1024+4:]))
		if binary.LittleEndian.Uint32(sb[1024+0x60:])&0x80 != 0 { // INCOMPAT_64BIT
			blocks |= uint64(binary.LittleEndian.Uint32(sb[1024+0x150:])) << 32
		}
		if blocks > 1<<40 {
			return fsImage{}, false
		}
		img = fsImage{kind: "ext4", dataSize: int64(blocks) << (10 + logBS)}
	default:
		return fsImage{}, false
	}
	img.verityAt = -1
	if img.dataSize > 0 && img.dataSize+8 <= size {
		magic := make([]byte, 8)
		if _, err := r.ReadAt(magic, img.dataSize); err == nil && string(magic) == "verity\x00\x00" {
			img.verityAt = img.dataSize
		}
	}
	return img, true
}

func alignUp64(n, a int64) int64 { return (n + a - 1) / a * a }

// compareImages compares two images of the same file system file by file:
// each is extracted with its Debian tool into a temporary directory
// (removed afterwards) and the two trees are compared as Trees compares
// directories; owners are compared too when this process is root (the
// tools keep them only then). A dm-verity area appended to an image is not
// part of its files: when the files are the same, the difference is
// placed in the data part or in the verity area. prefix is put before each
// member's path (a GPT partition's label).
func (c Comparer) compareImages(name, prefix string, img fsImage, a, b artifact, first int64, digestA, digestB string) ([]Difference, error) {
	ctx := c.Context
	if ctx == nil {
		ctx = context.Background()
	}
	tmp, err := os.MkdirTemp("", "cocobuild-diff-")
	if err != nil {
		return nil, err
	}
	defer removeTree(tmp)
	dirs := [2]string{filepath.Join(tmp, "a"), filepath.Join(tmp, "b")}
	for i, art := range []artifact{a, b} {
		if err := c.extract(ctx, img.kind, art, filepath.Join(tmp, fmt.Sprintf("%c.img", 'a'+i)), dirs[i]); err != nil {
			return nil, err
		}
	}
	rep, err := c.Trees(dirs[0], dirs[1])
	if err != nil {
		return nil, err
	}
	ds := rep.Differences
	attrs, err := c.compareAttrs(dirs[0], dirs[1], os.Geteuid() == 0)
	if err != nil {
		return nil, err
	}
	ds = mergeByPath(ds, attrs)
	var out []Difference
	for i, d := range ds {
		if i == MaxMembers {
			out = append(out, Difference{Artifact: name, Format: img.kind, What: fmt.Sprintf("… and %d more differences", len(ds)-MaxMembers)})
			break
		}
		m := prefix + d.Artifact
		if d.Member != "" {
			m += " [" + d.Format + "] " + d.Member
		}
		out = append(out, Difference{Artifact: name, Format: img.kind, Member: m, What: d.What, A: d.A, B: d.B})
	}
	if len(out) == 0 {
		d := Difference{Artifact: name, Format: img.kind, Member: strings.TrimSuffix(prefix, ": "),
			What: fmt.Sprintf("layout (same files, different bytes); first differing byte at offset %d", first), A: digestA, B: digestB}
		if img.verityAt >= 0 && first >= img.verityAt {
			d.What = fmt.Sprintf("dm-verity area (same files, same data part; the hash tree appended at offset %d differs at offset %d: salt, uuid or parameters)", img.verityAt, first)
		}
		out = append(out, d)
	}
	return out, nil
}

// mergeByPath merges two lists of tree differences, each sorted by path,
// keeping the order by path.
func mergeByPath(x, y []Difference) []Difference {
	out := make([]Difference, 0, len(x)+len(y))
	for len(x) > 0 && len(y) > 0 {
		if y[0].Artifact < x[0].Artifact {
			out, y = append(out, y[0]), y[1:]
		} else {
			out, x = append(out, x[0]), x[1:]
		}
	}
	return append(append(out, x...), y...)
}

// compareAttrs compares what Trees does not: the root directory's mode,
// and of everything in both trees the owner (uid:gid, when owners is set),
// the modification time (but of symbolic links) and the extended
// attributes (those the tool extracted).
func (c Comparer) compareAttrs(a, b string, owners bool) ([]Difference, error) {
	fa, err := c.statTree(a)
	if err != nil {
		return nil, err
	}
	fb, err := c.statTree(b)
	if err != nil {
		return nil, err
	}
	var out []Difference
	ra, err := os.Lstat(a)
	if err != nil {
		return nil, err
	}
	rb, err := os.Lstat(b)
	if err != nil {
		return nil, err
	}
	fa["/"], fb["/"] = ra, rb
	if ra.Mode() != rb.Mode() {
		out = append(out, Difference{Artifact: "/", What: "mode", A: ra.Mode().String(), B: rb.Mode().String()})
	}
	for n, ia := range fa {
		ib, ok := fb[n]
		if !ok {
			continue
		}
		if oa, ob := ownerOf(ia), ownerOf(ib); owners && oa != ob {
			out = append(out, Difference{Artifact: n, What: "owner", A: oa, B: ob})
		}
		// The tools set the times of files and directories (not of
		// symbolic links) as the image has them.
		if ta, tb := ia.ModTime(), ib.ModTime(); ia.Mode().Type() != fs.ModeSymlink && ib.Mode().Type() != fs.ModeSymlink && !ta.Equal(tb) {
			out = append(out, Difference{Artifact: n, What: "mtime", A: fmt.Sprint(ta.Unix()), B: fmt.Sprint(tb.Unix())})
		}
		pa, pb := filepath.Join(a, filepath.FromSlash(n)), filepath.Join(b, filepath.FromSlash(n))
		if n == "/" {
			pa, pb = a, b
		}
		xa, err := c.xattrs(pa)
		if err != nil {
			return nil, err
		}
		xb, err := c.xattrs(pb)
		if err != nil {
			return nil, err
		}
		if xa != xb {
			out = append(out, Difference{Artifact: n, What: "xattrs", A: xa, B: xb})
		}
	}
	slices.SortStableFunc(out, func(x, y Difference) int { return strings.Compare(x.Artifact, y.Artifact) })
	return out, nil
}

// statTree lists what is below root with each entry's lstat (see
// walkTree).
func (c Comparer) statTree(root string) (map[string]fs.FileInfo, error) {
	out := map[string]fs.FileInfo{}
	err := c.walkTree(root, func(rel string, info fs.FileInfo) { out[rel] = info })
	return out, err
}

// xattrs lists a file's extended attributes (of a link itself, not
// followed) as name=value, sorted; a value that is not short text is
// shown by its digest.
func (c Comparer) xattrs(p string) (string, error) {
	buf := make([]byte, 64<<10) // the kernel's limit for a list and a value
	n, err := unix.Llistxattr(p, buf)
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("extended attributes of %s: %w", p, err)
	}
	var names []string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name != "" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	val := make([]byte, 64<<10)
	var out []string
	for _, name := range names {
		m, err := unix.Lgetxattr(p, name, val)
		if err != nil {
			return "", fmt.Errorf("extended attribute %s of %s: %w", name, p, err)
		}
		v := val[:m]
		if printable(v) && len(v) <= 64 {
			out = append(out, name+"="+string(v))
		} else {
			h := sha256.Sum256(v)
			out = append(out, fmt.Sprintf("%s=sha256:%x (%d bytes)", name, h[:8], len(v)))
		}
	}
	return strings.Join(out, ","), nil
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

func ownerOf(fi fs.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "?"
	}
	return owner(uint64(st.Uid), uint64(st.Gid))
}

// extract unpacks one image into dir (which must not exist) with the file
// system's tool. The artifact is read from its file when it is a whole
// file, else copied to imgPath first. What the tool writes counts against
// the limits: a watchdog stops it when the tree holds more than
// limits.Decompressed bytes or limits.Entries entries.
func (c Comparer) extract(ctx context.Context, kind string, art artifact, imgPath, dir string) error {
	tool := fsTools[kind]
	bin, err := exec.LookPath(tool[0])
	if err != nil {
		return fmt.Errorf("comparing the files of the %s images %s: %s not found: install the Debian package %s", kind, art.what, tool[0], tool[1])
	}
	src := art.path
	if src == "" {
		if err := writeSection(imgPath, art.reader()); err != nil {
			return err
		}
		src = imgPath
	}
	if err := c.precheck(ctx, kind, bin, src, art.what); err != nil {
		return err
	}
	var args []string
	switch kind {
	case "erofs":
		args = []string{"--extract=" + dir, "--preserve-perms", src}
	case "squashfs":
		args = []string{"-no-progress", "-quiet", "-d", dir, src}
		if os.Geteuid() != 0 {
			// Not root, it could set only user.* attributes, and says so
			// for each of the others.
			args = append(args[:2:2], "-no-xattrs", "-d", dir, src)
		}
	case "ext4":
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		// debugfs reads its commands from -R; a directory name with a
		// space or quote would end it (the temp dir has none).
		if strings.ContainsAny(dir, " \"'\\") {
			return fmt.Errorf("temporary directory %q has a character debugfs cannot take: set TMPDIR", dir)
		}
		args = []string{"-R", "rdump / " + dir, src}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(childenv.Environ(ctx), "LC_ALL=C", "TZ=UTC")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	var over error
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		over = c.watch(done, cancel, art.what, dir)
	}()
	err = cmd.Wait()
	close(done)
	wg.Wait()
	if over == nil {
		over = c.growth(art.what, dir) // what was written after the last look
	}
	if over != nil {
		return over
	}
	if ctx.Err() != nil && err != nil {
		return ctx.Err()
	}
	msg := strings.TrimSpace(out.String())
	if kind == "ext4" {
		// debugfs exits 0 whatever its commands did: anything besides its
		// banner is an error.
		var lines []string
		for _, l := range strings.Split(msg, "\n") {
			// Not root, it cannot give the files their owners.
			chown := os.Geteuid() != 0 && strings.Contains(l, "Operation not permitted while changing ownership")
			if l != "" && !strings.HasPrefix(l, "debugfs ") && !chown {
				lines = append(lines, l)
			}
		}
		msg = strings.Join(lines, "\n")
		if msg != "" && err == nil {
			err = errors.New("it reported errors")
		}
	}
	if kind == "erofs" && strings.Contains(msg, "<E>") && err == nil {
		err = errors.New("it reported errors") // fsck.erofs 1.5 exits 0 after some of them
	}
	if _, serr := os.Lstat(dir); serr != nil && err == nil {
		err = errors.New("it extracted nothing")
	}
	if err != nil {
		if len(msg) > 2000 {
			msg = msg[:2000] + "…"
		}
		return fmt.Errorf("%s: reading the %s image with %s failed (%v): the image is damaged or no valid %s file system:\n%s", art.what, kind, tool[0], err, kind, msg)
	}
	return nil
}

// precheck reads what the image says it holds before it is extracted,
// from a listing (unsquashfs -lln: every entry and its size), a summary
// (dump.erofs -S: the count and total size of the files) or the
// superblock (debugfs stats: the inodes in use), and checks it against
// limits.Entries and limits.Decompressed, so that an image that claims
// too much is refused before a byte is written. A listing that fails is
// no error here: the extraction says what is wrong with the image. The
// watchdog of extract still bounds what is written (a listing can lie, and
// ext4's stats give no sizes).
func (c Comparer) precheck(ctx context.Context, kind, extractor, src, what string) error {
	var cmd *exec.Cmd
	switch kind {
	case "squashfs":
		cmd = exec.CommandContext(ctx, extractor, "-lln", "-n", src)
	case "erofs":
		bin, err := exec.LookPath("dump.erofs")
		if err != nil {
			return nil // the extraction's watchdog bounds it
		}
		cmd = exec.CommandContext(ctx, bin, "-S", src)
	case "ext4":
		cmd = exec.CommandContext(ctx, extractor, "-R", "stats", src)
	}
	cmd.Env = append(childenv.Environ(ctx), "LC_ALL=C", "TZ=UTC")
	out, err := cmd.Output()
	if err != nil {
		return nil
	}
	entries, total := int64(-1), int64(-1)
	field := func(line, prefix string) int64 {
		v, ok := strings.CutPrefix(line, prefix)
		if !ok {
			return -1
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return -1
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return -1
		}
		return n
	}
	switch kind {
	case "squashfs":
		entries, total = 0, 0
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Fields(l)
			if len(f) < 3 || len(f[0]) != 10 {
				continue
			}
			entries++
			if f[0][0] == '-' {
				if n, err := strconv.ParseInt(f[2], 10, 64); err == nil {
					total += n
				}
			}
		}
	case "erofs":
		for _, l := range strings.Split(string(out), "\n") {
			if n := field(l, "Filesystem total file count:"); n >= 0 {
				entries = n
			}
			if n := field(l, "Filesystem total original file size:"); n >= 0 {
				total = n
			}
		}
	case "ext4":
		var inodes, free int64 = -1, -1
		for _, l := range strings.Split(string(out), "\n") {
			if n := field(l, "Inode count:"); n >= 0 {
				inodes = n
			}
			if n := field(l, "Free inodes:"); n >= 0 {
				free = n
			}
		}
		if inodes >= 0 && free >= 0 && free <= inodes {
			entries = inodes - free
		}
	}
	if entries >= 0 {
		if err := c.Limits.Check(fmt.Sprintf("%s: entries of the %s image", what, kind), limits.Entries, entries); err != nil {
			return err
		}
	}
	if total >= 0 {
		if err := c.Limits.Check(fmt.Sprintf("%s: bytes of the files in the %s image", what, kind), limits.Decompressed, total); err != nil {
			return err
		}
	}
	return nil
}

// watch looks at dir's growth until done, more often while the tree is
// small, and cancels the extraction when it goes over a limit.
func (c Comparer) watch(done <-chan struct{}, cancel func(), what, dir string) error {
	wait := 20 * time.Millisecond
	for {
		select {
		case <-done:
			return nil
		case <-time.After(wait):
		}
		start := time.Now()
		if err := c.growth(what, dir); err != nil {
			cancel()
			return err
		}
		wait = max(20*time.Millisecond, 4*time.Since(start))
	}
}

// growth checks the bytes (apparent sizes, as reading them would count)
// and entries below dir against the limits.
func (c Comparer) growth(what, dir string) error {
	maxBytes, maxEntries := c.Limits.Get(limits.Decompressed), c.Limits.Get(limits.Entries)
	var total, entries int64
	var over error
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return nil // a tree being written: entries come and go
		}
		entries++
		if entries > maxEntries {
			over = &limits.Error{What: what + ": files extracted", Limit: limits.Entries, Max: maxEntries, Got: entries, AtLeast: true}
			return filepath.SkipAll
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
			if total > maxBytes {
				over = &limits.Error{What: what + ": bytes extracted", Limit: limits.Decompressed, Max: maxBytes, Got: total, AtLeast: true}
				return filepath.SkipAll
			}
		}
		return nil
	})
	return over
}

// writeSection copies r to a new file at p.
func writeSection(p string, r io.Reader) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeTree removes a temporary tree, also where an extracted directory
// has no write permission.
func removeTree(dir string) {
	if os.RemoveAll(dir) == nil {
		return
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	os.RemoveAll(dir)
}

// gptSections gives the byte range of one partition of a GPT image, by the
// member name gptMembers gives it.
func gptSections(r *io.SectionReader) map[string][2]int64 {
	ms, err := gptMembers(r, false)
	if err != nil {
		return nil
	}
	out := map[string][2]int64{}
	for _, m := range ms {
		first, err := strconv.ParseInt(attrValue(m.Attrs, "first sector"), 10, 64)
		if err != nil || m.Size <= 0 || first*512+m.Size > r.Size() {
			continue
		}
		out[m.Name] = [2]int64{first * 512, m.Size}
	}
	return out
}

// descendGPT compares, file by file, the partitions whose content differs
// and that hold the same kind of file system image on both sides, in
// place of their "content" line.
func (c Comparer) descendGPT(name string, a, b artifact, ds []Difference) ([]Difference, error) {
	var secA, secB map[string][2]int64
	var out []Difference
	for _, d := range ds {
		if d.Format != "gpt" || !strings.HasPrefix(d.Member, "partition ") || !strings.Contains(d.What, "content") {
			out = append(out, d)
			continue
		}
		if secA == nil {
			secA, secB = gptSections(a.r), gptSections(b.r)
		}
		member, _, _ := strings.Cut(d.Member, " (")
		ra, okA := secA[member]
		rb, okB := secB[member]
		if !okA || !okB {
			out = append(out, d)
			continue
		}
		pa := artifact{fmt.Sprintf("%s %s", a.what, member), io.NewSectionReader(a.r, ra[0], ra[1]), ""}
		pb := artifact{fmt.Sprintf("%s %s", b.what, member), io.NewSectionReader(b.r, rb[0], rb[1]), ""}
		ia, okA := sniffFS(pa.r)
		ib, okB := sniffFS(pb.r)
		if !okA || !okB || ia.kind != ib.kind {
			out = append(out, d)
			continue
		}
		cmp, err := compareBytes(pa.reader(), pb.reader())
		if err != nil {
			return nil, err
		}
		// The GPT line stays when more than the content differs.
		if d.What != "content" {
			out = append(out, d)
		}
		ms, err := c.compareImages(name, d.Member+": ", ia, pa, pb, cmp.first, cmp.digestA, cmp.digestB)
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	return out, nil
}
