package rootfs

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"
)

// stageInfo describes a tree unpacked for a mkfs tool.
type stageInfo struct {
	entries  int   // tar entries, the root included
	inodes   int   // distinct inodes (hard links counted once)
	bytes    int64 // file contents
	allRoot  bool  // every entry is owned by 0:0
	rootMode uint32
	rootUID  int
	rootGID  int
	rootTime int64
	// owners are the staged paths not owned by 0:0, by owner, when the
	// owners were not set (chown false): what a tool run under fakeroot
	// is told.
	owners map[[2]int][]string
}

// stage unpacks a tar written by WriteTar into dir (which must exist and be
// empty), with the archive's modes, times and, when chown is set, owners.
// It never follows a symlink: parents are directories it made itself.
func stage(tarPath, dir string, chown bool) (*stageInfo, error) {
	f, err := os.Open(tarPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info := &stageInfo{allRoot: true, rootMode: 0o755}
	type fix struct {
		p        string
		typ      byte
		mode     uint32
		uid, gid int
		mtime    int64
	}
	var fixes []fix
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", tarPath, err)
		}
		rel, err := CleanName("tree", h.Name)
		if err != nil {
			return nil, err
		}
		info.entries++
		if h.Uid != 0 || h.Gid != 0 {
			info.allRoot = false
		}
		mode := uint32(h.Mode) & 0o7777
		if rel == "" {
			info.rootMode, info.rootUID, info.rootGID, info.rootTime = mode, h.Uid, h.Gid, h.ModTime.Unix()
			fixes = append(fixes, fix{dir, h.Typeflag, mode, h.Uid, h.Gid, h.ModTime.Unix()})
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if h.Typeflag != tar.TypeLink {
			info.inodes++
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.Mkdir(p, 0o700)
		case tar.TypeReg:
			info.bytes += h.Size
			err = writeStaged(p, tr)
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		case tar.TypeLink:
			t, lerr := CleanName("tree", h.Linkname)
			if lerr != nil {
				return nil, lerr
			}
			err = os.Link(filepath.Join(dir, filepath.FromSlash(t)), p)
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			m := uint32(unix.S_IFIFO)
			switch h.Typeflag {
			case tar.TypeChar:
				m = unix.S_IFCHR
			case tar.TypeBlock:
				m = unix.S_IFBLK
			}
			err = unix.Mknod(p, m|0o600, int(unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor))))
			if errors.Is(err, unix.EPERM) {
				err = fmt.Errorf("%w: creating device nodes needs root (or use filesystem = \"squashfs\", which takes them from the tree without root)", err)
			}
		default:
			err = fmt.Errorf("unexpected tar type %q", h.Typeflag)
		}
		if err != nil {
			return nil, fmt.Errorf("unpacking %q: %w", "/"+rel, err)
		}
		if h.Typeflag != tar.TypeLink {
			fixes = append(fixes, fix{p, h.Typeflag, mode, h.Uid, h.Gid, h.ModTime.Unix()})
			if !chown && (h.Uid != 0 || h.Gid != 0) {
				if info.owners == nil {
					info.owners = map[[2]int][]string{}
				}
				k := [2]int{h.Uid, h.Gid}
				info.owners[k] = append(info.owners[k], p)
			}
		}
	}
	// Owners first (chown clears setuid bits), then modes, then times, the
	// deepest paths first so that setting a directory's time comes after
	// everything made inside it.
	sort.SliceStable(fixes, func(i, j int) bool { return fixes[i].p > fixes[j].p })
	for _, x := range fixes {
		if chown {
			if err := os.Lchown(x.p, x.uid, x.gid); err != nil {
				return nil, fmt.Errorf("setting the owner of %s: %w", x.p, err)
			}
		}
		if x.typ != tar.TypeSymlink {
			if err := unix.Chmod(x.p, x.mode); err != nil {
				return nil, fmt.Errorf("setting the mode of %s: %w", x.p, err)
			}
		}
		ts := []unix.Timespec{{Sec: x.mtime}, {Sec: x.mtime}}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, x.p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return nil, fmt.Errorf("setting the time of %s: %w", x.p, err)
		}
	}
	return info, nil
}

func writeStaged(p string, r io.Reader) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
