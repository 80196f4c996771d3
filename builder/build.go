package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"golang.org/x/sync/errgroup"

	"github.com/cocobuild/cocobuild/internal/childenv"
	"github.com/cocobuild/cocobuild/recipes"
)

// Options control a build or a plan.
type Options struct {
	Cache    *Cache
	Jobs     int      // steps run at once; 0 means one per CPU
	Observer Observer // progress events; nil for none
	// DryRun plans without running: steps are looked up in the cache only
	// (and in Remote's repositories, without pulling).
	DryRun bool
	// Remote is the shared layer of the cache (--cache-from, --cache-to);
	// nil for none.
	Remote *Remote
}

// RecipeError carries diagnostics found while decoding blocks during a build.
type RecipeError struct{ Diags hcl.Diagnostics }

func (e *RecipeError) Error() string { return e.Diags.Error() }

// StepStatus says what a plan or build did with a step.
type StepStatus string

// Step statuses.
const (
	StatusCached StepStatus = "cached" // the key was in the cache
	StatusRun    StepStatus = "run"    // it runs (plan: it would run)
	// StatusFailed: the step ran and failed; Reason holds the error.
	StatusFailed StepStatus = "failed"
	// StatusCancelled: the step was running when another step failed or
	// the build was interrupted.
	StatusCancelled StepStatus = "cancelled"
	// StatusPull: in a plan, the step is missing locally and a remote
	// cache holds it: a build pulls it rather than running it.
	StatusPull StepStatus = "pull"
)

// StepReport is one line of a plan or build report.
type StepReport struct {
	Block  string     `json:"block"`
	Step   string     `json:"step"`
	Kind   string     `json:"kind"`
	Key    string     `json:"key,omitempty"`
	Status StepStatus `json:"status"`
	Reason string     `json:"reason"`
	// Remote is the remote cache the result was pulled from (a build) or
	// would be (a plan); "" when it was not.
	Remote string `json:"remote,omitempty"`
}

// Report is the outcome of Run.
type Report struct {
	Steps   []StepReport               `json:"steps"`
	Outputs map[string]*recipes.Output `json:"-"`
	// reads holds, by step key, the keys of the cache entries whose files
	// the step reads (its inputs' and the results' it comes after).
	reads map[string][]string
}

// Ran counts the steps that ran (or, in a plan, would run).
func (r *Report) Ran() int { return r.count(StatusRun) }

// Pulled counts the steps whose results were pulled from a remote cache.
func (r *Report) Pulled() int {
	n := 0
	for _, s := range r.Steps {
		if s.Status == StatusCached && s.Remote != "" {
			n++
		}
	}
	return n
}

// ToPull counts the steps a plan found in a remote cache only.
func (r *Report) ToPull() int { return r.count(StatusPull) }

// count counts the steps with status st.
func (r *Report) count(st StepStatus) int {
	n := 0
	for _, s := range r.Steps {
		if s.Status == st {
			n++
		}
	}
	return n
}

type runner struct {
	opts   Options
	recipe *recipes.Recipe
	sem    chan struct{}

	mu      sync.Mutex
	outputs map[string]*recipes.Output // finished blocks
	report  []StepReport
	reads   map[string][]string // see Report.reads
	// pushCtx is the build's context, for the pushes to remote caches,
	// which outlive the steps' (cancelled once every step is done).
	pushCtx context.Context
}

