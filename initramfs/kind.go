package initramfs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/u-root/mkuimage/fileflag"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/recipes"
	"github.com/cocobuild/cocobuild/recipes/entries"
)

// Kind implements the `initramfs "NAME" { … }` block; see docs/recipes.md.
type Kind struct{}

// Type implements recipes.Kind.
func (Kind) Type() string { return "initramfs" }

var (
	urootSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "commands", Required: true}, {Name: "init"}, {Name: "shell"},
	}}
	agentSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "package"}, {Name: "file"}, {Name: "path", Required: true}, {Name: "args"},
	}}
	modulesSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "from", Required: true}, {Name: "load", Required: true},
	}}
)

// Schema implements recipes.Kind.
func (Kind) Schema() *hcl.BodySchema {
	return &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "compression"}, {Name: "go_module"}, {Name: "description"}},
		Blocks: append([]hcl.BlockHeaderSchema{
			{Type: "uroot"}, {Type: "agent"}, {Type: "modules"},
		}, entries.Blocks()...),
	}
}

// OutputType implements recipes.Kind: `initramfs.NAME` has the image (for
// kernel/measure/disk blocks), its sha256 and its compression.
func (Kind) OutputType() cty.Type {
	return cty.Object(map[string]cty.Type{
		"image":       recipes.ArtifactType,
		"sha256":      cty.String,
		"compression": cty.String,
	})
}

// spec is what the pack step assembles; it is the step's parameters, so
// every field is part of the key.
type spec struct {
	Compression string      `json:"compression"`
	AgentPath   string      `json:"agent_path,omitempty"`
	AgentArgs   []string    `json:"agent_args,omitempty"`
	AgentInput  int         `json:"agent_input"` // index into Inputs, -1 when built
	Uroot       bool        `json:"uroot"`
	Modules     []string    `json:"modules,omitempty"`
	ModuleInput int         `json:"module_input"` // index into Inputs, -1 without modules
	Entries     []specEntry `json:"entries,omitempty"`
}

type specEntry struct {
	Path    string `json:"path"` // without the leading slash
	Type    string `json:"type"` // file, dir, symlink, char, block, fifo
	Mode    uint32 `json:"mode"`
	UID     int    `json:"uid,omitempty"`
	GID     int    `json:"gid,omitempty"`
	Content string `json:"content,omitempty"`
	Input   int    `json:"input"` // index into Inputs for a file from an artifact, else -1
	Target  string `json:"target,omitempty"`
	Major   uint64 `json:"major,omitempty"`
	Minor   uint64 `json:"minor,omitempty"`
}

type node struct {
	name     string
	spec     spec
	inputs   []recipes.Artifact
	goModule string   // directory of the Go module for uroot and agent packages
	commands []string // u-root command import paths
	initCmd  string
	shell    string
	agentPkg string
}

// urootPrefix expands short u-root command names ("core/ls").
const urootPrefix = "github.com/u-root/u-root/cmds/"

