package builder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/recipes"
)

// PostBuilder is an optional interface of a recipes.Node, for blocks that
// work on the whole build rather than on the files of the blocks they refer
// to, such as publishing its measurements. Once every block is built, Build
// calls PostBuild on each such node, in recipe order, with the manifest as
// manifest.json would hold it without the artifacts of post-build blocks, and
// an empty directory. The artifacts it returns are files below dir: they are
// copied into the output directory and listed in the manifest as the
// block's. notes are messages for the user, such as warnings.
//
// Post-build work is not cached: it runs on every build, after the steps and
// before the output directory is written, so it must be quick, idempotent
// and, like a step, reproducible. Plans and validation do not call it.
type PostBuilder interface {
	PostBuild(ctx context.Context, manifest []byte, dir string) (artifacts []recipes.OutputArtifact, notes []string, err error)
}

// postBuild runs the PostBuilder nodes of a finished build and adds the
// artifacts they make to their blocks' outputs in rep. cleanup removes the
// files once the output directory is written.
func (l *Loaded) postBuild(ctx context.Context, rep *Report, obs Observer) (notes []string, cleanup func(), err error) {
	cleanup = func() {}
	if obs == nil {
		obs = nopObserver{}
	}
	type post struct {
		block *recipes.Block
		pb    PostBuilder
	}
	var posts []post
	for _, b := range l.Recipe.Blocks {
		vals := map[string]cty.Value{}
		for _, d := range b.Deps {
			if o, ok := rep.Outputs[d]; ok {
				vals[d] = o.Value
			}
		}
		node, diags := b.Kind.Decode(b, l.Recipe.EvalContext(vals))
		if diags.HasErrors() {
			return nil, cleanup, &DiagError{Diags: diags, Files: l.Recipe.Files}
		}
		if pb, ok := node.(PostBuilder); ok {
			posts = append(posts, post{b, pb})
		}
	}
	if len(posts) == 0 {
		return nil, cleanup, nil
	}
	m, err := NewManifest(l.Recipe, rep)
	if err != nil {
		return nil, cleanup, err
	}
	enc, err := m.Encode()
	if err != nil {
		return nil, cleanup, err
	}
	tmp, err := l.Env.Cache.TempDir("post")
	if err != nil {
		return nil, cleanup, err
	}
	cleanup = func() { os.RemoveAll(tmp) }
	for i, p := range posts {
		addr := p.block.Addr()
		out, ok := rep.Outputs[addr]
		if !ok {
			return nil, cleanup, fmt.Errorf("%s was not built", addr)
		}
		dir := filepath.Join(tmp, fmt.Sprint(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, cleanup, err
		}
		step := addr + ":post-build"
		obs.Event(Event{Step: step, State: StateRunning})
		arts, n, err := p.pb.PostBuild(ctx, enc, dir)
		if err != nil {
			obs.Event(Event{Step: step, State: StateFailed, Err: err})
			return nil, cleanup, fmt.Errorf("%s: %w", addr, err)
		}
		obs.Event(Event{Step: step, State: StateDone})
		// The block's output is shared with the report; give it its own copy.
		o := *out
		o.Artifacts = append(append([]recipes.OutputArtifact(nil), out.Artifacts...), arts...)
		rep.Outputs[addr] = &o
		for _, s := range n {
			notes = append(notes, addr+": "+s)
		}
	}
	return notes, cleanup, nil
}
