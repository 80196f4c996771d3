package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/recipes"
)

// PostBuilder is an optional interface of a recipes.Node, for blocks that
// work on the whole build rather than on the files of the blocks they refer
// to, such as publishing its measurements. Once every block is built, Build
// calls PostBuild on each such node, in recipe order, with the manifest of
// the build without the artifacts of post-build blocks (which it must not
// change), and an empty directory. The artifacts it returns are files below dir: they are
// copied into the output directory and listed in the manifest as the
// block's. notes are messages for the user, such as warnings. An error that
// is (or wraps) hcl.Diagnostics is reported as a recipe error.
//
// Post-build work is not cached: it runs on every build, after the steps and
// before the output directory is written, so it must be idempotent and,
// given what it reads, reproducible like a step. It may read from outside
// the build, and so take time and fail on the network (publish resolves the
// pushed disk image's digest in the registry of an oci:// feed), but it
// changes nothing outside dir: what leaves the build belongs in Deliver.
// Plans and validation do not call it.
type PostBuilder interface {
	PostBuild(ctx context.Context, m *manifest.Manifest, dir string) (artifacts []recipes.OutputArtifact, notes []string, err error)
}

// Deliverer is an optional interface of a PostBuilder whose work has a
// part that leaves the build, such as appending a signed release to feeds.
// Build calls Deliver, in recipe order, only once the output directory
// holding what PostBuild made is complete and in place: a build that fails
// before (writing OUT included) delivers nothing. It is called at most once,
// after a successful PostBuild of the same node. notes are as PostBuild's.
type Deliverer interface {
	Deliver(ctx context.Context) (notes []string, err error)
}

// StatusAlways marks a step that runs on every build, cached or not: the
// post-build work of a PostBuilder block (publishing), which plans and
// build reports list as BLOCK:post-build.
const StatusAlways StepStatus = "always"

// StatusSkipped marks post-build work that a build without publishing
// (Loaded.SkipPostBuild, cocobuild build --no-publish) does not run.
const StatusSkipped StepStatus = "skipped"

// PostBuildStep is the step name under which plans and build reports list a
// PostBuilder block's post-build work.
const PostBuildStep = "post-build"

// postBuildReport is the plan and build report line of a post-build step.
func postBuildReport(b *recipes.Block) StepReport {
	return StepReport{Block: b.Addr(), Step: PostBuildStep, Kind: b.Type, Status: StatusAlways,
		Reason: "works on the whole build once every step is done; not cached, it runs on every build"}
}

// postBuildSkippedReport is the plan and build report line of a post-build
// step that a build without publishing does not run.
func postBuildSkippedReport(b *recipes.Block) StepReport {
	return StepReport{Block: b.Addr(), Step: PostBuildStep, Kind: b.Type, Status: StatusSkipped,
		Reason: "not run: building without publishing, nothing is signed or delivered"}
}

// Skipped counts the post-build steps a build without publishing skips.
func (r *Report) Skipped() int { return r.count(StatusSkipped) }

// Cached counts the steps whose result came (or, in a plan, would come)
// from the cache.
func (r *Report) Cached() int { return r.count(StatusCached) }

// Always counts the steps that run on every build (post-build work).
func (r *Report) Always() int { return r.count(StatusAlways) }

// postBuildBlock is a block whose node is a PostBuilder.
type postBuildBlock struct {
	block *recipes.Block
	pb    PostBuilder
}

// postBuilders decodes every block, with the outputs known so far (the
// others unknown, as validation does), and returns those whose node is a
// PostBuilder, in recipe order.
func (l *Loaded) postBuilders(outputs map[string]*recipes.Output) ([]postBuildBlock, error) {
	var posts []postBuildBlock
	for _, b := range l.Recipe.Blocks {
		vals := map[string]cty.Value{}
		for _, d := range b.Deps {
			if o, ok := outputs[d]; ok {
				vals[d] = o.Value
			}
		}
		node, diags := b.Kind.Decode(b, l.Recipe.EvalContext(vals))
		if diags.HasErrors() {
			return nil, &DiagError{Diags: diags, Files: l.Recipe.Files}
		}
		if pb, ok := node.(PostBuilder); ok {
			posts = append(posts, postBuildBlock{b, pb})
		}
	}
	return posts, nil
}

