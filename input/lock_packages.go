package input

import (
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/internal/debroot"
	"github.com/cocobuild/cocobuild/recipes"
)

// The lock file records the Debian package set of a block that installs
// packages (a rootfs with a packages block) as
//
//	packages "rootfs.root" {
//	  suite   = "bookworm"
//	  request = "…" # the sha256 of the request it was resolved for
//	  package "base-files" {
//	    version = "12.4+deb12u12"
//	    arch    = "amd64"
//	    sha256  = "…" # of the .deb
//	  }
//	}

var (
	packagesSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "suite", Required: true}, {Name: "request", Required: true}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "package", LabelNames: []string{"name"}}},
	}
	packageSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "version", Required: true}, {Name: "arch", Required: true}, {Name: "sha256", Required: true},
	}}
)

func (l *Lock) decodePackages(b *hcl.Block) hcl.Diagnostics {
	c, diags := b.Body.Content(packagesSchema)
	if diags.HasErrors() {
		return diags
	}
	s := debroot.Set{}
	diags = append(diags, recipes.DecodeExpr(c.Attributes["suite"].Expr, nil, cty.String, &s.Suite)...)
	diags = append(diags, recipes.DecodeExpr(c.Attributes["request"].Expr, nil, cty.String, &s.Request)...)
	for _, pb := range c.Blocks {
		pc, d := pb.Body.Content(packageSchema)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		p := debroot.Package{Name: pb.Labels[0]}
		diags = append(diags, recipes.DecodeExpr(pc.Attributes["version"].Expr, nil, cty.String, &p.Version)...)
		diags = append(diags, recipes.DecodeExpr(pc.Attributes["arch"].Expr, nil, cty.String, &p.Arch)...)
		diags = append(diags, recipes.DecodeExpr(pc.Attributes["sha256"].Expr, nil, cty.String, &p.SHA256)...)
		if !sha256Re.MatchString(p.SHA256) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid sha256",
				Detail: "sha256 is 64 lowercase hexadecimal digits; run `cocobuild lock -update` to write the lock again.", Subject: pc.Attributes["sha256"].Expr.Range().Ptr()})
		}
		s.Packages = append(s.Packages, p)
	}
	s.Sort()
	l.Packages[b.Labels[0]] = s
	return diags
}

// encodePackages appends the package sets, by block address, packages by
// name and architecture.
func (l *Lock) encodePackages(body *hclwrite.Body) {
	addrs := make([]string, 0, len(l.Packages))
	for a := range l.Packages {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	for _, a := range addrs {
		s := l.Packages[a]
		s.Sort()
		body.AppendNewline()
		b := body.AppendNewBlock("packages", []string{a}).Body()
		b.SetAttributeValue("suite", cty.StringVal(s.Suite))
		b.SetAttributeValue("request", cty.StringVal(s.Request))
		for _, p := range s.Packages {
			pb := b.AppendNewBlock("package", []string{p.Name}).Body()
			pb.SetAttributeValue("version", cty.StringVal(p.Version))
			pb.SetAttributeValue("arch", cty.StringVal(p.Arch))
			pb.SetAttributeValue("sha256", cty.StringVal(p.SHA256))
		}
	}
}
