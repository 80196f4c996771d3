package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/recipes"
)

// postKind is a block kind whose nodes work on the whole build: it writes
// the number of artifacts the manifest lists into a file.
type postKind struct{ fail bool }

func (postKind) Type() string            { return "post" }
func (postKind) Schema() *hcl.BodySchema { return &hcl.BodySchema{} }
func (postKind) OutputType() cty.Type    { return cty.String }
func (k postKind) Decode(b *recipes.Block, _ *hcl.EvalContext) (recipes.Node, hcl.Diagnostics) {
	return &postNode{name: b.Name, fail: k.fail}, nil
}

type postNode struct {
	name string
	fail bool
}

func (n *postNode) Steps() []*recipes.Step { return nil }
func (n *postNode) Finish(map[string]*recipes.Result) (*recipes.Output, error) {
	return &recipes.Output{Value: cty.StringVal(n.name)}, nil
}

func (n *postNode) PostBuild(ctx context.Context, m *manifest.Manifest, dir string) ([]recipes.OutputArtifact, []string, error) {
	if n.fail {
		return nil, nil, errors.New("post-build failed on purpose")
	}
	b := []byte(m.Recipe.SHA256 + " " + m.Inputs[0].SHA256 + "\n")
	p := filepath.Join(dir, "summary.txt")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return nil, nil, err
	}
	sum := sha256.Sum256(b)
	return []recipes.OutputArtifact{{Name: "post." + n.name, Kind: "summary", Path: "post/" + n.name + ".txt",
			File: recipes.Artifact{Path: p, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(b))}, Extra: map[string]any{"x": 1.0}}},
		[]string{"summarised"}, nil
}

func loadWithPost(t *testing.T, fail bool) (*Loaded, string) {
	t.Helper()
	dir := t.TempDir()
	data := []byte("input bytes\n")
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	recipe := `recipe {
  name = "post"
}
input "a" {
  file   = "a.txt"
  sha256 = "` + testenv.SHA256Hex(data) + `"
}
post "p" {}
`
	if err := os.WriteFile(filepath.Join(dir, "r.hcl"), []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	cache, err := OpenCache(filepath.Join(dir, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	kinds, err := testKinds(cache, dir, input.Options{}, postKind{fail: fail})
	if err != nil {
		t.Fatal(err)
	}
	r, diags := recipes.Load(filepath.Join(dir, "r.hcl"), recipes.NewRegistry(kinds...), recipes.LoadOptions{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return &Loaded{Recipe: r, Cache: cache}, dir
}

func TestPostBuilderAddsArtifactsAndNotes(t *testing.T) {
	l, dir := loadWithPost(t, false)
	out := filepath.Join(dir, "out")
	res, err := l.Build(context.Background(), out, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Notes) != 1 || res.Notes[0] != "post.p: summarised" {
		t.Errorf("notes %q, want [post.p: summarised]", res.Notes)
	}
	b, err := os.ReadFile(filepath.Join(out, "post", "p.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if want := l.Recipe.Digest() + " " + testenv.SHA256Hex([]byte("input bytes\n")) + "\n"; string(b) != want {
		t.Errorf("post-build saw %q, want %q", b, want)
	}
	m, err := manifest.Read(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range m.Artifacts {
		if a.Name == "post.p" && a.Path == "post/p.txt" && a.SHA256 == testenv.SHA256Hex(b) && a.Extra["x"] == 1.0 {
			found = true
		}
	}
	if !found {
		t.Errorf("manifest artifacts %+v lack post.p", m.Artifacts)
	}
	// The temporary files are gone once the output is written.
	tmps, _ := filepath.Glob(filepath.Join(l.Cache.Dir, "tmp", "*post*"))
	if len(tmps) != 0 {
		t.Errorf("post-build left %v behind", tmps)
	}
}

func TestPostBuilderFailureWritesNothing(t *testing.T) {
	l, dir := loadWithPost(t, true)
	out := filepath.Join(dir, "out")
	_, err := l.Build(context.Background(), out, 1, nil)
	if err == nil || !strings.Contains(err.Error(), "post.p: post-build failed on purpose") {
		t.Fatalf("error %v, want the post-build failure with the block's address", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output directory written despite the failure: %v", err)
	}
}

// TestPlanListsPostBuild: a plan lists the post-build step that a build
// runs, before and after the build, as always run and not counted as to
// run; the build's report lists it the same way.
func TestPlanListsPostBuild(t *testing.T) {
	l, dir := loadWithPost(t, false)
	lines := func(rep *Report) []string {
		var out []string
		for _, s := range rep.Steps {
			out = append(out, fmt.Sprintf("%s:%s %s %s", s.Block, s.Step, s.Kind, s.Status))
		}
		return out
	}
	type counts struct{ Ran, Cached, Always int }
	planBefore, err := l.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	build, err := l.Build(context.Background(), filepath.Join(dir, "out"), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	planAfter, err := l.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		rep    *Report
		want   []string
		counts counts
	}{
		{"plan before the build", planBefore, []string{"input.a:fetch input run", "post.p:post-build post always"}, counts{1, 0, 1}},
		{"build", build.Report, []string{"input.a:fetch input run", "post.p:post-build post always"}, counts{1, 0, 1}},
		{"plan after the build", planAfter, []string{"input.a:fetch input cached", "post.p:post-build post always"}, counts{0, 1, 1}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, lines(tc.rep)); diff != "" {
			t.Errorf("%s: steps (-want +got):\n%s", tc.name, diff)
		}
		if got := (counts{tc.rep.Ran(), tc.rep.Cached(), tc.rep.Always()}); got != tc.counts {
			t.Errorf("%s: counts %+v, want %+v", tc.name, got, tc.counts)
		}
		for _, s := range tc.rep.Steps {
			if s.Reason == "" {
				t.Errorf("%s: %s:%s has no reason", tc.name, s.Block, s.Step)
			}
		}
	}
}

// TestImportBlocksSkipsPostBuild: a build report's post-build step has no
// cache entry; --reuse of its block says the block has no cached steps
// instead of failing to import an empty key, and other blocks import.
func TestImportBlocksSkipsPostBuild(t *testing.T) {
	l, dir := loadWithPost(t, false)
	res, err := l.Build(context.Background(), filepath.Join(dir, "out"), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	to, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		block   string
		wantErr string
	}{
		{"input.a", ""},
		{"post.p", "--reuse post.p: the recipe has no block post.p with steps"},
	}
	for _, tc := range tests {
		err := ImportBlocks(to, l.Cache, res.Report.Steps, []string{tc.block})
		got := ""
		if err != nil {
			got = err.Error()
		}
		if !strings.HasPrefix(got, tc.wantErr) || (tc.wantErr == "") != (err == nil) {
			t.Errorf("ImportBlocks(%s): error %q, want %q", tc.block, got, tc.wantErr)
		}
	}
}
