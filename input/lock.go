package input

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/internal/atomicfile"
	"github.com/cocobuild/cocobuild/internal/debroot"
	"github.com/cocobuild/cocobuild/recipes"
)

// Pin is a resolved input: the exact source and the sha256 of its bytes.
type Pin struct {
	Source string // e.g. "deb:ovmf=2022.11-6+deb12u2", "url:https://…", "file:OVMF.fd"
	SHA256 string
}

// Lock is the content of cocobuild.lock.hcl: input name → pin.
type Lock struct {
	Path string
	Pins map[string]Pin
	// Packages are the Debian package sets of blocks that install
	// packages (rootfs.NAME), by block address (lock_packages.go).
	Packages map[string]debroot.Set

	src    []byte               // the file as read, for diagnostics
	ranges map[string]hcl.Range // input name → its sha256 value in the file
}

// LockPath is the lock file of a recipe directory.
func LockPath(recipeDir string) string { return filepath.Join(recipeDir, recipes.LockFileName) }

// ReadLock reads a lock file; a missing file is an empty lock.
func ReadLock(path string) (*Lock, hcl.Diagnostics) {
	l := &Lock{Path: path, Pins: map[string]Pin{}, Packages: map[string]debroot.Set{}, ranges: map[string]hcl.Range{}}
	src, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return l, nil
	}
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read lock file", Detail: err.Error()}}
	}
	l.src = src
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	content, d := f.Body.Content(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "input", LabelNames: []string{"name"}}, {Type: "packages", LabelNames: []string{"block"}}}})
	diags = append(diags, d...)
	for _, b := range content.Blocks {
		if b.Type == "packages" {
			diags = append(diags, l.decodePackages(b)...)
			continue
		}
		c, d := b.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "source", Required: true}, {Name: "sha256", Required: true}}})
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		var p Pin
		diags = append(diags, recipes.DecodeExpr(c.Attributes["source"].Expr, nil, cty.String, &p.Source)...)
		diags = append(diags, recipes.DecodeExpr(c.Attributes["sha256"].Expr, nil, cty.String, &p.SHA256)...)
		l.Pins[b.Labels[0]] = p
		l.ranges[b.Labels[0]] = c.Attributes["sha256"].Expr.Range()
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return l, nil
}

// Encode renders the lock file, inputs sorted by name.
func (l *Lock) Encode() []byte {
	f := hclwrite.NewEmptyFile()
	body := f.Body()
	body.AppendUnstructuredTokens(hclwrite.Tokens{{Type: hclsyntax.TokenComment,
		Bytes: []byte("# Resolved input pins, written by `cocobuild lock`. Builds use them; --locked refuses any drift.\n")}})
	names := make([]string, 0, len(l.Pins))
	for n := range l.Pins {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		body.AppendNewline()
		b := body.AppendNewBlock("input", []string{n}).Body()
		b.SetAttributeValue("source", cty.StringVal(l.Pins[n].Source))
		b.SetAttributeValue("sha256", cty.StringVal(l.Pins[n].SHA256))
	}
	l.encodePackages(body)
	return hclwrite.Format(f.Bytes())
}

// Write stores the lock file atomically.
func (l *Lock) Write() error {
	if err := atomicfile.WriteFile(l.Path, l.Encode(), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", l.Path, err)
	}
	return nil
}
