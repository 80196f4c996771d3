package builder

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/recipes"
)

// slowKind is a test block whose one step sleeps and counts its runs.
type slowKind struct{ runs *atomic.Int32 }

func (slowKind) Type() string            { return "slow" }
func (slowKind) Schema() *hcl.BodySchema { return &hcl.BodySchema{} }
func (slowKind) OutputType() cty.Type    { return cty.EmptyObject }
func (k slowKind) Decode(b *recipes.Block, _ *hcl.EvalContext) (recipes.Node, hcl.Diagnostics) {
	_, diags := b.Body.Content(&hcl.BodySchema{})
	return slowNode{k.runs}, diags
}

type slowNode struct{ runs *atomic.Int32 }

func (n slowNode) Steps() []*recipes.Step {
	return []*recipes.Step{{ID: "sleep", Kind: "test/slow", Version: "1", Run: func(ctx context.Context, sc *recipes.StepContext) error {
		n.runs.Add(1)
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		return os.WriteFile(filepath.Join(sc.OutDir, "f"), []byte("slow"), 0o644)
	}}}
}

func (n slowNode) Finish(results map[string]*recipes.Result) (*recipes.Output, error) {
	f, err := results["sleep"].File("f")
	if err != nil {
		return nil, err
	}
	return &recipes.Output{Value: cty.EmptyObjectVal, Artifacts: []recipes.OutputArtifact{{Name: "slow.x", Kind: "test", Path: "slow/f", File: f}}}, nil
}

type events struct {
	mu    sync.Mutex
	state []State
}

func (e *events) Event(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ev.Step == "slow.x:sleep" {
		e.state = append(e.state, ev.State)
	}
}

// TestSharedCacheRunsStepOnce starts two builds of the same recipe with one
// cache at once (as two processes would, each with its own Cache): the
// step runs once; the other build waits, says so, and takes the result.
func TestSharedCacheRunsStepOnce(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	testenv.WriteKernelRecipe(t, dir, "slow \"x\" {}\n")
	var runs atomic.Int32
	var wg sync.WaitGroup
	obs := [2]*events{{}, {}}
	reports := [2]*BuildResult{}
	for i := range 2 {
		l := load(t, dir, cache, testOptions{ExtraKinds: []recipes.Kind{slowKind{&runs}}})
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := l.Build(t.Context(), filepath.Join(t.TempDir(), "out"), 2, obs[i])
			if err != nil {
				t.Errorf("build %d: %v", i, err)
			}
			reports[i] = res
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if got := runs.Load(); got != 1 {
		t.Errorf("the slow step ran %d times, want 1", got)
	}
	waited := 0
	for i, o := range obs {
		for _, s := range o.state {
			if s == StateWaiting {
				waited++
			}
		}
		for _, s := range reports[i].Report.Steps {
			if s.Block == "slow.x" && s.Status == StatusCached && s.Reason != "built meanwhile by another cocobuild sharing the cache" {
				t.Errorf("build %d: reason %q for the step the other build ran", i, s.Reason)
			}
		}
	}
	if waited != 1 {
		t.Errorf("%d waiting events, want 1", waited)
	}
}

// TestLockStepCancel: a build waiting for another's lock stops when its
// context ends.
func TestLockStepCancel(t *testing.T) {
	c, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := c.LockStep(t.Context(), "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.LockStep(ctx, "k", nil); err != context.DeadlineExceeded {
		t.Errorf("LockStep while locked: %v, want %v", err, context.DeadlineExceeded)
	}
}

// TestImport copies a step's entry between caches: the other cache then
// has it, with the same files.
func TestImport(t *testing.T) {
	dir := t.TempDir()
	testenv.WriteKernelRecipe(t, dir, "")
	cacheA, cacheB := t.TempDir(), t.TempDir()
	res, err := load(t, dir, cacheA, testOptions{}).Build(t.Context(), filepath.Join(t.TempDir(), "out"), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := OpenCache(cacheA)
	b, _ := OpenCache(cacheB)
	for _, s := range res.Report.Steps {
		if err := b.Import(a, s.Key); err != nil {
			t.Fatal(err)
		}
		ra, _ := a.Lookup(s.Key)
		rb, ok := b.Lookup(s.Key)
		if !ok || len(rb.Files) != len(ra.Files) {
			t.Fatalf("after Import, %s: found %v", s.Key, ok)
		}
	}
	res, err = load(t, dir, cacheB, testOptions{}).Build(t.Context(), filepath.Join(t.TempDir(), "out"), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Report.Steps {
		if s.Status != StatusCached {
			t.Errorf("%s:%s %s in the importing cache, want cached", s.Block, s.Step, s.Status)
		}
	}
	if err := b.Import(a, "0000"); err == nil {
		t.Error("Import of a key the source lacks: no error")
	}
}