// Decode implements recipes.Kind.
func (k Kind) Decode(b *recipes.Block, ctx *hcl.EvalContext) (recipes.Node, hcl.Diagnostics) {
	content, diags := b.Body.Content(k.Schema())
	if diags.HasErrors() {
		return nil, diags
	}
	n := &node{name: b.Name, spec: spec{Compression: "zstd", AgentInput: -1, ModuleInput: -1}}
	str := func(attrs hcl.Attributes, name string, dst *string) bool {
		if a, ok := attrs[name]; ok {
			diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.String, dst)...)
			return true
		}
		return false
	}
	if str(content.Attributes, "compression", &n.spec.Compression) {
		ok := false
		for _, c := range Compressions {
			ok = ok || c == n.spec.Compression
		}
		if !ok {
			diags = append(diags, recipes.Diag("Unknown compression", fmt.Sprintf("compression is one of %s, not %q.", strings.Join(Compressions, ", "), n.spec.Compression),
				content.Attributes["compression"].Expr.Range()))
		}
	}
	var desc string
	str(content.Attributes, "description", &desc)
	recipeDir := filepath.Dir(b.DefRange.Filename)
	var goModRange = b.DefRange
	relModule := false
	if str(content.Attributes, "go_module", &n.goModule) {
		goModRange = content.Attributes["go_module"].Expr.Range()
		if relModule = !filepath.IsAbs(n.goModule); relModule {
			n.goModule = filepath.Join(recipeDir, n.goModule)
		}
	}
	seenBlock := map[string]*hcl.Block{}
	var items entries.List
	needGo := false
	for _, blk := range content.Blocks {
		switch blk.Type {
		case "uroot", "agent", "modules":
			if prev, dup := seenBlock[blk.Type]; dup {
				diags = append(diags, recipes.Diag("Duplicate "+blk.Type+" block", fmt.Sprintf("An initramfs has at most one %s block; the first is at %s.", blk.Type, prev.DefRange), blk.DefRange))
				continue
			}
			seenBlock[blk.Type] = blk
		}
		switch blk.Type {
		case "uroot":
			diags = append(diags, n.decodeUroot(blk, ctx)...)
			needGo = true
		case "agent":
			d, built := n.decodeAgent(blk, ctx)
			diags = append(diags, d...)
			needGo = needGo || built
		case "modules":
			diags = append(diags, n.decodeModules(blk, ctx)...)
		default:
			had := len(items.Entries)
			diags = append(diags, items.Decode(blk, ctx)...)
			if len(items.Entries) > had {
				n.addEntry(items.Entries[had])
			}
		}
	}
	if needGo && n.goModule == "" {
		if dir, ok := findGoModule(recipeDir); ok {
			n.goModule = dir
		} else {
			diags = append(diags, recipes.Diag("No Go module", "The uroot commands and agent packages are built in a Go module: put the recipe inside one (a directory with go.mod above it) or give go_module = \"DIR\" (absolute, or relative to the recipe's directory).", b.DefRange))
		}
	} else if needGo {
		if _, err := os.Stat(filepath.Join(n.goModule, "go.mod")); err != nil {
			diags = append(diags, recipes.Diag("Not a Go module", notModule(n.goModule, relModule, recipeDir), goModRange))
		}
	}
	if len(n.spec.AgentArgs) > 0 && !n.spec.Uroot {
		diags = append(diags, recipes.Diag("Agent args without u-root", "u-root's init passes the agent its args (etc/uinit.flags): add a uroot block with core/init, or leave args out.", seenBlock["agent"].DefRange))
	}
	if n.spec.AgentPath == "" && !n.spec.Uroot && len(n.spec.Entries) == 0 {
		diags = append(diags, recipes.Diag("Empty initramfs", "Give a uroot block, an agent block, or files.", b.DefRange))
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return n, diags
}

// notModule explains a go_module directory without go.mod.
func notModule(dir string, relative bool, recipeDir string) string {
	msg := fmt.Sprintf("%s holds no go.mod", dir)
	if relative {
		msg += fmt.Sprintf(" (a relative go_module is relative to the recipe's directory, %s, not to the working directory)", recipeDir)
	}
	return msg + "."
}

// findGoModule returns the nearest directory at or above dir holding go.mod.
func findGoModule(dir string) (string, bool) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, true
		}
		p := filepath.Dir(dir)
		if p == dir {
			return "", false
		}
		dir = p
	}
}

