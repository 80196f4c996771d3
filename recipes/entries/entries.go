// Package entries decodes the file-tree entry blocks that initramfs and
// rootfs blocks share: file, dir, symlink and device. One schema and one set
// of rules serve both (docs/recipes.md, "File-tree entries"); each kind
// turns the decoded entries into its own step parameters and archive.
package entries

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/recipes"
)

// Entry types: the block types file, dir and symlink, and the device
// block's type.
const (
	File    = "file"
	Dir     = "dir"
	Symlink = "symlink"
	Char    = "char"
	Block   = "block"
	FIFO    = "fifo"
)

// The blocks' schemas.
var schemas = map[string]*hcl.BodySchema{
	"file": {Attributes: []hcl.AttributeSchema{
		{Name: "content"}, {Name: "source"}, {Name: "mode"}, {Name: "uid"}, {Name: "gid"},
	}},
	"dir": {Attributes: []hcl.AttributeSchema{
		{Name: "mode"}, {Name: "uid"}, {Name: "gid"},
	}},
	"symlink": {Attributes: []hcl.AttributeSchema{
		{Name: "target", Required: true}, {Name: "uid"}, {Name: "gid"},
	}},
	"device": {Attributes: []hcl.AttributeSchema{
		{Name: "type", Required: true}, {Name: "major", Required: true}, {Name: "minor", Required: true},
		{Name: "mode"}, {Name: "uid"}, {Name: "gid"},
	}},
}

// Blocks returns the entry blocks' headers, for a kind's schema.
func Blocks() []hcl.BlockHeaderSchema {
	return []hcl.BlockHeaderSchema{
		{Type: "file", LabelNames: []string{"path"}},
		{Type: "dir", LabelNames: []string{"path"}},
		{Type: "symlink", LabelNames: []string{"path"}},
		{Type: "device", LabelNames: []string{"path"}},
	}
}

// IsBlock reports whether a block type is an entry block.
func IsBlock(typ string) bool {
	_, ok := schemas[typ]
	return ok
}

// Entry is one decoded entry block.
type Entry struct {
	Path    string            // clean and absolute, not the root: "/etc/hostname"
	Type    string            // File, Dir, Symlink, Char, Block or FIFO
	Content string            // a file's text
	Source  *recipes.Artifact // a file's bytes, when given by source (the zero Artifact until it is built)
	Mode    uint32            // permission bits (with setuid, setgid, sticky); 0 for a symlink
	UID     int
	GID     int
	Target  string // a symlink's target
	Major   uint32 // a char or block device's numbers
	Minor   uint32
	Range   hcl.Range // the block's label
}

// Default modes of the entries that have one.
const (
	FileMode   = 0o644
	DirMode    = 0o755
	DeviceMode = 0o600
)

// List collects a block's entries; a path may be given once.
type List struct {
	Entries []Entry
}

// Decode decodes one entry block (IsBlock(blk.Type)) into the list.
func (l *List) Decode(blk *hcl.Block, ctx *hcl.EvalContext) hcl.Diagnostics {
	c, diags := blk.Body.Content(schemas[blk.Type])
	if diags.HasErrors() {
		return diags
	}
	at := c.Attributes
	p := blk.Labels[0]
	if err := CheckPath(p); err != nil {
		return append(diags, recipes.Diag("Invalid path", err.Error(), blk.LabelRanges[0]))
	}
	e := Entry{Path: p, Type: blk.Type, Range: blk.LabelRanges[0]}
	switch blk.Type {
	case "file":
		e.Mode = FileMode
		_, hasContent := at["content"]
		src, hasSource := at["source"]
		if hasContent == hasSource {
			return append(diags, recipes.Diag("File needs content or source", "Give exactly one of content (a string) or source (a file made by another block, such as input.NAME).", blk.DefRange))
		}
		if hasContent {
			diags = append(diags, recipes.DecodeExpr(at["content"].Expr, ctx, cty.String, &e.Content)...)
		} else {
			a, _, d := recipes.DecodeArtifact(src.Expr, ctx)
			diags = append(diags, d...)
			e.Source = &a
		}
	case "dir":
		e.Mode = DirMode
	case "symlink":
		d := recipes.DecodeExpr(at["target"].Expr, ctx, cty.String, &e.Target)
		diags = append(diags, d...)
		if !d.HasErrors() && known(at["target"].Expr, ctx) {
			if err := CheckTarget(p, e.Target); err != nil {
				diags = append(diags, recipes.Diag("Invalid symlink", err.Error(), at["target"].Expr.Range()))
			}
		}
	case "device":
		e.Mode = DeviceMode
		var typ string
		d := recipes.DecodeExpr(at["type"].Expr, ctx, cty.String, &typ)
		diags = append(diags, d...)
		switch typ {
		case Char, Block, FIFO:
			e.Type = typ
		default:
			if !d.HasErrors() && known(at["type"].Expr, ctx) {
				diags = append(diags, recipes.Diag("Invalid device type", fmt.Sprintf("type %q is not char, block or fifo.", typ), at["type"].Expr.Range()))
			}
		}
		var major, minor int64
		diags = append(diags, recipes.DecodeExpr(at["major"].Expr, ctx, cty.Number, &major)...)
		diags = append(diags, recipes.DecodeExpr(at["minor"].Expr, ctx, cty.Number, &minor)...)
		if major < 0 || major > 0xfff || minor < 0 || minor > 0xfffff {
			diags = append(diags, recipes.Diag("Invalid device number", fmt.Sprintf("%d:%d is outside 0-4095:0-1048575 (Linux's majors and minors).", major, minor), blk.DefRange))
		}
		e.Major, e.Minor = uint32(major), uint32(minor)
	}
	_, d := DecodeMode(at, "mode", ctx, &e.Mode)
	diags = append(diags, d...)
	_, d = DecodeID(at, "uid", ctx, &e.UID)
	diags = append(diags, d...)
	_, d = DecodeID(at, "gid", ctx, &e.GID)
	diags = append(diags, d...)
	for _, prev := range l.Entries {
		if prev.Path == p {
			diags = append(diags, recipes.Diag("Duplicate path", fmt.Sprintf("%s is given twice; the first is at %s.", p, prev.Range), blk.LabelRanges[0]))
		}
	}
	l.Entries = append(l.Entries, e)
	return diags
}

