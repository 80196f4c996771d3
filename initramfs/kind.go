package initramfs

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
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
