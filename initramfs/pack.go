package initramfs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/u-root/mkuimage/fileflag"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/internal/newc"
	"github.com/cocobuild/cocobuild/recipes"
)

// Steps implements recipes.Node: the u-root busybox and the agent are
// built in steps of their own (cached apart, so that an image whose
// agent changed does not rebuild the busybox), then packed.
func (n *node) Steps() []*recipes.Step {
	var steps []*recipes.Step
	pack := &recipes.Step{ID: "image", Kind: "initramfs/pack", Version: "1", Params: n.spec, Inputs: n.inputs}
	if n.spec.Uroot {
		params := map[string]any{"commands": n.commands, "init": n.initCmd, "shell": n.shell,
			"goos": guestGOOS, "goarch": guestGOARCH, "builder": builderVersions()}
		dir, cmds, initCmd, shell := n.goModule, n.commands, n.initCmd, n.shell
		steps = append(steps, &recipes.Step{
			ID: "busybox", Kind: "initramfs/uroot-busybox", Version: "2", Params: params,
			Probe: func(ctx context.Context) (string, error) {
				d, _, err := goSourceDigest(ctx, dir, cmds, false)
				return d, err
			},
			Run: func(ctx context.Context, sc *recipes.StepContext) error {
				// The step's work directory (beside OutDir) is removed
				// when the step fails or is cancelled.
				return buildBusybox(ctx, dir, cmds, initCmd, shell, filepath.Dir(sc.OutDir), filepath.Join(sc.OutDir, "uroot.cpio"), sc.Log)
			},
		})
		pack.After = append(pack.After, "busybox")
	}
	if n.agentPkg != "" {
		dir, pkg := n.goModule, n.agentPkg
		steps = append(steps, &recipes.Step{
			ID: "agent", Kind: "initramfs/go-build", Version: "1",
			Params: map[string]any{"package": pkg, "goos": guestGOOS, "goarch": guestGOARCH, "flags": "-trimpath -ldflags=-buildid= -buildvcs=false"},
			Probe: func(ctx context.Context) (string, error) {
				d, paths, err := goSourceDigest(ctx, dir, []string{pkg}, true)
				if err == nil && len(paths) != 1 {
					err = fmt.Errorf("agent package %q names %d packages, want one main package", pkg, len(paths))
				}
				return d, err
			},
			Run: func(ctx context.Context, sc *recipes.StepContext) error {
				return buildGoBinary(ctx, dir, pkg, filepath.Join(sc.OutDir, "agent"), sc.Log)
			},
		})
		pack.After = append(pack.After, "agent")
	}
	pack.Run = func(ctx context.Context, sc *recipes.StepContext) error { return n.pack(ctx, sc) }
	return append(steps, pack)
}

func (n *node) imageName() string { return "initramfs.cpio" + extension(n.spec.Compression) }

