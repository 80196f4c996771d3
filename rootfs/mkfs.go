package rootfs

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/google/uuid"

	"github.com/cocobuild/cocobuild/internal/units"
	"github.com/cocobuild/cocobuild/recipes"
)

// File system types.
const (
	EROFS    = "erofs"
	SquashFS = "squashfs"
	Ext4     = "ext4"
)

// FileSystems lists the supported file system types.
var FileSystems = []string{EROFS, SquashFS, Ext4}

// tool names an external program and the Debian package that has it.
type tool struct{ name, pkg string }

var (
	toolMkfsErofs  = tool{"mkfs.erofs", "erofs-utils"}
	toolMksquashfs = tool{"mksquashfs", "squashfs-tools"}
	toolMke2fs     = tool{"mke2fs", "e2fsprogs"}
	toolDebugfs    = tool{"debugfs", "e2fsprogs"}
	toolFakeroot   = tool{"fakeroot", "fakeroot"}
)

// ToolMissingError says which program is missing and how to install it.
type ToolMissingError struct{ Tool, Package string }

func (e *ToolMissingError) Error() string {
	return fmt.Sprintf("%s not found: install it with `apt-get install %s`", e.Tool, e.Package)
}

func (t tool) path() (string, error) {
	p, err := exec.LookPath(t.name)
	if err != nil {
		return "", &ToolMissingError{Tool: t.name, Package: t.pkg}
	}
	return p, nil
}

// versionArgs are the arguments that make a tool print its version, and
// the pattern of the line that holds it.
var versionArgs = map[string]struct {
	args []string
	re   *regexp.Regexp
}{
	"mkfs.erofs": {nil, regexp.MustCompile(`(?m)^mkfs\.erofs \S+$`)}, // 1.5 has no -V: its usage ends with the version
	"mksquashfs": {[]string{"-version"}, regexp.MustCompile(`(?m)^mksquashfs version \S+`)},
	"mke2fs":     {[]string{"-V"}, regexp.MustCompile(`(?m)^mke2fs \S+`)},
	"debugfs":    {[]string{"-V"}, regexp.MustCompile(`(?m)^debugfs \S+`)},
}

// ToolVersions returns the versions of the tools that make a file system
// type's images, e.g. "mkfs.erofs 1.5": they are part of the image step's
// key (another version may make other bytes) and of the manifest.
func ToolVersions(ctx context.Context, fsType string) (string, error) {
	var tools []tool
	switch fsType {
	case EROFS:
		tools = []tool{toolMkfsErofs}
	case SquashFS:
		tools = []tool{toolMksquashfs}
	case Ext4:
		tools = []tool{toolMke2fs, toolDebugfs}
	default:
		return "", fmt.Errorf("file system %q is not supported: use one of %s", fsType, strings.Join(FileSystems, ", "))
	}
	var vs []string
	for _, t := range tools {
		bin, err := t.path()
		if err != nil {
			return "", err
		}
		va := versionArgs[t.name]
		// Remembered while the binary is unchanged: a no-op rebuild
		// runs no tool.
		v, err := recipes.Memoize(ctx, "tool-version "+bin+" "+strings.Join(va.args, " "), func() (string, []string, error) {
			cmd := exec.CommandContext(ctx, bin, va.args...)
			cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
			out, _ := cmd.CombinedOutput() // mkfs.erofs exits 1 after its usage
			v := va.re.Find(out)
			if v == nil {
				return "", nil, fmt.Errorf("%s printed no version:\n%s", t.name, out)
			}
			return string(v), []string{bin}, nil
		})
		if err != nil {
			return "", err
		}
		vs = append(vs, v)
	}
	return strings.Join(vs, ", "), nil
}

