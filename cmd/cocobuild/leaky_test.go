package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
	"github.com/u-root/u-root/pkg/cpio"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/recipes"
)

// testKinds are block kinds that only the test binary's cocobuild knows.
func testKinds() []recipes.Kind { return []recipes.Kind{leakyKind{}} }

// leakyKind is a deliberately non-reproducible block, for proving that
// repro catches leaks: `leaky "x" {}` writes a cpio whose etc/tz holds $TZ
// and whose etc/umask has the mode the umask gives a new file.
type leakyKind struct{}

func (leakyKind) Type() string            { return "leaky" }
func (leakyKind) Schema() *hcl.BodySchema { return &hcl.BodySchema{} }
func (leakyKind) OutputType() cty.Type    { return cty.EmptyObject }
func (leakyKind) Decode(b *recipes.Block, _ *hcl.EvalContext) (recipes.Node, hcl.Diagnostics) {
	_, diags := b.Body.Content(&hcl.BodySchema{})
	return leakyNode(b.Name), diags
}

type leakyNode string

func (n leakyNode) Steps() []*recipes.Step {
	return []*recipes.Step{{ID: "leak", Kind: "test/leaky", Version: "1", Run: func(_ context.Context, sc *recipes.StepContext) error {
		probe := filepath.Join(sc.OutDir, "probe")
		if err := os.WriteFile(probe, nil, 0o666); err != nil {
			return err
		}
		st, err := os.Stat(probe)
		if err != nil {
			return err
		}
		os.Remove(probe)
		var buf bytes.Buffer
		w := cpio.Newc.Writer(&buf)
		for _, e := range []struct {
			name string
			mode uint64
			data string
		}{
			{"etc/stable", 0o100644, "same every time"},
			{"etc/tz", 0o100644, os.Getenv("TZ")},
			{"etc/umask", 0o100000 | uint64(st.Mode().Perm()), "x"},
		} {
			rec := cpio.StaticRecord([]byte(e.data), cpio.Info{Name: e.name, Mode: e.mode, NLink: 1, FileSize: uint64(len(e.data))})
			if err := w.WriteRecord(rec); err != nil {
				return err
			}
		}
		if err := cpio.WriteTrailer(w); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(sc.OutDir, "leak.cpio"), buf.Bytes(), 0o644)
	}}}
}

func (n leakyNode) Finish(results map[string]*recipes.Result) (*recipes.Output, error) {
	f, err := results["leak"].File("leak.cpio")
	if err != nil {
		return nil, err
	}
	return &recipes.Output{Value: cty.EmptyObjectVal, Artifacts: []recipes.OutputArtifact{{
		Name: "leaky." + string(n), Kind: "test", Path: "leaky/" + string(n) + "/leak.cpio", File: f}}}, nil
}
