package kernel

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/internal/atomicfile"
	"github.com/cocobuild/cocobuild/internal/filecopy"
	"github.com/cocobuild/cocobuild/recipes"
)

// sourceSchema is the `source { … }` block of a kernel built from source.
var sourceSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "tarball", Required: true}, {Name: "base", Required: true}, {Name: "fragments"},
}}

// sourceParams are the build step's parameters: with the step's inputs
// (the tarball, a base file, fragment files) and the toolchain identity
// (its probe) they make its key.
type sourceParams struct {
	Arch      string      `json:"arch"`
	Base      string      `json:"base"` // a make target, or "file" (Inputs[1])
	Fragments []fragParam `json:"fragments"`
	User      string      `json:"build_user"`
	Host      string      `json:"build_host"`
	Version   string      `json:"build_version"`
}

// fragParam is one fragment, in merge order: a shipped one by name and the
// digest of its content, or an input (Input indexes Step.Inputs).
type fragParam struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256,omitempty"`
	Input  int    `json:"input"`
}

// sourceNode is a decoded `kernel "NAME" { source { … } }` block.
type sourceNode struct {
	name    string
	cmdline string // not a parameter: it does not change the build
	params  sourceParams
	inputs  []recipes.Artifact // [0] is the tarball
	shipped map[string][]byte  // content of shipped fragments by name

	probeOnce sync.Once
	probe     string
	probeErr  error
}