// ImageOptions are the choices of a file system image.
type ImageOptions struct {
	Type  string    // EROFS, SquashFS or Ext4
	UUID  uuid.UUID // file system UUID (erofs, ext4); also ext4's directory hash seed
	Epoch int64     // SOURCE_DATE_EPOCH: creation time and the time of what mkfs makes itself
	Label string    // volume label (ext4; squashfs and erofs 1.5 have none)
	// Compression: erofs "" (none), "lz4" or "lz4hc[,LEVEL]"; squashfs
	// "gzip" (default), "xz", "zstd", "lz4", "lzo"; ext4 none.
	Compression string
	Size        int64 // ext4 image size; 0 sizes it from the content
	// Chown sets owners in the staging tree (needs root). Without it,
	// erofs and ext4 images can only be built from trees owned by root.
	Chown bool
	Log   io.Writer // the tools' output; nil discards it
}

// ImageInfo describes a built image.
type ImageInfo struct {
	Size    int64 // bytes, a multiple of 4096
	Entries int
}

// BuildImage makes a file system image at out from a tree tar written by
// WriteTar, using work as scratch space.
func BuildImage(ctx context.Context, tarPath, out, work string, opt ImageOptions) (*ImageInfo, error) {
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	var info *ImageInfo
	var err error
	switch opt.Type {
	case SquashFS:
		info, err = buildSquashfs(ctx, tarPath, out, opt)
	case EROFS:
		info, err = buildErofs(ctx, tarPath, out, work, opt)
	case Ext4:
		info, err = buildExt4(ctx, tarPath, out, work, opt)
	default:
		return nil, fmt.Errorf("file system %q is not supported: use one of %s", opt.Type, strings.Join(FileSystems, ", "))
	}
	if err != nil {
		return nil, err
	}
	// Every image is a whole number of 4 KiB blocks, so dm-verity can cover
	// it as it is.
	st, err := os.Stat(out)
	if err != nil {
		return nil, err
	}
	if r := st.Size() % 4096; r != 0 {
		if err := os.Truncate(out, st.Size()+4096-r); err != nil {
			return nil, err
		}
	}
	st, err = os.Stat(out)
	if err != nil {
		return nil, err
	}
	info.Size = st.Size()
	return info, nil
}

// run runs a tool with a fixed environment: nothing of the caller's
// environment (locale, TZ, config overrides) reaches it.
func run(ctx context.Context, log io.Writer, stdin io.Reader, env []string, bin string, args ...string) error {
	return runAs(ctx, false, log, stdin, env, bin, args...)
}

// runAs is run; with asRoot, a caller that is not root runs the tool as
// root of a user namespace of its own (its uid and gid mapped to 0), for
// tools that give what they create the owner of whoever runs them.
func runAs(ctx context.Context, asRoot bool, log io.Writer, stdin io.Reader, env []string, bin string, args ...string) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "TZ=UTC"}, env...)
	cmd.Stdin = stdin
	if asRoot && os.Geteuid() != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Cloneflags:  syscall.CLONE_NEWUSER,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}},
		}
	}
	var buf bytes.Buffer
	cmd.Stdout = io.MultiWriter(log, &buf)
	cmd.Stderr = io.MultiWriter(log, &buf)
	fmt.Fprintf(log, "$ %s %s\n", filepath.Base(bin), strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		msg := strings.TrimSpace(buf.String())
		if len(msg) > 2000 {
			msg = "…" + msg[len(msg)-2000:]
		}
		return fmt.Errorf("%s failed: %w\n%s", filepath.Base(bin), err, msg)
	}
	return nil
}