// addPostBuildReports lists the post-build steps of posts in rep, each
// after its block's other steps, in recipe order.
func (l *Loaded) addPostBuildReports(rep *Report, posts []postBuildBlock) {
	if len(posts) == 0 {
		return
	}
	for _, p := range posts {
		if l.SkipPostBuild {
			rep.Steps = append(rep.Steps, postBuildSkippedReport(p.block))
		} else {
			rep.Steps = append(rep.Steps, postBuildReport(p.block))
		}
	}
	sort.SliceStable(rep.Steps, func(i, j int) bool {
		return blockIndex(l.Recipe, rep.Steps[i].Block) < blockIndex(l.Recipe, rep.Steps[j].Block)
	})
}

// planPostBuild adds to a plan the post-build steps that the build would
// run after its steps.
func (l *Loaded) planPostBuild(rep *Report) error {
	posts, err := l.postBuilders(rep.Outputs)
	if err != nil {
		return err
	}
	l.addPostBuildReports(rep, posts)
	return nil
}

// delivery is the deliver part of a post-build step, run once OUT is in
// place.
type delivery struct {
	addr string
	d    Deliverer
}

// postBuild runs the PostBuilder nodes of a finished build with m (the
// manifest without post-build artifacts), adds the artifacts
// they make to their blocks' outputs in rep and lists their post-build
// steps in rep. It returns the deliveries to run once the output directory
// is written; cleanup removes the files once it is. Without publishing
// (SkipPostBuild) it only lists the steps as skipped.
func (l *Loaded) postBuild(ctx context.Context, rep *Report, m *manifest.Manifest, obs Observer) (notes []string, deliveries []delivery, cleanup func(), err error) {
	cleanup = func() {}
	if obs == nil {
		obs = nopObserver{}
	}
	posts, err := l.postBuilders(rep.Outputs)
	if err != nil {
		return nil, nil, cleanup, err
	}
	if len(posts) == 0 {
		return nil, nil, cleanup, nil
	}
	if l.SkipPostBuild {
		l.addPostBuildReports(rep, posts)
		return nil, nil, cleanup, nil
	}
	tmp, err := l.Cache.TempDir("post")
	if err != nil {
		return nil, nil, cleanup, err
	}
	cleanup = func() { os.RemoveAll(tmp) }
	for i, p := range posts {
		addr := p.block.Addr()
		out, ok := rep.Outputs[addr]
		if !ok {
			return nil, nil, cleanup, fmt.Errorf("%s was not built", addr)
		}
		dir := filepath.Join(tmp, fmt.Sprint(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, nil, cleanup, err
		}
		step := addr + ":" + PostBuildStep
		obs.Event(Event{Step: step, State: StateRunning})
		arts, n, err := p.pb.PostBuild(ctx, m, dir)
		if err != nil {
			obs.Event(Event{Step: step, State: StateFailed, Err: err})
			// A block that says what in the recipe is wrong gets its
			// diagnostics shown, with the snippet.
			var diags hcl.Diagnostics
			if errors.As(err, &diags) && diags.HasErrors() {
				return nil, nil, cleanup, &DiagError{Diags: diags, Files: l.Recipe.Files, Err: err}
			}
			return nil, nil, cleanup, fmt.Errorf("%s: %w", addr, err)
		}
		obs.Event(Event{Step: step, State: StateDone})
		l.addPostBuildReports(rep, posts[i:i+1])
		// The block's output is shared with the report; give it its own copy.
		o := *out
		o.Artifacts = append(append([]recipes.OutputArtifact(nil), out.Artifacts...), arts...)
		rep.Outputs[addr] = &o
		for _, s := range n {
			notes = append(notes, addr+": "+s)
		}
		if d, ok := p.pb.(Deliverer); ok {
			deliveries = append(deliveries, delivery{addr: addr, d: d})
		}
	}
	return notes, deliveries, cleanup, nil
}

// deliver runs the deliveries of a build whose output directory is in
// place, in recipe order.
func deliver(ctx context.Context, ds []delivery) (notes []string, err error) {
	for _, d := range ds {
		n, err := d.d.Deliver(ctx)
		for _, s := range n {
			notes = append(notes, d.addr+": "+s)
		}
		if err != nil {
			return notes, fmt.Errorf("%s: %w", d.addr, err)
		}
	}
	return notes, nil
}
