// Package uki is the `uki` block kind: a unified kernel image (UKI), the
// systemd EFI stub with the kernel, initrd, kernel command line and
// os-release as PE sections, which a firmware boots as one EFI
// application (\EFI\BOOT\BOOTX64.EFI of a disk's ESP) and which the stub
// measures into TPM PCR 11 (see measure/pcr). The sections are appended in
// Go (see Assemble); the output depends on the inputs only.
package uki

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/measure/pe"
	"github.com/cocobuild/cocobuild/recipes"
)

// Kind implements `uki "NAME" { … }`:
//
//	uki "guest" {
//	  stub    = input.systemd_stub   # linuxx64.efi.stub of Debian's systemd-boot-efi
//	  kernel  = kernel.guest         # a kernel block (its image, cmdline, release) or a file
//	  initrd  = initramfs.guest      # optional
//	  cmdline = ["console=ttyS0"]    # optional: default the kernel block's
//	  osrel   = "ID=cocobuild\n"     # optional: the .osrel section
//	  sbat    = "guest,1,Me,guest,1,https://example.org\n" # optional: SBAT lines merged into the stub's .sbat
//	  db_key  = input.db_key         # optional, with db_cert: sign for Secure Boot (PEM RSA key)
//	  db_cert = input.db_cert        # the db certificate (PEM)
//	  vars_template = input.ovmf_vars # optional, with db_cert: OVMF_VARS.fd enrolling it
//	}
type Kind struct{}

// Type implements recipes.Kind.
func (Kind) Type() string { return "uki" }

// Schema implements recipes.Kind.
func (Kind) Schema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "stub", Required: true}, {Name: "kernel", Required: true}, {Name: "initrd"}, {Name: "cmdline"},
		{Name: "osrel"}, {Name: "uname"}, {Name: "splash"}, {Name: "description"},
		{Name: "sbat"}, {Name: "db_key"}, {Name: "db_cert"}, {Name: "vars_template"},
	}}
}

// OutputType implements recipes.Kind: `uki.NAME` is the image (artifact)
// and the text sections it holds ("" for none).
func (Kind) OutputType() cty.Type {
	return cty.Object(map[string]cty.Type{
		"artifact": recipes.ArtifactType,
		"cmdline":  cty.String,
		"osrel":    cty.String,
		"uname":    cty.String,
	})
}

// StepVersion is the version of the assemble step: bump it whenever the
// image it writes changes for the same inputs.
const StepVersion = "1"

// params are what the assemble step's key covers beyond its inputs.
type params struct {
	Cmdline string `json:"cmdline"`
	Osrel   string `json:"osrel"`
	Uname   string `json:"uname"`
	Initrd  bool   `json:"initrd"`
	Splash  bool   `json:"splash"`
	// Sbat are the recipe's SBAT lines; Signed says the image is signed
	// with the db key (inputs 2 and 3 after stub and kernel).
	Sbat   string `json:"sbat,omitempty"`
	Signed bool   `json:"signed,omitempty"`
	Vars   bool   `json:"vars,omitempty"`
}

type node struct {
	name                 string
	stub, kernel         recipes.Artifact
	initrd, splash       *recipes.Artifact
	cmdline, osrel, unam string
	sbat                 string
	dbKey, dbCert        *recipes.Artifact
	varsTemplate         *recipes.Artifact
}

