package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/cocobuild/cocobuild/builder"
)

// progress renders build events. On a terminal: one live line per running
// step (elapsed time, stage, a bar when the step reports its size), redrawn
// every second. Elsewhere (a CI log): a line when a step starts, enters a
// stage and ends, and a line per running step every minute, so that a long
// kernel build never looks hung. Nothing in --json mode.
type progress struct {
	w     io.Writer
	tty   bool
	quiet bool
	now   func() time.Time
	// every is how often a log line is printed for each running step when
	// there is no terminal.
	every  time.Duration
	mu     sync.Mutex
	steps  map[string]*stepLine
	drawn  int // lines of the live area on screen
	last   time.Time
	closed bool
	stop   chan struct{}
	wg     sync.WaitGroup
}

type stepLine struct {
	start       time.Time
	stage, unit string
	done, total int64
}

func newProgress(a *app) *progress {
	tty := false
	if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		tty = true
	}
	return startProgress(a.stderr, tty, a.json, time.Minute)
}

// startProgress starts a progress renderer writing to w; every is the
// interval of the status lines without a terminal.
func startProgress(w io.Writer, tty, quiet bool, every time.Duration) *progress {
	p := &progress{w: w, tty: tty, quiet: quiet, now: time.Now, every: every,
		steps: map[string]*stepLine{}, stop: make(chan struct{})}
	if quiet {
		return p
	}
	interval := every
	if tty {
		interval = time.Second // keep the elapsed times moving
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.tick()
			}
		}
	}()
	return p
}

// tick redraws the live area, or logs a status line per running step.
func (p *progress) tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	if p.tty {
		p.draw()
		return
	}
	for _, n := range p.running() {
		fmt.Fprintf(p.w, "  %s: still running, %s\n", n, p.status(p.steps[n]))
	}
}

// Event implements builder.Observer.
func (p *progress) Event(e builder.Event) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	switch e.State {
	case builder.StateRunning:
		s, ok := p.steps[e.Step]
		if !ok {
			s = &stepLine{start: p.now()}
			p.steps[e.Step] = s
			if !p.tty {
				fmt.Fprintf(p.w, "running %s\n", e.Step)
			}
		}
		if e.Stage != "" {
			s.stage, s.unit, s.done, s.total = e.Stage, e.Unit, 0, 0
			if !p.tty {
				fmt.Fprintf(p.w, "  %s: %s (at %s)\n", e.Step, e.Stage, p.elapsed(s))
			}
		} else {
			s.done, s.total = e.Done, e.Total
		}
		if !p.tty || (ok && e.Stage == "" && p.now().Sub(p.last) < 100*time.Millisecond) {
			return
		}
	case builder.StateWaiting:
		p.clear()
		fmt.Fprintf(p.w, "waiting %s (another cocobuild builds it into the same cache)\n", e.Step)
	case builder.StateDone, builder.StateFailed, builder.StateCancelled:
		s := p.steps[e.Step]
		delete(p.steps, e.Step)
		p.clear()
		d := "0s"
		if s != nil {
			d = p.elapsed(s)
		}
		switch e.State {
		case builder.StateDone:
			fmt.Fprintf(p.w, "built  %s (%s)\n", e.Step, d)
		case builder.StateCancelled:
			fmt.Fprintf(p.w, "cancelled %s (%s)\n", e.Step, d)
		default:
			reason := ""
			if e.Err != nil {
				reason = ": " + firstLine(e.Err.Error())
			}
			fmt.Fprintf(p.w, "FAILED %s (%s)%s\n", e.Step, d, reason)
		}
	default:
		return
	}
	p.draw()
}

// running lists the running steps in order.
func (p *progress) running() []string {
	names := make([]string, 0, len(p.steps))
	for n := range p.steps {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (p *progress) elapsed(s *stepLine) string {
	d := p.now().Sub(s.start)
	if d >= time.Minute {
		return d.Round(time.Second).String()
	}
	return d.Round(10 * time.Millisecond).String()
}

// status is what a log line says of a running step: elapsed time, stage,
// and how far it got.
func (p *progress) status(s *stepLine) string {
	parts := []string{p.elapsed(s)}
	if s.stage != "" {
		parts = append(parts, "stage "+s.stage)
	}
	if c := s.count(); c != "" {
		parts = append(parts, c)
	}
	return strings.Join(parts, ", ")
}

// count says how far a step got: "1.2M/8.0M (15%)" for bytes, "2315 Kbuild
// commands" for a counted unit, "" when it reported nothing.
func (s *stepLine) count() string {
	switch {
	case s.unit != "" && s.total > 0:
		return fmt.Sprintf("%d/%d %s", s.done, s.total, s.unit)
	case s.unit != "" && s.done > 0:
		return fmt.Sprintf("%d %s", s.done, s.unit)
	case s.total > 0:
		return fmt.Sprintf("%s/%s (%.0f%%)", human(s.done), human(s.total), 100*min(1, float64(s.done)/float64(s.total)))
	case s.done > 0:
		return human(s.done)
	}
	return ""
}

func (p *progress) clear() {
	if !p.tty || p.drawn == 0 {
		return
	}
	fmt.Fprintf(p.w, "\x1b[%dA\x1b[J", p.drawn)
	p.drawn = 0
}

func (p *progress) draw() {
	if !p.tty {
		return
	}
	p.clear()
	names := p.running()
	for _, n := range names {
		s := p.steps[n]
		line := fmt.Sprintf("  %-36s %6.1fs", n, p.now().Sub(s.start).Seconds())
		if s.stage != "" {
			line += "  " + s.stage
		}
		if s.unit == "" && s.total > 0 {
			frac := min(1, float64(s.done)/float64(s.total))
			const width = 24
			fill := int(frac * width)
			line += fmt.Sprintf("  [%s%s] %3.0f%% %s/%s", strings.Repeat("#", fill), strings.Repeat(" ", width-fill),
				frac*100, human(s.done), human(s.total))
		} else if c := s.count(); c != "" {
			line += "  " + c
		}
		fmt.Fprintln(p.w, line)
	}
	p.drawn = len(names)
	p.last = p.now()
}

// Close removes the live area and stops the ticker.
func (p *progress) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.clear()
	p.closed = true
	close(p.stop)
	p.mu.Unlock()
	p.wg.Wait()
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