func buildSquashfs(ctx context.Context, tarPath, out string, opt ImageOptions) (*ImageInfo, error) {
	bin, err := toolMksquashfs.path()
	if err != nil {
		return nil, err
	}
	comp := opt.Compression
	if comp == "" {
		comp = "gzip"
	}
	switch comp {
	case "gzip", "xz", "zstd", "lz4", "lzo":
	default:
		return nil, fmt.Errorf("squashfs compression %q is not supported: use gzip, xz, zstd, lz4 or lzo", comp)
	}
	root, n, err := tarRoot(tarPath)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(tarPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if root.uid != 0 || root.gid != 0 {
		return nil, fmt.Errorf("the root directory is owned by %d:%d, and mksquashfs 4.5 -tar makes it root's: use erofs or ext4 for another owner", root.uid, root.gid)
	}
	// -tar reads the tree from stdin with its owners, modes, times, devices
	// and hard links: no staging, no root. In this mode mksquashfs 4.5
	// ignores -mkfs-time and -root-time (the root gets the clock's time)
	// but takes SOURCE_DATE_EPOCH for both, so the root directory's time is
	// the epoch; it also ignores -root-uid/-root-gid and pseudo files, and
	// gives the root directory the owner of whoever runs it: a caller that
	// is not root runs it as root of a user namespace. One processor keeps
	// the fragment order independent of scheduling.
	args := []string{"-", out, "-tar", "-noappend", "-reproducible", "-quiet", "-no-progress",
		"-no-xattrs", "-comp", comp, "-processors", "1",
		"-root-mode", strconv.FormatUint(uint64(root.mode), 8)}
	env := []string{"SOURCE_DATE_EPOCH=" + strconv.FormatInt(opt.Epoch, 10)}
	if err := runAs(ctx, true, opt.Log, bufio.NewReader(f), env, bin, args...); err != nil {
		if os.Geteuid() != 0 {
			err = fmt.Errorf("%w\n(mksquashfs ran in a user namespace so that the root directory is owned by root: build as root where user namespaces are not allowed)", err)
		}
		return nil, err
	}
	return &ImageInfo{Entries: n}, nil
}

type rootAttrs struct {
	mode     uint32
	uid, gid int
	mtime    int64
}

// tarRoot reads the root's attributes ("./") and counts the entries of a
// tree tar.
func tarRoot(tarPath string) (rootAttrs, int, error) {
	f, err := os.Open(tarPath)
	if err != nil {
		return rootAttrs{}, 0, err
	}
	defer f.Close()
	root := rootAttrs{mode: 0o755}
	n := 0
	tr := tar.NewReader(bufio.NewReader(f))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return root, n, nil
		}
		if err != nil {
			return rootAttrs{}, 0, fmt.Errorf("reading %s: %w", tarPath, err)
		}
		n++
		if h.Name == "./" {
			root = rootAttrs{uint32(h.Mode) & 0o7777, h.Uid, h.Gid, h.ModTime.Unix()}
		}
	}
}

// stageIn unpacks the tree into work/staging, for the mkfs tools that
// read a directory.
func stageIn(work, tarPath string, chown bool) (string, *stageInfo, error) {
	staging := filepath.Join(work, "staging")
	if err := os.Mkdir(staging, 0o700); err != nil {
		return "", nil, err
	}
	st, err := stage(tarPath, staging, chown)
	return staging, st, err
}

func buildErofs(ctx context.Context, tarPath, out, work string, opt ImageOptions) (*ImageInfo, error) {
	bin, err := toolMkfsErofs.path()
	if err != nil {
		return nil, err
	}
	staging, st, err := stageIn(work, tarPath, opt.Chown)
	if err != nil {
		return nil, err
	}
	args := []string{"--quiet", "-U", opt.UUID.String(), "-x", "-1"}
	fakeroot := !opt.Chown && !st.allRoot
	if !opt.Chown && st.allRoot {
		args = append(args, "--all-root")
	}
	switch c := opt.Compression; {
	case c == "":
	case c == "lz4" || c == "lz4hc" || regexp.MustCompile(`^lz4hc,([0-9]|1[0-2])$`).MatchString(c):
		args = append(args, "-z"+c)
	default:
		return nil, fmt.Errorf("erofs compression %q is not supported: use lz4, lz4hc or lz4hc,LEVEL (0-12), or none", c)
	}
	args = append(args, out, staging)
	// SOURCE_DATE_EPOCH (rather than -T) keeps each file's own mtime and
	// sets the build time.
	env := []string{"SOURCE_DATE_EPOCH=" + strconv.FormatInt(opt.Epoch, 10)}
	if fakeroot {
		// erofs-utils 1.5 takes owners from the staged files, which only
		// root can set: under fakeroot, which answers stat with the owners
		// chown was given, as root's staging would have them.
		if err := runFakeroot(ctx, opt.Log, work, st.owners, env, bin, args...); err != nil {
			return nil, fmt.Errorf("the tree has files not owned by root, which only root can stage: %w", err)
		}
		return &ImageInfo{Entries: st.entries}, nil
	}
	if err := run(ctx, opt.Log, nil, env, bin, args...); err != nil {
		return nil, err
	}
	return &ImageInfo{Entries: st.entries}, nil
}