// Decode implements recipes.Kind.
func (k Kind) Decode(b *recipes.Block, ctx *hcl.EvalContext) (recipes.Node, hcl.Diagnostics) {
	content, diags := b.Body.Content(k.Schema())
	if diags.HasErrors() {
		return nil, diags
	}
	n := &node{name: b.Name}
	art := func(name string) (*recipes.Artifact, bool) {
		a, ok := content.Attributes[name]
		if !ok {
			return nil, false
		}
		v, _, d := recipes.DecodeArtifact(a.Expr, ctx)
		diags = append(diags, d...)
		return &v, true
	}
	if a, _ := art("stub"); a != nil {
		n.stub = *a
	}
	if a, _ := art("kernel"); a != nil {
		n.kernel = *a
	}
	n.initrd, _ = art("initrd")
	n.splash, _ = art("splash")
	n.dbKey, _ = art("db_key")
	n.dbCert, _ = art("db_cert")
	n.varsTemplate, _ = art("vars_template")
	if n.varsTemplate != nil && n.dbCert == nil {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "vars_template without db_cert",
			Detail: "The variable store enrolls the db certificate the UKI is signed with: add db_key and db_cert.", Subject: content.Attributes["vars_template"].NameRange.Ptr()})
	}
	if (n.dbKey == nil) != (n.dbCert == nil) {
		a := content.Attributes["db_key"]
		if a == nil {
			a = content.Attributes["db_cert"]
		}
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "db_key and db_cert go together",
			Detail: "Signing for Secure Boot needs the db key (PEM RSA private key) and its certificate (PEM): give both, or neither for an unsigned UKI.", Subject: a.NameRange.Ptr()})
	}
	// A kernel block brings its cmdline and release.
	if v, d := content.Attributes["kernel"].Expr.Value(ctx); !d.HasErrors() && v.IsKnown() && v.Type().IsObjectType() {
		for _, f := range []struct {
			attr string
			dst  *string
		}{{"cmdline", &n.cmdline}, {"release", &n.unam}} {
			if v.Type().HasAttribute(f.attr) {
				if c := v.GetAttr(f.attr); c.IsKnown() && !c.IsNull() && c.Type() == cty.String {
					*f.dst = c.AsString()
				}
			}
		}
	}
	if a, ok := content.Attributes["cmdline"]; ok {
		v, d := a.Expr.Value(ctx)
		diags = append(diags, d...)
		if !d.HasErrors() && v.IsWhollyKnown() {
			if v.Type() == cty.String {
				diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.String, &n.cmdline)...)
			} else {
				var args []string
				diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.List(cty.String), &args)...)
				n.cmdline = strings.Join(args, " ")
			}
		}
	}
	var desc string
	for _, f := range []struct {
		attr string
		dst  *string
	}{{"osrel", &n.osrel}, {"uname", &n.unam}, {"description", &desc}, {"sbat", &n.sbat}} {
		if a, ok := content.Attributes[f.attr]; ok {
			diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.String, f.dst)...)
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return n, diags
}

// Steps implements recipes.Node: one step that assembles the image.
func (n *node) Steps() []*recipes.Step {
	inputs := []recipes.Artifact{n.stub, n.kernel}
	p := params{Cmdline: n.cmdline, Osrel: n.osrel, Uname: n.unam}
	if n.initrd != nil {
		inputs, p.Initrd = append(inputs, *n.initrd), true
	}
	if n.splash != nil {
		inputs, p.Splash = append(inputs, *n.splash), true
	}
	if n.dbKey != nil && n.dbCert != nil {
		inputs, p.Signed = append(inputs, *n.dbKey, *n.dbCert), true
	}
	if n.varsTemplate != nil {
		inputs, p.Vars = append(inputs, *n.varsTemplate), true
	}
	p.Sbat = n.sbat
	return []*recipes.Step{{ID: "assemble", Kind: "uki/assemble", Version: StepVersion, Params: p, Inputs: inputs, Run: n.run}}
}

// sections are the UKI's sections in the order ukify writes them (the
// kernel last); empty ones are left out, as systemd-stub skips them.
func (n *node) sections() ([]Section, error) {
	read := func(a *recipes.Artifact) ([]byte, error) {
		if a == nil {
			return nil, nil
		}
		b, err := os.ReadFile(a.Path)
		if err != nil {
			return nil, fmt.Errorf("uki %q: %s: %w", n.name, a.Origin, err)
		}
		return b, nil
	}
	initrd, err := read(n.initrd)
	if err != nil {
		return nil, err
	}
	splash, err := read(n.splash)
	if err != nil {
		return nil, err
	}
	kernel, err := read(&n.kernel)
	if err != nil {
		return nil, err
	}
	var out []Section
	for _, s := range []Section{
		{Name: ".osrel", Data: []byte(n.osrel)}, {Name: ".cmdline", Data: []byte(n.cmdline)}, {Name: ".splash", Data: splash},
		{Name: ".initrd", Data: initrd}, {Name: ".uname", Data: []byte(n.unam)}, {Name: ".linux", Data: kernel},
	} {
		if len(s.Data) > 0 {
			out = append(out, s)
		}
	}
	return out, nil
}

