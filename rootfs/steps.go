package rootfs

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cocobuild/cocobuild/internal/derive"
	"github.com/cocobuild/cocobuild/internal/filecopy"
	"github.com/cocobuild/cocobuild/recipes"
	"github.com/cocobuild/cocobuild/rootfs/verity"
)

// Steps implements recipes.Node: the tree as a tar, the file system image
// made from it, and the dm-verity tree of the image.
func (n *node) Steps() []*recipes.Step {
	steps := []*recipes.Step{{
		ID: "tree", Kind: "rootfs/tree", Version: "2", Params: n.tree, Inputs: n.inputs,
		Probe: n.probe, Run: n.runTree,
	}, {
		ID: "image", Kind: "rootfs/image", Version: "1", Params: n.image, After: []string{"tree"},
		// The mkfs tools' versions join the key: another version may
		// write other bytes.
		Probe: func(ctx context.Context) (string, error) {
			v, err := ToolVersions(ctx, n.image.Filesystem)
			if err != nil {
				return "", fmt.Errorf("rootfs.%s: %w", n.name, err)
			}
			return v, nil
		},
		Run: n.runImage,
	}}
	if n.verity != nil {
		steps = append(steps, &recipes.Step{
			ID: "verity", Kind: "rootfs/verity", Version: "1", Params: n.verity, After: []string{"image"},
			Run: n.runVerity,
		})
	}
	return steps
}

// probe hashes what the tree step reads from outside the cache: source
// directories (names, modes, contents) and OCI layouts (their index, which
// pins every blob by digest).
func (n *node) probe(ctx context.Context) (string, error) {
	var parts []string
	if n.tree.Packages != nil {
		v, err := n.probePackages(ctx)
		if err != nil {
			return "", err
		}
		parts = append(parts, "packages "+v)
	}
	for i, s := range n.tree.Sources {
		switch {
		case s.Dir != "":
			// Remembered while no file or directory below it changes,
			// so a rebuild does not hash the tree again.
			dg, err := recipes.Memoize(ctx, "rootfs-dir "+s.abs, func() (string, []string, error) {
				return dirDigest(fmt.Sprintf("rootfs.%s: from dir %q", n.name, s.Dir), s.abs)
			})
			if err != nil {
				return "", err
			}
			parts = append(parts, fmt.Sprintf("%d dir %s", i, dg))
			if n.probed == nil {
				n.probed = map[int]string{}
			}
			n.probed[i] = dg
		case s.OCILayout != "":
			sum, err := hashFile(filepath.Join(s.abs, "index.json"))
			if err != nil {
				return "", fmt.Errorf("rootfs.%s: from oci_layout %q: %w", n.name, s.OCILayout, err)
			}
			parts = append(parts, fmt.Sprintf("%d oci %x", i, sum))
		}
	}
	return strings.Join(parts, ";"), nil
}