func (n *node) decodeUroot(blk *hcl.Block, ctx *hcl.EvalContext) hcl.Diagnostics {
	c, diags := blk.Body.Content(urootSchema)
	if diags.HasErrors() {
		return diags
	}
	var cmds []string
	diags = append(diags, recipes.DecodeExpr(c.Attributes["commands"].Expr, ctx, cty.List(cty.String), &cmds)...)
	seen := map[string]bool{}
	for _, cmd := range cmds {
		full := cmd
		if first, _, _ := strings.Cut(cmd, "/"); !strings.Contains(first, ".") {
			full = urootPrefix + cmd
		}
		base := path.Base(full)
		if cmd == "" || seen[base] {
			diags = append(diags, recipes.Diag("Invalid u-root command", fmt.Sprintf("%q: each command is a u-root command such as \"core/ls\" or a Go import path, and their last elements differ.", cmd),
				c.Attributes["commands"].Expr.Range()))
			continue
		}
		seen[base] = true
		n.commands = append(n.commands, full)
	}
	sort.Strings(n.commands)
	if len(n.commands) == 0 && !diags.HasErrors() {
		diags = append(diags, recipes.Diag("No u-root commands", "List at least core/init.", c.Attributes["commands"].Expr.Range()))
	}
	n.initCmd, n.shell = "", ""
	if seen["init"] {
		n.initCmd = "init"
	}
	if seen["gosh"] {
		n.shell = "gosh"
	}
	for _, a := range []struct {
		name string
		dst  *string
	}{{"init", &n.initCmd}, {"shell", &n.shell}} {
		if attr, ok := c.Attributes[a.name]; ok {
			diags = append(diags, recipes.DecodeExpr(attr.Expr, ctx, cty.String, a.dst)...)
			if *a.dst != "" && !strings.Contains(*a.dst, "/") && !seen[*a.dst] {
				diags = append(diags, recipes.Diag("Unknown "+a.name+" command", fmt.Sprintf("%s %q is not among the commands (or give an absolute path).", a.name, *a.dst), attr.Expr.Range()))
			}
		}
	}
	n.spec.Uroot = true
	return diags
}

func (n *node) decodeAgent(blk *hcl.Block, ctx *hcl.EvalContext) (hcl.Diagnostics, bool) {
	c, diags := blk.Body.Content(agentSchema)
	if diags.HasErrors() {
		return diags, false
	}
	_, hasPkg := c.Attributes["package"]
	fileAttr, hasFile := c.Attributes["file"]
	if hasPkg == hasFile {
		return append(diags, recipes.Diag("Agent needs one source", "Give package (a Go package built for the guest) or file (a prebuilt binary, e.g. input.NAME), not both.", blk.DefRange)), false
	}
	var p string
	diags = append(diags, recipes.DecodeExpr(c.Attributes["path"].Expr, ctx, cty.String, &p)...)
	if name, err := cleanName(p); err != nil {
		diags = append(diags, recipes.Diag("Invalid agent path", err.Error(), c.Attributes["path"].Expr.Range()))
	} else {
		n.spec.AgentPath = name
	}
	if a, ok := c.Attributes["args"]; ok {
		diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.List(cty.String), &n.spec.AgentArgs)...)
	}
	if hasPkg {
		diags = append(diags, recipes.DecodeExpr(c.Attributes["package"].Expr, ctx, cty.String, &n.agentPkg)...)
		if n.agentPkg == "" {
			diags = append(diags, recipes.Diag("Empty agent package", "package is a Go package path, e.g. \"./cmd/sample-agent\".", c.Attributes["package"].Expr.Range()))
		}
		return diags, true
	}
	a, _, d := recipes.DecodeArtifact(fileAttr.Expr, ctx)
	diags = append(diags, d...)
	n.spec.AgentInput = len(n.inputs)
	n.inputs = append(n.inputs, a)
	return diags, false
}

func (n *node) decodeModules(blk *hcl.Block, ctx *hcl.EvalContext) hcl.Diagnostics {
	c, diags := blk.Body.Content(modulesSchema)
	if diags.HasErrors() {
		return diags
	}
	a, _, d := recipes.DecodeArtifact(c.Attributes["from"].Expr, ctx)
	diags = append(diags, d...)
	diags = append(diags, recipes.DecodeExpr(c.Attributes["load"].Expr, ctx, cty.List(cty.String), &n.spec.Modules)...)
	for _, m := range n.spec.Modules {
		if m == "" || strings.ContainsAny(m, "/ \t") {
			diags = append(diags, recipes.Diag("Invalid module name", fmt.Sprintf("%q: give module names such as \"virtio_blk\" or \"dm-verity\".", m), c.Attributes["load"].Expr.Range()))
		}
	}
	n.spec.ModuleInput = len(n.inputs)
	n.inputs = append(n.inputs, a)
	return diags
}