func (n *node) run(_ context.Context, sc *recipes.StepContext) error {
	stub, err := os.ReadFile(n.stub.Path)
	if err != nil {
		return fmt.Errorf("uki %q: stub %s: %w", n.name, n.stub.Origin, err)
	}
	secs, err := n.sections()
	if err != nil {
		return err
	}
	var cert *x509.Certificate
	var key crypto.Signer
	if n.dbKey != nil && n.dbCert != nil {
		if cert, key, err = readDBKey(n.dbKey, n.dbCert); err != nil {
			return fmt.Errorf("uki %q: %w", n.name, err)
		}
		// The stub loads the kernel with LoadImage, which Secure Boot
		// verifies too: the kernel is signed with the db key as well (its
		// own signatures replaced), as ukify's --sign-kernel does.
		// A kernel that is no PE image (no EFI stub) is left as it is.
		k := len(secs) - 1
		if _, err := pe.Parse(secs[k].Data); err != nil {
			sc.Meta["kernel_signed"] = false
		} else if err := n.signKernel(&secs[k], cert, key); err != nil {
			return err
		} else {
			sc.Meta["kernel_signed"] = true
		}
	}
	if n.sbat != "" {
		merged, err := MergeSBAT(stub, n.sbat)
		if err != nil {
			return fmt.Errorf("uki %q: stub %s: %w", n.name, n.stub.Origin, err)
		}
		// Before .linux, as ukify places it; the stub's own is replaced.
		secs = append(secs[:len(secs)-1], Section{Name: ".sbat", Data: merged, Replaces: true}, secs[len(secs)-1])
	}
	img, err := Assemble(stub, secs)
	if err != nil {
		return fmt.Errorf("uki %q: stub %s: %w", n.name, n.stub.Origin, err)
	}
	if cert != nil {
		if img, err = Sign(img, cert, key); err != nil {
			return fmt.Errorf("uki %q: signing with %s: %w", n.name, n.dbCert.Origin, err)
		}
		sc.Meta["signed_by"] = cert.Subject.String()
	}
	var names []string
	for _, s := range secs {
		names = append(names, s.Name)
	}
	sc.Meta["sections"] = names
	if n.varsTemplate != nil {
		tmpl, err := os.ReadFile(n.varsTemplate.Path)
		if err != nil {
			return fmt.Errorf("uki %q: vars_template %s: %w", n.name, n.varsTemplate.Origin, err)
		}
		vars, err := EnrollVars(tmpl, cert)
		if err != nil {
			return fmt.Errorf("uki %q: vars_template %s: %w", n.name, n.varsTemplate.Origin, err)
		}
		if err := os.WriteFile(filepath.Join(sc.OutDir, "OVMF_VARS.fd"), vars, 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(sc.OutDir, "uki.efi"), img, 0o644)
}

// Finish implements recipes.Node.
func (n *node) Finish(results map[string]*recipes.Result) (*recipes.Output, error) {
	addr := "uki." + n.name
	a, err := results["assemble"].File("uki.efi")
	if err != nil {
		return nil, err
	}
	a.Origin = addr
	out := &recipes.Output{
		Value: cty.ObjectVal(map[string]cty.Value{"artifact": recipes.ArtifactVal(a), "cmdline": cty.StringVal(n.cmdline),
			"osrel": cty.StringVal(n.osrel), "uname": cty.StringVal(n.unam)}),
		Artifacts: []recipes.OutputArtifact{{Name: addr, Kind: "uki", Path: "uki/" + n.name + "/uki.efi", File: a,
			Extra: n.extra(results["assemble"].Meta)}},
	}
	if n.varsTemplate != nil {
		v, err := results["assemble"].File("OVMF_VARS.fd")
		if err != nil {
			return nil, err
		}
		v.Origin = addr + ".vars"
		out.Artifacts = append(out.Artifacts, recipes.OutputArtifact{Name: addr + ".vars", Kind: "firmware-vars", Path: "uki/" + n.name + "/OVMF_VARS.fd", File: v,
			Extra: map[string]any{"enrolled": []string{"PK", "KEK", "db"}, "db_cert": n.dbCert.SHA256, "template": n.varsTemplate.SHA256}})
	}
	return out, nil
}

// extra is what the manifest says of the image.
func (n *node) extra(meta map[string]any) map[string]any {
	e := map[string]any{"sections": meta["sections"], "stub": n.stub.SHA256}
	if n.dbCert != nil {
		e["signed_by"], e["db_cert"], e["kernel_signed"] = meta["signed_by"], n.dbCert.SHA256, meta["kernel_signed"]
	}
	return e
}

// signKernel replaces the kernel's signatures with one by the db key.
func (n *node) signKernel(s *Section, cert *x509.Certificate, key crypto.Signer) error {
	unsigned, err := Unsign(s.Data)
	if err != nil {
		return fmt.Errorf("uki %q: kernel %s: %w", n.name, n.kernel.Origin, err)
	}
	if s.Data, err = Sign(unsigned, cert, key); err != nil {
		return fmt.Errorf("uki %q: signing the kernel %s: %w", n.name, n.kernel.Origin, err)
	}
	return nil
}