// CheckPath checks an entry's path: clean, absolute, below the root (set
// the root's attributes with a rootfs override "/" block), no NUL byte.
func CheckPath(p string) error {
	if !strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "/" || strings.IndexByte(p, 0) >= 0 {
		return fmt.Errorf("%q is not a clean absolute path below the root, such as \"/etc/hostname\"", p)
	}
	return nil
}

// CheckTarget checks a symlink's target: not empty, no NUL byte, and a
// relative target must resolve inside the root (an absolute one resolves
// in the image's own root).
func CheckTarget(p, target string) error {
	switch {
	case target == "":
		return fmt.Errorf("symlink %s has an empty target: give the path it points to", p)
	case strings.IndexByte(target, 0) >= 0:
		return fmt.Errorf("symlink %s has a NUL byte in its target", p)
	case ResolvesOutside(p, target):
		return fmt.Errorf("symlink %s points to %q, which resolves outside the root", p, target)
	}
	return nil
}

// ResolvesOutside reports whether a relative symlink at p (a path in the
// tree, with or without its leading slash) to target leaves the root.
func ResolvesOutside(p, target string) bool {
	if path.IsAbs(target) {
		return false
	}
	j := path.Join(path.Dir("/" + strings.TrimPrefix(p, "/"))[1:], target)
	return j == ".." || strings.HasPrefix(j, "../")
}

// ParseMode reads a mode written as an octal string ("0644", "4755").
func ParseMode(s string) (uint32, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o7777 || s == "" {
		return 0, fmt.Errorf("mode %q is not an octal mode such as \"0644\" or \"4755\"", s)
	}
	return uint32(m), nil
}

// DecodeMode decodes the mode attribute name, when present and known,
// into dst.
func DecodeMode(attrs hcl.Attributes, name string, ctx *hcl.EvalContext, dst *uint32) (bool, hcl.Diagnostics) {
	a, ok := attrs[name]
	if !ok {
		return false, nil
	}
	var s string
	diags := recipes.DecodeExpr(a.Expr, ctx, cty.String, &s)
	if diags.HasErrors() {
		return false, diags
	}
	if !known(a.Expr, ctx) {
		return false, diags
	}
	m, err := ParseMode(s)
	if err != nil {
		return false, append(diags, recipes.Diag("Invalid "+name, err.Error()+". Write modes as strings: HCL reads 0644 as the decimal number 644.", a.Expr.Range()))
	}
	*dst = m
	return true, diags
}

// DecodeID decodes the owner attribute name (uid or gid), when present,
// into dst.
func DecodeID(attrs hcl.Attributes, name string, ctx *hcl.EvalContext, dst *int) (bool, hcl.Diagnostics) {
	a, ok := attrs[name]
	if !ok {
		return false, nil
	}
	var v int64
	diags := recipes.DecodeExpr(a.Expr, ctx, cty.Number, &v)
	if v < 0 || v > 0xfffffffe {
		diags = append(diags, recipes.Diag("Invalid "+name, fmt.Sprintf("%s %d is not between 0 and 4294967294.", name, v), a.Expr.Range()))
	}
	*dst = int(v)
	return true, diags
}

// known reports whether expr's value is known now (not while the blocks it
// refers to are unbuilt).
func known(expr hcl.Expression, ctx *hcl.EvalContext) bool {
	v, _ := expr.Value(ctx)
	return v.IsWhollyKnown()
}