// runFakeroot runs bin with args under fakeroot, after telling it the
// owners of the staged paths that root does not own (chown -h, by owner,
// from NUL-separated lists in work): tools that read owners from the
// files see the tree's, and files the caller owns read as root's.
func runFakeroot(ctx context.Context, log io.Writer, work string, owners map[[2]int][]string, env []string, bin string, args ...string) error {
	fr, err := toolFakeroot.path()
	if err != nil {
		return fmt.Errorf("%w (or build as root)", err)
	}
	keys := make([][2]int, 0, len(owners))
	for k := range owners {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i][0] < keys[j][0] || keys[i][0] == keys[j][0] && keys[i][1] < keys[j][1]
	})
	var script strings.Builder
	script.WriteString("set -e\n")
	for i, k := range keys {
		list := filepath.Join(work, fmt.Sprintf("owners-%d", i))
		if err := os.WriteFile(list, []byte(strings.Join(owners[k], "\x00")+"\x00"), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(&script, "xargs -0 -r chown -h -- %d:%d < '%s'\n", k[0], k[1], strings.ReplaceAll(list, "'", `'\''`))
	}
	script.WriteString(`exec "$@"` + "\n")
	return run(ctx, log, nil, env, fr, append([]string{"--", "sh", "-c", script.String(), "sh", bin}, args...)...)
}

// mke2fsConf is the whole mke2fs configuration: the host's
// /etc/mke2fs.conf never reaches the image. ext4 without a journal (the
// image is read-only), 4 KiB blocks, 256-byte inodes.
const mke2fsConf = `[defaults]
	base_features = sparse_super,large_file,filetype,dir_index,ext_attr
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384
	reserved_ratio = 0
	lazy_itable_init = false
	lazy_journal_init = false
[fs_types]
	ext4 = {
		features = extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
`

func buildExt4(ctx context.Context, tarPath, out, work string, opt ImageOptions) (*ImageInfo, error) {
	bin, err := toolMke2fs.path()
	if err != nil {
		return nil, err
	}
	dbg, err := toolDebugfs.path()
	if err != nil {
		return nil, err
	}
	staging, st, err := stageIn(work, tarPath, opt.Chown)
	if err != nil {
		return nil, err
	}
	if !opt.Chown && !st.allRoot {
		return nil, fmt.Errorf("the tree has files not owned by root, and mke2fs -d takes owners from the staged files, which only root can set: build as root, or use filesystem = \"squashfs\"")
	}
	conf := filepath.Join(work, "mke2fs.conf")
	if err := os.WriteFile(conf, []byte(mke2fsConf), 0o644); err != nil {
		return nil, err
	}
	// libext2fs treats E2FSPROGS_FAKE_TIME=0 as unset and takes the clock,
	// so epoch 0 becomes 1 second for the times e2fsprogs sets itself
	// (superblock write and creation times). Inode times are set below.
	fake := opt.Epoch
	if fake < 1 {
		fake = 1
	}
	env := []string{"MKE2FS_CONFIG=" + conf, "E2FSPROGS_FAKE_TIME=" + strconv.FormatInt(fake, 10)}
	inodes := st.inodes + 64
	size := opt.Size
	auto := size == 0
	if auto {
		// Data blocks, inode tables and directories, with room to spare;
		// grown and retried if mke2fs finds it too small.
		size = units.AlignUp(st.bytes+int64(st.inodes)*(4096+256)+16*units.MiB+st.bytes/8, units.MiB)
	}
	seed := opt.UUID.String()
	for attempt := 0; ; attempt++ {
		os.Remove(out)
		args := []string{"-q", "-F", "-t", "ext4", "-d", staging, "-U", seed, "-N", strconv.Itoa(inodes),
			"-E", "hash_seed=" + seed + ",root_owner=" + strconv.Itoa(st.rootUID) + ":" + strconv.Itoa(st.rootGID),
			"-L", opt.Label, out, strconv.FormatInt(size/1024, 10) + "k"}
		err = run(ctx, opt.Log, nil, env, bin, args...)
		if err == nil {
			break
		}
		if !auto || attempt >= 4 || !strings.Contains(err.Error(), "Could not allocate") && !strings.Contains(err.Error(), "No space left") {
			if strings.Contains(err.Error(), "Could not allocate") || strings.Contains(err.Error(), "No space left") {
				return nil, fmt.Errorf("%w\nthe ext4 size %s is too small for the tree: raise size", err, units.FormatSize(size))
			}
			return nil, err
		}
		size = units.AlignUp(size+size/2, units.MiB)
	}
	if err := fixExt4Times(ctx, dbg, out, work, env, opt, st); err != nil {
		return nil, err
	}
	return &ImageInfo{Entries: st.entries}, nil
}

