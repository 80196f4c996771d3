// Package seimage is the `se_image` block kind: an IBM Z Secure Execution
// image of a kernel, initrd and cmdline for the given host keys, built
// reproducibly. s390-tools' genprotimg draws the image's keys, tweaks and
// ECDH key at random, so two of its builds of the same inputs differ; here
// they are derived from a secret seed and the contents (measure/se
// DeriveKeys and Build), so the same recipe and seed give the same image,
// byte for byte, and so the same SE header tag to publish.
package seimage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/internal/limits"
	model "github.com/cocobuild/cocobuild/measure/se"
	"github.com/cocobuild/cocobuild/recipes"
)

// Kind implements `se_image "NAME" { … }`:
//
//	se_image "guest" {
//	  kernel    = kernel.guest          # a kernel block (its image and cmdline) or a file
//	  initrd    = initramfs.guest       # optional
//	  cmdline   = ["console=ttysclp0"]  # optional: default the kernel block's
//	  host_keys = [input.host_key_doc]  # host-key documents (X.509, PEM or DER, P-521 keys)
//	  stage3a   = input.stage3a         # stage3a.bin of s390-tools
//	  stage3b   = input.stage3b         # stage3b_reloc.bin of s390-tools
//	  seed      = input.se_seed         # secret, at least 32 bytes: the keys and tweaks derive from it
//	}
type Kind struct{}

// Type implements recipes.Kind.
func (Kind) Type() string { return "se_image" }

// Schema implements recipes.Kind.
func (Kind) Schema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "kernel", Required: true}, {Name: "initrd"}, {Name: "cmdline"}, {Name: "host_keys", Required: true},
		{Name: "stage3a", Required: true}, {Name: "stage3b", Required: true}, {Name: "seed", Required: true}, {Name: "description"},
	}}
}

// OutputType implements recipes.Kind: `se_image.NAME` is the image
// (artifact) and the cmdline it holds.
func (Kind) OutputType() cty.Type {
	return cty.Object(map[string]cty.Type{"artifact": recipes.ArtifactType, "cmdline": cty.String})
}

// StepVersion is the version of the build step: bump it whenever the
// image it writes changes for the same inputs.
const StepVersion = "1"

// params are what the build step's key covers beyond its inputs (kernel,
// stage3a, stage3b, seed, the host keys, then the initrd).
type params struct {
	Cmdline  string `json:"cmdline"`
	HostKeys int    `json:"host_keys"`
	Initrd   bool   `json:"initrd"`
	Model    string `json:"model"`
}

type node struct {
	name                           string
	kernel, stage3a, stage3b, seed recipes.Artifact
	initrd                         *recipes.Artifact
	hostKeys                       []recipes.Artifact
	cmdline                        string
}

