package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/builder"
)

// TestProgressLog checks what a CI log (no terminal) shows of a build: a
// line when a step starts, one per stage, a status line per running step
// at each tick (elapsed, stage, how far), and how each step ended.
func TestProgressLog(t *testing.T) {
	var out syncBuffer
	p := startProgress(&out, false, false, time.Hour)
	clock := time.Unix(1000, 0)
	p.now = func() time.Time { return clock }
	const k, b, d = "kernel.guest:build", "initramfs.agent:busybox", "input.ovmf:fetch"
	p.Event(builder.Event{Step: k, State: builder.StateRunning})
	p.Event(builder.Event{Step: b, State: builder.StateRunning})
	p.Event(builder.Event{Step: d, State: builder.StateRunning, Done: 1 << 20, Total: 4 << 20})
	clock = clock.Add(5 * time.Second)
	p.Event(builder.Event{Step: k, State: builder.StateRunning, Stage: "build 6.12.117", Unit: "Kbuild commands"})
	p.Event(builder.Event{Step: k, State: builder.StateRunning, Done: 2315})
	clock = clock.Add(2 * time.Minute)
	p.tick()
	p.Event(builder.Event{Step: b, State: builder.StateFailed, Err: errors.New("no Go toolchain\nmore detail")})
	p.Event(builder.Event{Step: k, State: builder.StateCancelled})
	p.Event(builder.Event{Step: d, State: builder.StateDone})
	p.Close()
	want := []string{
		"running kernel.guest:build",
		"running initramfs.agent:busybox",
		"running input.ovmf:fetch",
		"  kernel.guest:build: build 6.12.117 (at 5s)",
		"  initramfs.agent:busybox: still running, 2m5s",
		"  input.ovmf:fetch: still running, 2m5s, 1.0M/4.0M (25%)",
		"  kernel.guest:build: still running, 2m5s, stage build 6.12.117, 2315 Kbuild commands",
		"FAILED initramfs.agent:busybox (2m5s): no Go toolchain",
		"cancelled kernel.guest:build (2m5s)",
		"built  input.ovmf:fetch (2m5s)",
	}
	if d := cmp.Diff(want, strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")); d != "" {
		t.Errorf("log lines (-want +got):\n%s", d)
	}
}

// TestProgressTicks checks that the status lines come by themselves, with
// no event, at the interval.
func TestProgressTicks(t *testing.T) {
	var out syncBuffer
	p := startProgress(&out, false, false, 20*time.Millisecond)
	defer p.Close()
	p.Event(builder.Event{Step: "kernel.guest:build", State: builder.StateRunning})
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(out.String(), "still running") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no periodic status lines within 5s; the log is:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestProgressQuiet: --json mode prints nothing, ticks included.
func TestProgressQuiet(t *testing.T) {
	var out syncBuffer
	p := startProgress(&out, false, true, time.Millisecond)
	p.Event(builder.Event{Step: "kernel.guest:build", State: builder.StateRunning})
	time.Sleep(20 * time.Millisecond)
	p.Event(builder.Event{Step: "kernel.guest:build", State: builder.StateFailed, Err: errors.New("x")})
	p.Close()
	if got := out.String(); got != "" {
		t.Errorf("--json progress printed %q, want nothing", got)
	}
}
