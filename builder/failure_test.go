package builder

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

// stepEvents records what an Observer hears, by step.
type stepEvents struct {
	mu     sync.Mutex
	states map[string][]State
	errs   map[string]error
}

func (e *stepEvents) Event(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ev.State == StateRunning && ev.Stage == "" && len(e.states[ev.Step]) > 0 {
		return // progress of a running step
	}
	e.states[ev.Step] = append(e.states[ev.Step], ev.State)
	if ev.Err != nil {
		e.errs[ev.Step] = ev.Err
	}
}

// TestFailedAndCancelledSteps runs two downloads at once: one fails while
// the other is in the middle of its transfer. The failing step must be the
// one reported as failed, with its reason; the other one is cancelled, not
// failed, and the report returned with the error says both.
func TestFailedAndCancelledSteps(t *testing.T) {
	slowStarted := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			w.Header().Set("Content-Length", "1000000")
			w.Write(make([]byte, 1000))
			w.(http.Flusher).Flush()
			close(slowStarted)
			<-r.Context().Done() // until the client gives up
		case "/broken":
			<-slowStarted
			http.Error(w, "gone", http.StatusNotFound)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	testenv.WriteKernelRecipe(t, dir, fmt.Sprintf(`
input "slow" {
  url    = %q
  sha256 = %q
}

input "broken" {
  url    = %q
  sha256 = %q
}
`, srv.URL+"/slow", strings.Repeat("11", 32), srv.URL+"/broken", strings.Repeat("22", 32)))
	obs := &stepEvents{states: map[string][]State{}, errs: map[string]error{}}
	res, err := load(t, dir, t.TempDir(), testOptions{}).Build(context.Background(), filepath.Join(dir, "out"), 4, obs)
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "input.broken") {
		t.Fatalf("error %v, want the 404 of input.broken", err)
	}
	if res == nil || res.Report == nil {
		t.Fatalf("Build returned no report with its error")
	}
	got := map[string]StepStatus{}
	for _, s := range res.Report.Steps {
		if s.Block == "input.slow" || s.Block == "input.broken" {
			got[s.Block+":"+s.Step] = s.Status
		}
	}
	want := map[string]StepStatus{"input.broken:fetch": StatusFailed, "input.slow:fetch": StatusCancelled}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("report statuses (-want +got):\n%s", d)
	}
	for _, s := range res.Report.Steps {
		if s.Status == StatusFailed && !strings.Contains(s.Reason, "404") {
			t.Errorf("failed step %s:%s has reason %q, want the 404", s.Block, s.Step, s.Reason)
		}
		if s.Status == StatusCancelled && !strings.Contains(s.Reason, "input.broken") {
			t.Errorf("cancelled step %s:%s has reason %q, want it to name the step that failed", s.Block, s.Step, s.Reason)
		}
	}
	wantEvents := map[string][]State{
		"input.broken:fetch": {StateRunning, StateFailed},
		"input.slow:fetch":   {StateRunning, StateCancelled},
	}
	gotEvents := map[string][]State{}
	for k, v := range obs.states {
		if k == "input.broken:fetch" || k == "input.slow:fetch" {
			gotEvents[k] = v
		}
	}
	if d := cmp.Diff(wantEvents, gotEvents); d != "" {
		t.Errorf("stepEvents (-want +got):\n%s", d)
	}
	if e := obs.errs["input.broken:fetch"]; e == nil || !strings.Contains(e.Error(), "404") {
		t.Errorf("the failed event carries %v, want the 404", e)
	}
}