// decodeSource decodes the source block.
func decodeSource(name, cmdline string, blk *hcl.Block, ctx *hcl.EvalContext) (recipes.Node, hcl.Diagnostics) {
	c, diags := blk.Body.Content(sourceSchema)
	if diags.HasErrors() {
		return nil, diags
	}
	n := &sourceNode{name: name, cmdline: cmdline, shipped: map[string][]byte{}, params: sourceParams{
		Arch: Arch, User: BuildUser, Host: BuildHost, Version: BuildVersion, Fragments: []fragParam{},
	}}
	tarball, _, d := recipes.DecodeArtifact(c.Attributes["tarball"].Expr, ctx)
	diags = append(diags, d...)
	n.inputs = append(n.inputs, tarball)

	baseExpr := c.Attributes["base"].Expr
	bv, d := baseExpr.Value(ctx)
	diags = append(diags, d...)
	switch {
	case d.HasErrors():
	case bv.IsKnown() && bv.Type() == cty.String:
		var s string
		diags = append(diags, recipes.DecodeExpr(baseExpr, ctx, cty.String, &s)...)
		if !slices.Contains(baseTargets, s) {
			diags = append(diags, recipes.Diag("Unknown base configuration",
				fmt.Sprintf("base is one of %s, or a configuration file (an artifact such as input.NAME), not %q.", strings.Join(baseTargets, ", "), s), baseExpr.Range()))
		}
		n.params.Base = s
	default:
		a, _, d := recipes.DecodeArtifact(baseExpr, ctx)
		diags = append(diags, d...)
		n.params.Base = "file"
		n.inputs = append(n.inputs, a)
	}

	if a, ok := c.Attributes["fragments"]; ok {
		diags = append(diags, n.decodeFragments(a.Expr, ctx)...)
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return n, diags
}

// decodeFragments reads the fragments list: shipped names and artifacts,
// in merge order.
func (n *sourceNode) decodeFragments(expr hcl.Expression, ctx *hcl.EvalContext) hcl.Diagnostics {
	val, diags := expr.Value(ctx)
	if diags.HasErrors() || !val.IsKnown() {
		return diags
	}
	if !val.Type().IsListType() && !val.Type().IsTupleType() {
		return append(diags, recipes.Diag("Invalid fragments",
			fmt.Sprintf("fragments is a list of shipped fragment names (%s) and configuration files (input.NAME), not %s.", strings.Join(ShippedFragments(), ", "), val.Type().FriendlyName()), expr.Range()))
	}
	if val.IsNull() {
		return append(diags, recipes.Diag("Invalid fragments", "fragments is null.", expr.Range()))
	}
	seen := map[string]bool{}
	for it := val.ElementIterator(); it.Next(); {
		_, v := it.Element()
		if !v.IsKnown() {
			continue
		}
		if v.Type() == cty.String && !v.IsNull() {
			name := v.AsString()
			data, err := ShippedFragment(name)
			if err != nil {
				diags = append(diags, recipes.Diag("Unknown fragment", err.Error()+"; give a file as an input for other fragments.", expr.Range()))
				continue
			}
			if seen[name] {
				diags = append(diags, recipes.Diag("Duplicate fragment", fmt.Sprintf("fragment %q is listed twice.", name), expr.Range()))
				continue
			}
			seen[name] = true
			sum := sha256.Sum256(data)
			n.shipped[name] = data
			n.params.Fragments = append(n.params.Fragments, fragParam{Name: name, SHA256: hex.EncodeToString(sum[:]), Input: -1})
			continue
		}
		a, _, d := recipes.DecodeArtifact(hcl.StaticExpr(v, expr.Range()), ctx)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		n.params.Fragments = append(n.params.Fragments, fragParam{Name: a.Origin, Input: len(n.inputs)})
		n.inputs = append(n.inputs, a)
	}
	return diags
}

// toolchain runs the toolchain probe once per node.
func (n *sourceNode) toolchain(ctx context.Context) (string, error) {
	n.probeOnce.Do(func() { n.probe, n.probeErr = ToolchainIdentity(ctx) })
	return n.probe, n.probeErr
}

// Steps implements recipes.Node: one step that configures and builds.
func (n *sourceNode) Steps() []*recipes.Step {
	return []*recipes.Step{{
		ID: "build", Kind: "kernel/source", Version: "4",
		Params: n.params,
		Inputs: n.inputs,
		Probe:  n.toolchain,
		Run:    n.run,
	}}
}

// fragments returns the fragments in merge order with their content.
func (n *sourceNode) fragments() ([]Fragment, error) {
	var out []Fragment
	for _, f := range n.params.Fragments {
		if f.Input < 0 {
			out = append(out, Fragment{Name: f.Name, Data: n.shipped[f.Name]})
			continue
		}
		b, err := os.ReadFile(n.inputs[f.Input].Path)
		if err != nil {
			return nil, err
		}
		out = append(out, Fragment{Name: f.Name, Data: b})
	}
	return out, nil
}

func (n *sourceNode) run(ctx context.Context, sc *recipes.StepContext) error {
	frags, err := n.fragments()
	if err != nil {
		return err
	}
	for _, f := range frags {
		if _, err := parseConfig(f.Data); err != nil {
			return fmt.Errorf("kernel.%s: fragment %s: %w", n.name, f.Name, err)
		}
	}
	var baseFile []byte
	base := n.params.Base
	if base == "file" {
		base = ""
		if baseFile, err = os.ReadFile(n.inputs[1].Path); err != nil {
			return err
		}
		if _, err := parseConfig(baseFile); err != nil {
			return fmt.Errorf("kernel.%s: base configuration %s: %w", n.name, n.inputs[1].Origin, err)
		}
	}
	work, err := os.MkdirTemp(filepath.Dir(sc.OutDir), "kbuild-")
	if err != nil {
		return err
	}
	jobs := runtime.NumCPU()
	defer func() {
		// The tree is 1.5 GB in 90,000 files: removed by one goroutine per
		// core, timed in the raw log.
		start := time.Now()
		if err := removeTree(work, jobs); err != nil {
			fmt.Fprintf(sc.Log, "== removing the work directory: %v\n", err)
		}
		fmt.Fprintf(sc.Log, "== work directory removed: %v wall\n", time.Since(start).Round(100*time.Millisecond))
	}()
	k, err := newKbuild(work, sc.Epoch, jobs, sc.Log, sc.Progress)
	if err != nil {
		return err
	}
	k.onStage = sc.Stage
	if tc, err := n.toolchain(ctx); err == nil {
		fmt.Fprintf(sc.Log, "== toolchain\n%s", tc)
	}
	res, err := k.Build(ctx, n.inputs[0].Path, base, baseFile, frags)
	if err != nil {
		return fmt.Errorf("kernel.%s: %w", n.name, err)
	}
	outStart := time.Now()
	if _, err := filecopy.Copy(res.BzImage, filepath.Join(sc.OutDir, "vmlinuz"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(sc.OutDir, "config"), res.Config, 0o644); err != nil {
		return err
	}
	if res.ModuleRoot != "" {
		err := atomicfile.Write(filepath.Join(sc.OutDir, "modules.tar"), 0o644, func(w io.Writer) error {
			bw := bufio.NewWriterSize(w, 1<<20)
			count, err := writeModuleTar(res.ModuleRoot, bw, time.Unix(sc.Epoch, 0))
			if err != nil {
				return err
			}
			sc.Meta["modules"] = count
			return bw.Flush()
		})
		if err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(sc.OutDir, "build.log"), k.Log(), 0o644); err != nil {
		return err
	}
	b, err := os.ReadFile(res.BzImage)
	if err != nil {
		return err
	}
	info, err := Inspect(b)
	if err != nil {
		return fmt.Errorf("kernel.%s: the built bzImage: %w", n.name, err)
	}
	sc.Meta["release"] = res.Release
	sc.Meta["version"] = info.Version
	sc.Meta["boot_protocol"] = info.ProtocolString()
	fmt.Fprintf(sc.Log, "== outputs written: %v wall\n", time.Since(outStart).Round(100*time.Millisecond))
	return nil
}

// Finish implements recipes.Node.
func (n *sourceNode) Finish(results map[string]*recipes.Result) (*recipes.Output, error) {
	res := results["build"]
	origin := "kernel." + n.name
	img, err := res.File("vmlinuz")
	if err != nil {
		return nil, err
	}
	cfg, err := res.File("config")
	if err != nil {
		return nil, err
	}
	logf, err := res.File("build.log")
	if err != nil {
		return nil, err
	}
	img.Origin, cfg.Origin, logf.Origin = origin, origin, origin
	release, _ := res.Meta["release"].(string)
	proto, _ := res.Meta["boot_protocol"].(string)
	version, _ := res.Meta["version"].(string)
	dir := "kernel/" + n.name + "/"
	var frags []string
	for _, f := range n.params.Fragments {
		frags = append(frags, f.Name)
	}
	out := &recipes.Output{
		Artifacts: []recipes.OutputArtifact{
			{Name: origin, Kind: "kernel", Path: dir + "vmlinuz", File: img, Extra: map[string]any{
				"cmdline": n.cmdline, "release": release, "boot_protocol": proto, "version": version,
				"built_from": "source", "source_sha256": n.inputs[0].SHA256, "config_sha256": cfg.SHA256,
			}},
			{Name: origin + ".config", Kind: "kernel-config", Path: dir + "config", File: cfg, Extra: map[string]any{
				"release": release, "base": n.params.Base, "fragments": frags,
			}},
			{Name: origin + ".log", Kind: "log", Path: dir + "build.log", File: logf},
		},
	}
	modules := cty.NullVal(recipes.ArtifactType)
	if m, err := res.File("modules.tar"); err == nil {
		m.Origin = origin
		modules = recipes.ArtifactVal(m)
		count := res.Meta["modules"]
		out.Artifacts = append(out.Artifacts, recipes.OutputArtifact{Name: origin + ".modules", Kind: "kernel-modules",
			Path: dir + "modules.tar", File: m, Extra: map[string]any{"release": release, "modules": count}})
	}
	out.Value = cty.ObjectVal(map[string]cty.Value{
		"image":   recipes.ArtifactVal(img),
		"cmdline": cty.StringVal(n.cmdline),
		"release": cty.StringVal(release),
		"config":  recipes.ArtifactVal(cfg),
		"modules": modules,
	})
	return out, nil
}