func (n *node) runTree(ctx context.Context, sc *recipes.StepContext) error {
	spool, err := os.MkdirTemp("", "cocobuild-rootfs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(spool)
	t := NewTree(spool, sc.Epoch)
	name := "rootfs." + n.name
	if n.tree.Packages != nil {
		dir, err := os.MkdirTemp("", "cocobuild-debroot-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		tarPath, err := n.installPackages(ctx, sc, dir)
		if err != nil {
			return err
		}
		f, err := os.Open(tarPath)
		if err != nil {
			return err
		}
		err = t.AddTar(name+": packages", f, "")
		f.Close()
		os.RemoveAll(dir)
		if err != nil {
			return err
		}
		normalisePackageTree(t)
	}
	for i, s := range n.tree.Sources {
		if err := ctx.Err(); err != nil {
			return err
		}
		switch {
		case s.Dir != "":
			src := fmt.Sprintf("%s: from dir %q", name, s.Dir)
			dg, err := t.AddDir(src, s.abs, s.At)
			if err != nil {
				return err
			}
			if want, ok := n.probed[i]; ok && want != dg {
				return fmt.Errorf("%s: the directory changed while the build read it; build again", src)
			}
			fmt.Fprintf(sc.Log, "%s: %s\n", src, dg)
		case s.Tar >= 0:
			a := n.inputs[s.Tar]
			f, err := os.Open(a.Path)
			if err != nil {
				return err
			}
			err = t.AddTar(fmt.Sprintf("%s: from tar %s", name, a.Origin), f, s.At)
			f.Close()
			if err != nil {
				return err
			}
		case s.OCILayout != "":
			src := fmt.Sprintf("%s: from oci_layout %q", name, s.OCILayout)
			img, dg, err := OpenLayoutImage(s.abs, s.Ref, s.Platform)
			if err != nil {
				return fmt.Errorf("%s: %w", src, err)
			}
			fmt.Fprintf(sc.Log, "%s: image %s\n", src, dg)
			if err := t.AddImage(ctx, src, img); err != nil {
				return err
			}
		case s.Image != "":
			src := fmt.Sprintf("%s: from image %q", name, s.Image)
			img, err := PullImage(ctx, s.Image, s.Platform)
			if err != nil {
				return fmt.Errorf("%s: %w", src, err)
			}
			if err := t.AddImage(ctx, src, img); err != nil {
				return err
			}
		}
	}
	for _, it := range n.tree.Items {
		src := fmt.Sprintf("%s: %s %q", name, it.Type, it.Path)
		var err error
		switch it.Type {
		case "file":
			if it.Input >= 0 {
				var f *os.File
				if f, err = os.Open(n.inputs[it.Input].Path); err == nil {
					err = t.AddFile(src, it.Path, f, it.Mode, it.UID, it.GID, sc.Epoch)
					f.Close()
				}
			} else {
				err = t.AddFile(src, it.Path, strings.NewReader(it.Content), it.Mode, it.UID, it.GID, sc.Epoch)
			}
		case "dir":
			err = t.AddEntry(src, it.Path, Entry{Type: TypeDir, Mode: it.Mode, UID: it.UID, GID: it.GID, MTime: sc.Epoch})
		case "symlink":
			err = t.AddEntry(src, it.Path, Entry{Type: TypeSymlink, Link: it.Target, UID: it.UID, GID: it.GID, MTime: sc.Epoch})
		case "char", "block", "fifo":
			typ := map[string]Type{"char": TypeChar, "block": TypeBlock, "fifo": TypeFIFO}[it.Type]
			err = t.AddEntry(src, it.Path, Entry{Type: typ, Mode: it.Mode, UID: it.UID, GID: it.GID, MTime: sc.Epoch, Major: it.Major, Minor: it.Minor})
		}
		if err != nil {
			return err
		}
	}
	for _, e := range n.tree.Exclude {
		p, _ := ParsePattern(e)
		fmt.Fprintf(sc.Log, "exclude %s: %d entries\n", e, t.Exclude(p))
	}
	for _, o := range n.tree.Overrides {
		p, _ := ParsePattern(o.Pattern)
		if t.Override(p, Attrs{UID: o.UID, GID: o.GID, Mode: o.Mode, FileMode: o.FileMode, DirMode: o.DirMode}) == 0 {
			return fmt.Errorf("%s: override %q matches no entry of the tree (patterns are absolute; ** matches any depth)", name, o.Pattern)
		}
	}
	out, err := os.Create(filepath.Join(sc.OutDir, "tree.tar"))
	if err != nil {
		return err
	}
	entries, err := t.WriteTar(out)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	sc.Meta["entries"] = entries
	return nil
}

func (n *node) imageName() string { return "rootfs." + n.image.Filesystem }

func (n *node) runImage(ctx context.Context, sc *recipes.StepContext) error {
	tarArt, err := sc.After["tree"].File("tree.tar")
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "cocobuild-mkfs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	id := derive.UUID("rootfs "+n.image.Filesystem, tarArt.SHA256)
	info, err := BuildImage(ctx, tarArt.Path, filepath.Join(sc.OutDir, n.imageName()), work, ImageOptions{
		Type: n.image.Filesystem, UUID: id, Epoch: sc.Epoch, Label: n.image.Label,
		Compression: n.image.Compression, Size: n.image.Size, Chown: os.Geteuid() == 0, Log: sc.Log,
	})
	if err != nil {
		return fmt.Errorf("rootfs.%s: %w", n.name, err)
	}
	sc.Meta["uuid"] = id.String()
	sc.Meta["entries"] = info.Entries
	if v, err := ToolVersions(ctx, n.image.Filesystem); err == nil {
		sc.Meta["mkfs"] = v
	}
	return nil
}

func (n *node) runVerity(ctx context.Context, sc *recipes.StepContext) error {
	img, err := sc.After["image"].File(n.imageName())
	if err != nil {
		return err
	}
	v := n.verity
	p := verity.Params{Algorithm: v.Algorithm, DataBlockSize: v.DataBlockSize, HashBlockSize: v.HashBlockSize, Superblock: v.Superblock}
	if v.Salt == "derived" {
		p.Salt = verity.DeriveSalt(img.SHA256)
	} else {
		p.Salt, _ = hex.DecodeString(v.Salt)
	}
	if v.Superblock {
		p.UUID = derive.UUID("verity superblock", img.SHA256)
	}
	var r *verity.Result
	if v.Layout == verity.LayoutAppended {
		out := filepath.Join(sc.OutDir, n.imageName())
		if _, err := filecopy.Copy(img.Path, out, 0o644); err != nil {
			return err
		}
		r, err = verity.Append(ctx, out, p)
	} else {
		r, err = verity.Format(ctx, img.Path, filepath.Join(sc.OutDir, "verity"), p)
	}
	if err != nil {
		return fmt.Errorf("rootfs.%s: %w", n.name, err)
	}
	sc.Meta["verity"] = r
	return nil
}