// Decode implements recipes.Kind.
func (k Kind) Decode(b *recipes.Block, ctx *hcl.EvalContext) (recipes.Node, hcl.Diagnostics) {
	content, diags := b.Body.Content(k.Schema())
	if diags.HasErrors() {
		return nil, diags
	}
	n := &node{name: b.Name}
	art := func(name string) *recipes.Artifact {
		a, ok := content.Attributes[name]
		if !ok {
			return nil
		}
		v, _, d := recipes.DecodeArtifact(a.Expr, ctx)
		diags = append(diags, d...)
		return &v
	}
	for _, f := range []struct {
		attr string
		dst  *recipes.Artifact
	}{{"kernel", &n.kernel}, {"stage3a", &n.stage3a}, {"stage3b", &n.stage3b}, {"seed", &n.seed}} {
		if a := art(f.attr); a != nil {
			*f.dst = *a
		}
	}
	n.initrd = art("initrd")
	if a, ok := content.Attributes["host_keys"]; ok {
		v, d := a.Expr.Value(ctx)
		diags = append(diags, d...)
		switch {
		case d.HasErrors() || !v.IsWhollyKnown(): // not built yet (a plan)
		case !v.CanIterateElements() || v.IsNull() || v.LengthInt() == 0:
			diags = append(diags, recipes.Diag("Invalid host_keys", "host_keys is a list of host-key documents (input.NAME), at least one: the image runs only on the hosts whose keys it names.", a.Expr.Range()))
		default:
			for it := v.ElementIterator(); it.Next(); {
				_, ev := it.Element()
				if ev.Type().IsObjectType() && ev.Type().HasAttribute("artifact") {
					ev = ev.GetAttr("artifact")
				}
				if ev.Type() != recipes.ArtifactType || ev.IsNull() {
					diags = append(diags, recipes.Diag("Not an artifact", fmt.Sprintf("host_keys holds %s, not a file such as input.NAME.", ev.Type().FriendlyName()), a.Expr.Range()))
					continue
				}
				n.hostKeys = append(n.hostKeys, *ev.EncapsulatedValue().(*recipes.Artifact))
			}
		}
	}
	if v, d := content.Attributes["kernel"].Expr.Value(ctx); !d.HasErrors() && v.IsKnown() && v.Type().IsObjectType() && v.Type().HasAttribute("cmdline") {
		if c := v.GetAttr("cmdline"); c.IsKnown() && !c.IsNull() && c.Type() == cty.String {
			n.cmdline = c.AsString()
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
	if a, ok := content.Attributes["description"]; ok {
		var desc string
		diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.String, &desc)...)
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return n, diags
}

// Steps implements recipes.Node: one step that builds the image.
func (n *node) Steps() []*recipes.Step {
	inputs := append([]recipes.Artifact{n.kernel, n.stage3a, n.stage3b, n.seed}, n.hostKeys...)
	p := params{Cmdline: n.cmdline, HostKeys: len(n.hostKeys), Model: model.ModelVersion}
	if n.initrd != nil {
		inputs, p.Initrd = append(inputs, *n.initrd), true
	}
	return []*recipes.Step{{ID: "build", Kind: "se_image/build", Version: StepVersion, Params: p, Inputs: inputs, Run: n.run}}
}

func (n *node) run(_ context.Context, sc *recipes.StepContext) error {
	read := func(a recipes.Artifact, what string, l limits.Limit) ([]byte, error) {
		b, err := (*limits.Values)(nil).ReadFile(a.Path, l)
		if err != nil {
			return nil, fmt.Errorf("se_image %q: %s %s: %w", n.name, what, a.Origin, err)
		}
		return b, nil
	}
	in := &model.BuildInput{Cmdline: []byte(n.cmdline)}
	var err error
	if in.Kernel, err = read(n.kernel, "kernel", limits.Kernel); err != nil {
		return err
	}
	if n.initrd != nil {
		if in.Initrd, err = read(*n.initrd, "initrd", limits.Initrd); err != nil {
			return err
		}
	}
	if in.Stage3a, err = read(n.stage3a, "stage3a", limits.Firmware); err != nil {
		return err
	}
	if in.Stage3b, err = read(n.stage3b, "stage3b", limits.Firmware); err != nil {
		return err
	}
	seed, err := read(n.seed, "seed", limits.Firmware)
	if err != nil {
		return err
	}
	for i, a := range n.hostKeys {
		b, err := read(a, fmt.Sprintf("host key %d", i+1), limits.Firmware)
		if err != nil {
			return err
		}
		k, err := model.ParseHostKey(b)
		if err != nil {
			return fmt.Errorf("se_image %q: host key %s: %w", n.name, a.Origin, err)
		}
		in.HostKeys = append(in.HostKeys, k)
	}
	keys, err := model.DeriveKeys(seed, in)
	if err != nil {
		return fmt.Errorf("se_image %q: seed %s: %w", n.name, n.seed.Origin, err)
	}
	img, err := model.Build(in, keys)
	if err != nil {
		return fmt.Errorf("se_image %q: %w", n.name, err)
	}
	return os.WriteFile(filepath.Join(sc.OutDir, "se.img"), img, 0o644)
}

// Finish implements recipes.Node.
func (n *node) Finish(results map[string]*recipes.Result) (*recipes.Output, error) {
	addr := "se_image." + n.name
	a, err := results["build"].File("se.img")
	if err != nil {
		return nil, err
	}
	a.Origin = addr
	var hk []string
	for _, h := range n.hostKeys {
		hk = append(hk, h.SHA256)
	}
	return &recipes.Output{
		Value: cty.ObjectVal(map[string]cty.Value{"artifact": recipes.ArtifactVal(a), "cmdline": cty.StringVal(n.cmdline)}),
		Artifacts: []recipes.OutputArtifact{{Name: addr, Kind: "se-image", Path: "se_image/" + n.name + "/se.img", File: a,
			Extra: map[string]any{"kernel": n.kernel.SHA256, "cmdline": n.cmdline, "host_keys": hk, "stage3a": n.stage3a.SHA256, "stage3b": n.stage3b.SHA256}}},
	}, nil
}