// addEntry turns a decoded entry block into an entry of the pack step.
func (n *node) addEntry(e entries.Entry) {
	se := specEntry{Path: strings.TrimPrefix(e.Path, "/"), Type: e.Type, Mode: e.Mode, UID: e.UID, GID: e.GID,
		Content: e.Content, Input: -1, Target: e.Target, Major: uint64(e.Major), Minor: uint64(e.Minor)}
	if e.Type == entries.Symlink {
		se.Mode = 0o777 // as a symlink reads
	}
	if e.Source != nil {
		se.Input = len(n.inputs)
		n.inputs = append(n.inputs, *e.Source)
	}
	n.spec.Entries = append(n.spec.Entries, se)
}

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
		t.add(e, false)
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
		if err := t.add(&entry{name: s.AgentPath, mode: typeReg | 0o755, data: b, origin: "the agent"}, false); err != nil {
			return err
		}
		// u-root's init starts /bin/uinit; without u-root the agent is /init.
		link := "bin/uinit"
		if !s.Uroot {
			link = "init"
		}
		if s.AgentPath != link {
			if err := t.add(&entry{name: link, mode: typeLink | 0o777, data: []byte("/" + s.AgentPath), origin: "the agent"}, true); err != nil {
				return err
			}
		}
		if len(s.AgentArgs) > 0 {
			if !s.Uroot {
				return fmt.Errorf("agent args are passed by u-root's init (etc/uinit.flags): add a uroot block with core/init, or leave args out")
			}
			t.add(&entry{name: "etc/uinit.flags", mode: typeReg | 0o444, data: []byte(fileflag.ArgvToFile(s.AgentArgs)), origin: "the agent args"}, false)
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
				if err := t.add(&entry{name: dir + m.Path, mode: typeReg | 0o644, data: m.data, origin: "module " + m.Name}, false); err != nil {
					return err
				}
			}
			t.add(&entry{name: dir + "modules.dep", mode: typeReg | 0o644, data: res.DepFile, origin: "the modules"}, false)
			conf := "# Loaded in this order by u-root's init (or systemd-modules-load), dependencies from modules.dep.\n" + strings.Join(res.Load, "\n") + "\n"
			t.add(&entry{name: "lib/modules-load.d/cocobuild.conf", mode: typeReg | 0o644, data: []byte(conf), origin: "the modules"}, false)
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
			te.mode = typeReg | uint64(e.Mode)
			te.data = []byte(e.Content)
			if e.Input >= 0 {
				b, err := os.ReadFile(n.inputs[e.Input].Path)
				if err != nil {
					return err
				}
				te.data = b
			}
		case "dir":
			te.mode = typeDir | uint64(e.Mode)
		case "symlink":
			te.mode, te.data = typeLink|0o777, []byte(e.Target)
		case "char", "block", "fifo":
			te.mode = map[string]uint64{"char": typeChr, "block": typeBlk, "fifo": typeFIFO}[e.Type] | uint64(e.Mode)
			te.rmajor, te.rminor = e.Major, e.Minor
		}
		te.uid, te.gid = uint64(e.UID), uint64(e.GID)
		// The recipe's entries may replace the base ones (console, /tmp…).
		old, exists := t.entries[te.name]
		if exists && old.origin != "the base layout" && !(old.mode&typeMask == typeDir && te.mode&typeMask == typeDir) {
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
		{name: "dev", mode: typeDir | 0o755, origin: o},
		{name: "dev/console", mode: typeChr | 0o600, rmajor: 5, rminor: 1, origin: o},
		{name: "dev/null", mode: typeChr | 0o666, rmajor: 1, rminor: 3, origin: o},
		{name: "etc", mode: typeDir | 0o755, origin: o},
		{name: "proc", mode: typeDir | 0o755, origin: o},
		{name: "sys", mode: typeDir | 0o755, origin: o},
		{name: "tmp", mode: typeDir | 0o1777, origin: o},
		{name: "run", mode: typeDir | 0o755, origin: o},
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
