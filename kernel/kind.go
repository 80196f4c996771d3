package kernel

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/recipes"
)

// Kind implements the `kernel "NAME" { … }` block, a prebuilt image:
//
//	kernel "guest" {
//	  image   = input.vmlinuz         # a prebuilt bzImage
//	  cmdline = ["console=ttyS0"]     # list of arguments (or one string)
//	}
//
// or a kernel built from source, reproducibly:
//
//	kernel "guest" {
//	  source {
//	    tarball   = input.linux_source          # e.g. Debian's linux-source-6.12 tarball
//	    base      = "tinyconfig"                # or "defconfig", "allnoconfig", or a file
//	    fragments = ["common", "tdx", "snp"]    # shipped fragments and files, in merge order
//	  }
//	  cmdline = ["console=ttyS0"]
//	}
type Kind struct{}

// Type implements recipes.Kind.
func (Kind) Type() string { return "kernel" }

// Schema implements recipes.Kind.
func (Kind) Schema() *hcl.BodySchema {
	return &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "image"}, {Name: "cmdline"}, {Name: "description"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "source"}},
	}
}

// OutputType implements recipes.Kind: `kernel.NAME` has the image, the
// cmdline as one string, the kernel release and, for a kernel built from
// source, the resolved configuration and the modules (a tar archive of
// lib/modules/RELEASE, as an input's extract_dir makes it); they are null
// for a prebuilt image, and modules is null when none are built.
func (Kind) OutputType() cty.Type {
	return cty.Object(map[string]cty.Type{
		"image":   recipes.ArtifactType,
		"cmdline": cty.String,
		"release": cty.String,
		"config":  recipes.ArtifactType,
		"modules": recipes.ArtifactType,
	})
}

type node struct {
	name    string
	image   recipes.Artifact
	cmdline string
}

// Decode implements recipes.Kind.
func (k Kind) Decode(b *recipes.Block, ctx *hcl.EvalContext) (recipes.Node, hcl.Diagnostics) {
	content, diags := b.Body.Content(k.Schema())
	if diags.HasErrors() {
		return nil, diags
	}
	n := &node{name: b.Name}
	if a, ok := content.Attributes["cmdline"]; ok {
		cl, d := decodeCmdline(a.Expr, ctx)
		diags = append(diags, d...)
		n.cmdline = cl
	}
	if a, ok := content.Attributes["description"]; ok {
		var s string
		diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.String, &s)...)
	}
	imageAttr, hasImage := content.Attributes["image"]
	switch {
	case len(content.Blocks) > 1:
		return nil, append(diags, recipes.Diag("Duplicate source block",
			fmt.Sprintf("A kernel has one source block; the first is at %s.", content.Blocks[0].DefRange), content.Blocks[1].DefRange))
	case hasImage && len(content.Blocks) == 1:
		return nil, append(diags, recipes.Diag("Both image and source",
			"A kernel is either a prebuilt image (image = …) or built from source (a source block), not both.", imageAttr.NameRange))
	case len(content.Blocks) == 1:
		if diags.HasErrors() {
			return nil, diags
		}
		node, d := decodeSource(b.Name, n.cmdline, content.Blocks[0], ctx)
		return node, append(diags, d...)
	case !hasImage:
		// Worded and placed as HCL reports a missing required argument.
		return nil, append(diags, recipes.Diag("Missing required argument",
			`The argument "image" is required, but no definition was found. Give image = … (a prebuilt bzImage, e.g. input.NAME), or a source { tarball, base, fragments } block to build the kernel.`, b.Body.MissingItemRange()))
	}
	img, _, d := recipes.DecodeArtifact(imageAttr.Expr, ctx)
	diags = append(diags, d...)
	n.image = img
	if diags.HasErrors() {
		return nil, diags
	}
	return n, diags
}

// decodeCmdline accepts a list of arguments or one string and joins them
// with single spaces, as the kernel receives them.
func decodeCmdline(expr hcl.Expression, ctx *hcl.EvalContext) (string, hcl.Diagnostics) {
	val, diags := expr.Value(ctx)
	if diags.HasErrors() || !val.IsWhollyKnown() {
		return "", diags
	}
	if val.Type() == cty.String {
		var s string
		return s, recipes.DecodeExpr(expr, ctx, cty.String, &s)
	}
	if !val.Type().IsListType() && !val.Type().IsTupleType() {
		return "", append(diags, recipes.Diag("Invalid cmdline",
			fmt.Sprintf("cmdline is a list of kernel arguments or one string, not %s.", val.Type().FriendlyName()), expr.Range()))
	}
	var args []string
	diags = append(diags, recipes.DecodeExpr(expr, ctx, cty.List(cty.String), &args)...)
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n") && !strings.Contains(a, "\"") {
			diags = append(diags, recipes.Diag("Invalid kernel argument",
				fmt.Sprintf("%q: each list element is one argument, without spaces (quote a value with spaces as key=\"a b\").", a), expr.Range()))
		}
	}
	return strings.Join(args, " "), diags
}

// Steps implements recipes.Node: one step that checks the image and records
// what its setup header says.
func (n *node) Steps() []*recipes.Step {
	return []*recipes.Step{{
		ID: "image", Kind: "kernel/prebuilt", Version: "1",
		Params: map[string]string{"cmdline": n.cmdline},
		Inputs: []recipes.Artifact{n.image},
		Run: func(ctx context.Context, sc *recipes.StepContext) error {
			b, err := os.ReadFile(n.image.Path)
			if err != nil {
				return err
			}
			info, err := Inspect(b)
			if err != nil {
				return fmt.Errorf("kernel image from %s: %w", n.image.Origin, err)
			}
			sc.Meta["release"] = info.Release
			sc.Meta["version"] = info.Version
			sc.Meta["boot_protocol"] = info.ProtocolString()
			return os.WriteFile(filepath.Join(sc.OutDir, "vmlinuz"), b, 0o644)
		},
	}}
}

// Finish implements recipes.Node.
func (n *node) Finish(results map[string]*recipes.Result) (*recipes.Output, error) {
	res := results["image"]
	a, err := res.File("vmlinuz")
	if err != nil {
		return nil, err
	}
	a.Origin = "kernel." + n.name
	release, _ := res.Meta["release"].(string)
	proto, _ := res.Meta["boot_protocol"].(string)
	return &recipes.Output{
		Value: cty.ObjectVal(map[string]cty.Value{
			"image":   recipes.ArtifactVal(a),
			"cmdline": cty.StringVal(n.cmdline),
			"release": cty.StringVal(release),
			"config":  cty.NullVal(recipes.ArtifactType),
			"modules": cty.NullVal(recipes.ArtifactType),
		}),
		Artifacts: []recipes.OutputArtifact{{
			Name: "kernel." + n.name, Kind: "kernel", Path: "kernel/" + n.name + "/vmlinuz", File: a,
			Extra: map[string]any{"cmdline": n.cmdline, "release": release, "boot_protocol": proto},
		}},
	}, nil
}