// Run plans and (unless DryRun) builds every block of the recipe. When the
// build fails it returns the report so far with the error: the failed step
// has StatusFailed, the steps stopped because of it StatusCancelled.
func Run(ctx context.Context, r *recipes.Recipe, opts Options) (*Report, error) {
	if opts.Jobs <= 0 {
		opts.Jobs = runtime.NumCPU()
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	rn := &runner{opts: opts, recipe: r, sem: make(chan struct{}, opts.Jobs), outputs: map[string]*recipes.Output{}, reads: map[string][]string{}}
	ctx = recipes.WithProbeMemo(ctx, opts.Cache.ProbeMemo())
	// No process a step starts gets a secret the recipe names (env:// keys).
	ctx = childenv.WithSecrets(ctx, r.SecretEnv()...)
	rn.pushCtx = ctx
	g, gctx := errgroup.WithContext(ctx)
	done := map[string]chan struct{}{}
	for _, b := range r.Blocks {
		done[b.Addr()] = make(chan struct{})
	}
	for _, b := range r.Blocks {
		g.Go(func() error {
			for _, d := range b.Deps {
				select {
				case <-done[d]:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			err := rn.runBlock(gctx, b)
			close(done[b.Addr()])
			return err
		})
	}
	err := g.Wait()
	opts.Remote.Wait() // the pushes of the steps' results
	sort.SliceStable(rn.report, func(i, j int) bool {
		if rn.report[i].Block != rn.report[j].Block {
			return blockIndex(r, rn.report[i].Block) < blockIndex(r, rn.report[j].Block)
		}
		return false
	})
	rep := &Report{Steps: rn.report, Outputs: rn.outputs, reads: rn.reads}
	if err != nil {
		if ctx.Err() != nil {
			return rep, fmt.Errorf("build interrupted (%v): every running step was stopped, nothing half-written was kept", context.Cause(ctx))
		}
		return rep, err
	}
	return rep, nil
}

func blockIndex(r *recipes.Recipe, addr string) int {
	for i, b := range r.Blocks {
		if b.Addr() == addr {
			return i
		}
	}
	return len(r.Blocks)
}

func (rn *runner) addReport(s StepReport) {
	rn.mu.Lock()
	rn.report = append(rn.report, s)
	rn.mu.Unlock()
}

// setStatus changes the status of a step already in the report.
func (rn *runner) setStatus(block, step string, status StepStatus, reason string) {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	for i := range rn.report {
		if rn.report[i].Block == block && rn.report[i].Step == step {
			rn.report[i].Status, rn.report[i].Reason = status, reason
			return
		}
	}
}

// runBlock decodes a block once its dependencies are finished, runs its
// steps and records its output. In a plan, a block whose dependency is not
// built is reported as to run, with the dependency as the reason.
func (rn *runner) runBlock(ctx context.Context, b *recipes.Block) error {
	rn.mu.Lock()
	vals := map[string]cty.Value{}
	var missing []string
	for _, d := range b.Deps {
		if o, ok := rn.outputs[d]; ok {
			vals[d] = o.Value
		} else {
			missing = append(missing, d)
		}
	}
	rn.mu.Unlock()
	if len(missing) > 0 { // only in a plan
		rn.addReport(StepReport{Block: b.Addr(), Step: "*", Kind: b.Type, Status: StatusRun,
			Reason: fmt.Sprintf("depends on %s, which is not built yet", missing[0])})
		return nil
	}
	node, diags := b.Kind.Decode(b, rn.recipe.EvalContext(vals))
	if diags.HasErrors() {
		return &RecipeError{Diags: diags}
	}
	steps := node.Steps()
	results := map[string]*recipes.Result{}
	var rmu sync.Mutex
	stepDone := map[string]chan struct{}{}
	for _, s := range steps {
		stepDone[s.ID] = make(chan struct{})
	}
	for _, s := range steps {
		for _, a := range s.After {
			if _, ok := stepDone[a]; !ok {
				return fmt.Errorf("%s: step %s waits for unknown step %s (a bug in the %s block kind)", b.Addr(), s.ID, a, b.Type)
			}
		}
	}
	incomplete := false
	g, gctx := errgroup.WithContext(ctx)
	for _, s := range steps {
		g.Go(func() error {
			defer close(stepDone[s.ID])
			after := map[string]*recipes.Result{}
			for _, a := range s.After {
				select {
				case <-stepDone[a]:
				case <-gctx.Done():
					return gctx.Err()
				}
				rmu.Lock()
				res, ok := results[a]
				rmu.Unlock()
				if !ok {
					rn.addReport(StepReport{Block: b.Addr(), Step: s.ID, Kind: s.Kind, Status: StatusRun,
						Reason: fmt.Sprintf("depends on step %s, which is not built yet", a)})
					return nil
				}
				after[a] = res
			}
			res, err := rn.runStep(gctx, b, s, after)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", b.Addr(), s.ID, err)
			}
			rmu.Lock()
			if res != nil {
				results[s.ID] = res
			} else {
				incomplete = true
			}
			rmu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if incomplete || len(results) < len(steps) {
		return nil // a plan with steps still to run: the block has no output yet
	}
	out, err := node.Finish(results)
	if err != nil {
		return fmt.Errorf("%s: %w", b.Addr(), err)
	}
	rn.mu.Lock()
	rn.outputs[b.Addr()] = out
	rn.mu.Unlock()
	return nil
}

// keyDoc is what a step key hashes.
type keyDoc struct {
	Kind    string                          `json:"kind"`
	Version string                          `json:"version"`
	Epoch   int64                           `json:"epoch"`
	Params  any                             `json:"params"`
	Inputs  []string                        `json:"inputs"`
	After   map[string][]recipes.FileDigest `json:"after"`
	Probe   string                          `json:"probe,omitempty"`
}

// StepKey computes a step's cache key.
func StepKey(s *recipes.Step, epoch int64, after map[string]*recipes.Result, probe string) (string, error) {
	doc := keyDoc{Kind: s.Kind, Version: s.Version, Epoch: epoch, Params: s.Params, After: map[string][]recipes.FileDigest{}, Probe: probe}
	for _, in := range s.Inputs {
		doc.Inputs = append(doc.Inputs, in.SHA256)
	}
	for id, r := range after {
		doc.After[id] = r.Files
	}
	b, err := json.Marshal(doc) // map keys are sorted by encoding/json
	if err != nil {
		return "", fmt.Errorf("step parameters are not JSON-encodable: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

func (rn *runner) runStep(ctx context.Context, b *recipes.Block, s *recipes.Step, after map[string]*recipes.Result) (*recipes.Result, error) {
	name := b.Addr() + ":" + s.ID
	var probe string
	if s.Probe != nil {
		p, err := s.Probe(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			rn.addReport(StepReport{Block: b.Addr(), Step: s.ID, Kind: s.Kind, Status: StatusFailed, Reason: err.Error()})
			rn.opts.Observer.Event(Event{Step: name, State: StateFailed, Err: err})
			return nil, err
		}
		probe = p
	}
	key, err := StepKey(s, rn.recipe.Epoch, after, probe)
	if err != nil {
		return nil, err
	}
	rn.recordReads(key, s, after)
	if res, ok := rn.opts.Cache.Lookup(key); ok {
		rn.addReport(StepReport{Block: b.Addr(), Step: s.ID, Kind: s.Kind, Key: key, Status: StatusCached, Reason: "result in cache"})
		rn.opts.Observer.Event(Event{Step: name, State: StateCached})
		rn.push(res, "")
		return res, nil
	}
	if rn.opts.DryRun && rn.opts.Remote != nil {
		if ref := rn.opts.Remote.Has(ctx, key); ref != "" {
			rn.addReport(StepReport{Block: b.Addr(), Step: s.ID, Kind: s.Kind, Key: key, Status: StatusPull, Remote: ref,
				Reason: "no local result; the remote cache " + ref + " holds one (a build pulls and checks it)"})
			return nil, nil
		}
	}
	if rn.opts.DryRun {
		rn.addReport(StepReport{Block: b.Addr(), Step: s.ID, Kind: s.Kind, Key: key, Status: StatusRun, Reason: "no cached result for this key"})
		return nil, nil
	}
	unlock, err := rn.opts.Cache.LockStep(ctx, key, func() { rn.opts.Observer.Event(Event{Step: name, State: StateWaiting}) })
	if err != nil {
		return nil, err
	}
	defer unlock()
	if res, ok := rn.opts.Cache.Lookup(key); ok {
		rn.addReport(StepReport{Block: b.Addr(), Step: s.ID, Kind: s.Kind, Key: key, Status: StatusCached, Reason: "built meanwhile by another cocobuild sharing the cache"})
		rn.opts.Observer.Event(Event{Step: name, State: StateCached})
		rn.push(res, "")
		return res, nil
	}
	// Missing locally: a remote cache may hold it. What is pulled enters
	// the cache only once every byte is checked against its record.
	if rm := rn.opts.Remote; rm != nil && len(rm.From) > 0 {
		if ref := rm.Pull(ctx, rn.opts.Cache, key); ref != "" {
			if res, ok := rn.opts.Cache.Lookup(key); ok {
				rn.addReport(StepReport{Block: b.Addr(), Step: s.ID, Kind: s.Kind, Key: key, Status: StatusCached, Remote: ref,
					Reason: "pulled from the remote cache " + ref})
				rn.opts.Observer.Event(Event{Step: name, State: StateCached})
				rn.push(res, ref)
				return res, nil
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	// The step reads the files of the results it comes after and its
	// inputs: check them against their records before it builds on them.
	if err := verifyUsed(s, after); err != nil {
		rn.addReport(StepReport{Block: b.Addr(), Step: s.ID, Kind: s.Kind, Key: key, Status: StatusCancelled, Reason: "not run: " + err.Error()})
		rn.opts.Observer.Event(Event{Step: name, State: StateCancelled})
		return nil, err
	}
	rn.addReport(StepReport{Block: b.Addr(), Step: s.ID, Kind: s.Kind, Key: key, Status: StatusRun, Reason: "no cached result for this key"})
	select {
	case rn.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-rn.sem }()
	rn.opts.Observer.Event(Event{Step: name, State: StateRunning})
	res, err := rn.execute(ctx, name, key, s, after)
	if err != nil {
		if ctx.Err() != nil {
			// Stopped: another step failed, or the build was interrupted.
			rn.setStatus(b.Addr(), s.ID, StatusCancelled, "stopped: "+firstLine(context.Cause(ctx).Error()))
			rn.opts.Observer.Event(Event{Step: name, State: StateCancelled})
			return nil, ctx.Err()
		}
		rn.setStatus(b.Addr(), s.ID, StatusFailed, err.Error())
		rn.opts.Observer.Event(Event{Step: name, State: StateFailed, Err: err})
		return nil, err
	}
	rn.opts.Observer.Event(Event{Step: name, State: StateDone})
	rn.push(res, "")
	return res, nil
}

// push sends a step's result to the remote caches of --cache-to that do
// not hold it (never in a plan).
func (rn *runner) push(res *recipes.Result, pulledFrom string) {
	if rn.opts.Remote != nil && !rn.opts.DryRun {
		rn.opts.Remote.Push(rn.pushCtx, res, pulledFrom)
	}
}

func (rn *runner) execute(ctx context.Context, name, key string, s *recipes.Step, after map[string]*recipes.Result) (*recipes.Result, error) {
	work, err := rn.opts.Cache.TempDir(key[:12])
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(work)
		}
	}()
	files := filepath.Join(work, "files")
	if err := os.Mkdir(files, 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(work, "log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	sc := &recipes.StepContext{
		OutDir: files,
		After:  after,
		Epoch:  rn.recipe.Epoch,
		Log:    logf,
		Meta:   map[string]any{},
		Progress: func(done, total int64) {
			rn.opts.Observer.Event(Event{Step: name, State: StateRunning, Done: done, Total: total})
		},
		Stage: func(stage, unit string) {
			rn.opts.Observer.Event(Event{Step: name, State: StateRunning, Stage: stage, Unit: unit})
		},
	}
	if err := s.Run(ctx, sc); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if err := logf.Close(); err != nil {
		return nil, err
	}
	res, err := rn.opts.Cache.Store(key, work, sc.Meta)
	if err != nil {
		return nil, err
	}
	ok = true
	return res, nil
}

// recordReads notes the cache entries whose files the step of key reads.
func (rn *runner) recordReads(key string, s *recipes.Step, after map[string]*recipes.Result) {
	var keys []string
	for _, id := range s.After {
		if r := after[id]; r != nil && r.Key != "" {
			keys = append(keys, r.Key)
		}
	}
	for _, in := range s.Inputs {
		if k, ok := rn.opts.Cache.EntryOf(in.Path); ok {
			keys = append(keys, k)
		}
	}
	rn.mu.Lock()
	rn.reads[key] = keys
	rn.mu.Unlock()
}

// builtFrom returns the keys of the steps of the report that read the
// entry of key, directly or through other steps, sorted.
func (r *Report) builtFrom(key string) []string {
	seen := map[string]bool{key: true}
	for changed := true; changed; {
		changed = false
		for k, reads := range r.reads {
			if seen[k] {
				continue
			}
			for _, rk := range reads {
				if seen[rk] {
					seen[k], changed = true, true
					break
				}
			}
		}
	}
	delete(seen, key)
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// firstLine is s up to its first line break.
func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func asRecipeError(err error, re **RecipeError) bool { return errors.As(err, re) }
