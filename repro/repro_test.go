package repro

import (
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRunBuildInterrupts: cancelling a repro build interrupts the child (so
// that cocobuild stops its steps and their process groups itself) rather
// than killing it, and the child is gone within 5 s.
func TestRunBuildInterrupts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var log strings.Builder
	done := make(chan error, 1)
	script := `trap 'echo interrupted; exit 3' INT; echo ready; while :; do sleep 0.05; done`
	go func() {
		done <- runBuild(ctx, "/bin/sh", []string{"-c", script}, t.TempDir(), os.Environ(), "", nil, &syncWriter{w: &log})
	}()
	time.Sleep(300 * time.Millisecond) // let the shell set its trap
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("runBuild returned no error after cancellation")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the child was still running 10s after cancellation")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the child took %v to stop, want at most 5s", d)
	}
	if !strings.Contains(log.String(), "interrupted") {
		t.Errorf("the child did not get SIGINT; its output: %q", log.String())
	}
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