var debugfsCountRe = regexp.MustCompile(`Inode count:\s+(\d+)[\s\S]*Free inodes:\s+(\d+)`)

// fixExt4Times sets what mke2fs 1.47.0 copies from the staged files' ctime
// and the clock: the access, change and creation times of every inode
// become the epoch, and the root's and lost+found's modification times
// the tree's root time and the epoch. mke2fs numbers inodes in one run from
// 11 up, which the free-inode search confirms before anything is written.
func fixExt4Times(ctx context.Context, dbg, img, work string, env []string, opt ImageOptions, st *stageInfo) error {
	var stats bytes.Buffer
	if err := run(ctx, &stats, nil, env, dbg, "-R", "stats", img); err != nil {
		return err
	}
	m := debugfsCountRe.FindStringSubmatch(stats.String())
	if m == nil {
		return fmt.Errorf("debugfs stats of %s: no inode counts in:\n%s", img, stats.String())
	}
	total, _ := strconv.Atoi(m[1])
	free, _ := strconv.Atoi(m[2])
	used := total - free // reserved inodes 1-10 count as used
	var ffi bytes.Buffer
	if err := run(ctx, &ffi, nil, env, dbg, "-R", "ffi", img); err != nil {
		return err
	}
	if want := fmt.Sprintf("Free inode found: %d", used+1); !strings.Contains(ffi.String(), want) {
		return fmt.Errorf("ext4 image %s: the used inodes are not 1-%d (debugfs ffi: %s); cannot fix their times", img, used, strings.TrimSpace(ffi.String()))
	}
	e := strconv.FormatInt(opt.Epoch, 10)
	var script strings.Builder
	set := func(ino int, field, v string) { fmt.Fprintf(&script, "sif <%d> %s %s\n", ino, field, v) }
	inos := []int{2}
	for i := 11; i <= used; i++ {
		inos = append(inos, i)
	}
	for _, ino := range inos {
		for _, f := range []string{"atime", "ctime", "crtime"} {
			set(ino, f, "@"+e)
			set(ino, f+"_extra", "0")
		}
		set(ino, "mtime_extra", "0")
		if !opt.Chown {
			set(ino, "uid", "0")
			set(ino, "gid", "0")
		}
	}
	set(2, "mtime", "@"+strconv.FormatInt(st.rootTime, 10))
	set(11, "mtime", "@"+e)
	sp := filepath.Join(work, "debugfs.cmd")
	if err := os.WriteFile(sp, []byte(script.String()), 0o644); err != nil {
		return err
	}
	return run(ctx, opt.Log, nil, env, dbg, "-w", "-f", sp, img)
}