// pack assembles the archive: base directories and console, the u-root
// part, the agent, kernel modules, the recipe's entries; sorted, 0:0,
// mtimes = epoch; then compressed.
func (n *node) pack(ctx context.Context, sc *recipes.StepContext) error {
	s := n.spec
	t := newTree()
	for _, e := range baseEntries() {
		if err := t.add(e, false); err != nil {
			return err
		}
	}
	if s.Uroot {
		res := sc.After["busybox"]
		f, err := os.Open(filepath.Join(res.Dir, "uroot.cpio"))
		if err != nil {
			return err
		}
		defer f.Close()
		recs, err := readCPIO(f)
		if err != nil {
			return fmt.Errorf("the u-root archive: %w", err)
		}
		for _, r := range recs {
			e, err := entryFromRecord(r, "u-root")
			if err != nil {
				return err
			}
			if err := t.add(e, true); err != nil {
				return err
			}
		}
	}
	if s.AgentPath != "" {
		var bin string
		if s.AgentInput >= 0 {
			bin = n.inputs[s.AgentInput].Path
		} else {
			bin = filepath.Join(sc.After["agent"].Dir, "agent")
		}
		b, err := os.ReadFile(bin)
		if err != nil {
			return err
		}
		if err := t.add(&entry{name: s.AgentPath, mode: newc.TypeReg | 0o755, data: b, origin: "the agent"}, false); err != nil {
			return err
		}
		// u-root's init starts /bin/uinit; without u-root the agent is /init.
		link := "bin/uinit"
		if !s.Uroot {
			link = "init"
		}
		if s.AgentPath != link {
			if err := t.add(&entry{name: link, mode: newc.TypeLink | 0o777, data: []byte("/" + s.AgentPath), origin: "the agent"}, true); err != nil {
				return err
			}
		}
		if len(s.AgentArgs) > 0 {
			if !s.Uroot {
				return fmt.Errorf("agent args are passed by u-root's init (etc/uinit.flags): add a uroot block with core/init, or leave args out")
			}
			if err := t.add(&entry{name: "etc/uinit.flags", mode: newc.TypeReg | 0o444, data: []byte(fileflag.ArgvToFile(s.AgentArgs)), origin: "the agent args"}, false); err != nil {
				return err
			}
		}
	}
	if s.ModuleInput >= 0 {
		f, err := os.Open(n.inputs[s.ModuleInput].Path)
		if err != nil {
			return err
		}
		tr, err := readModuleTree(bufio.NewReaderSize(f, 1<<20))
		f.Close()
		if err != nil {
			return fmt.Errorf("modules from %s: %w", n.inputs[s.ModuleInput].Origin, err)
		}
		res, err := resolveModules(tr, s.Modules)
		if err != nil {
			return fmt.Errorf("modules from %s: %w", n.inputs[s.ModuleInput].Origin, err)
		}
		if len(res.Modules) > 0 {
			dir := "lib/modules/" + res.Release + "/"
			for _, m := range res.Modules {
				if err := t.add(&entry{name: dir + m.Path, mode: newc.TypeReg | 0o644, data: m.data, origin: "module " + m.Name}, false); err != nil {
					return err
				}
			}
			conf := "# Loaded in this order by u-root's init (or systemd-modules-load), dependencies from modules.dep.\n" + strings.Join(res.Load, "\n") + "\n"
			for _, e := range []*entry{
				{name: dir + "modules.dep", mode: newc.TypeReg | 0o644, data: res.DepFile, origin: "the modules"},
				{name: "lib/modules-load.d/cocobuild.conf", mode: newc.TypeReg | 0o644, data: []byte(conf), origin: "the modules"},
			} {
				if err := t.add(e, false); err != nil {
					return err
				}
			}
		}
		// Stored as it reads back from the cache, so that cold and warm
		// builds write the same manifest.
		var m map[string]any
		j, err := json.Marshal(res)
		if err == nil {
			err = json.Unmarshal(j, &m)
		}
		if err != nil {
			return err
		}
		sc.Meta["modules"] = m
	}
	for _, e := range s.Entries {
		te := &entry{name: e.Path, origin: "the recipe's " + e.Type + " /" + e.Path}
		switch e.Type {
		case "file":
			te.mode = newc.TypeReg | uint64(e.Mode)
			te.data = []byte(e.Content)
			if e.Input >= 0 {
				b, err := os.ReadFile(n.inputs[e.Input].Path)
				if err != nil {
					return err
				}
				te.data = b
			}
		case "dir":
			te.mode = newc.TypeDir | uint64(e.Mode)
		case "symlink":
			te.mode, te.data = newc.TypeLink|0o777, []byte(e.Target)
		case "char", "block", "fifo":
			te.mode = map[string]uint64{"char": newc.TypeChr, "block": newc.TypeBlk, "fifo": newc.TypeFIFO}[e.Type] | uint64(e.Mode)
			te.rmajor, te.rminor = e.Major, e.Minor
		}
		te.uid, te.gid = uint64(e.UID), uint64(e.GID)
		// The recipe's entries may replace the base ones (console, /tmp…).
		old, exists := t.entries[te.name]
		if exists && old.origin != "the base layout" && !(old.mode&newc.TypeMask == newc.TypeDir && te.mode&newc.TypeMask == newc.TypeDir) {
			return fmt.Errorf("/%s is given twice: by %s and by %s", te.name, old.origin, te.origin)
		}
		t.entries[te.name] = te
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var raw bytes.Buffer
	if err := t.writeCPIO(&raw, sc.Epoch); err != nil {
		return err
	}
	sc.Meta["entries"] = len(t.entries)
	sc.Meta["uncompressed_size"] = raw.Len()
	f, err := os.Create(filepath.Join(sc.OutDir, n.imageName()))
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := compress(bw, raw.Bytes(), s.Compression); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// baseEntries are in every image: the mount points and the console that
// the kernel opens for init before anything mounts devtmpfs.
func baseEntries() []*entry {
	const o = "the base layout"
	return []*entry{
		{name: "dev", mode: newc.TypeDir | 0o755, origin: o},
		{name: "dev/console", mode: newc.TypeChr | 0o600, rmajor: 5, rminor: 1, origin: o},
		{name: "dev/null", mode: newc.TypeChr | 0o666, rmajor: 1, rminor: 3, origin: o},
		{name: "etc", mode: newc.TypeDir | 0o755, origin: o},
		{name: "proc", mode: newc.TypeDir | 0o755, origin: o},
		{name: "sys", mode: newc.TypeDir | 0o755, origin: o},
		{name: "tmp", mode: newc.TypeDir | 0o1777, origin: o},
		{name: "run", mode: newc.TypeDir | 0o755, origin: o},
	}
}

// Finish implements recipes.Node.
func (n *node) Finish(results map[string]*recipes.Result) (*recipes.Output, error) {
	res := results["image"]
	a, err := res.File(n.imageName())
	if err != nil {
		return nil, err
	}
	a.Origin = "initramfs." + n.name
	extra := map[string]any{"compression": n.spec.Compression, "entries": res.Meta["entries"], "uncompressed_size": res.Meta["uncompressed_size"]}
	if n.spec.Uroot {
		extra["uroot_commands"] = n.commands
	}
	if n.spec.AgentPath != "" {
		extra["agent"] = "/" + n.spec.AgentPath
	}
	if m, ok := res.Meta["modules"]; ok {
		extra["modules"] = m
	}
	return &recipes.Output{
		Value: cty.ObjectVal(map[string]cty.Value{
			"image":       recipes.ArtifactVal(a),
			"sha256":      cty.StringVal(a.SHA256),
			"compression": cty.StringVal(n.spec.Compression),
		}),
		Artifacts: []recipes.OutputArtifact{{
			Name: "initramfs." + n.name, Kind: "initramfs", Path: "initramfs/" + n.name + "/" + n.imageName(), File: a, Extra: extra,
		}},
	}, nil
}
