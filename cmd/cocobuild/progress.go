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

// progress renders build events: on a terminal, one live line per running
// step with a bar when the step reports its size; elsewhere one line per
// finished step; nothing in --json mode.
type progress struct {
	w      io.Writer
	tty    bool
	quiet  bool
	mu     sync.Mutex
	steps  map[string]*stepLine
	drawn  int // lines of the live area on screen
	last   time.Time
	closed bool
}

type stepLine struct {
	start       time.Time
	done, total int64
}

func newProgress(a *app) *progress {
	p := &progress{w: a.stderr, quiet: a.json, steps: map[string]*stepLine{}}
	if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
	return p
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
			s = &stepLine{start: time.Now()}
			p.steps[e.Step] = s
		}
		s.done, s.total = e.Done, e.Total
		if ok && time.Since(p.last) < 100*time.Millisecond {
			return
		}
	case builder.StateWaiting:
		p.clear()
		fmt.Fprintf(p.w, "waiting %s (another cocobuild builds it into the same cache)\n", e.Step)
	case builder.StateDone, builder.StateFailed:
		s := p.steps[e.Step]
		delete(p.steps, e.Step)
		p.clear()
		verb := "built "
		if e.State == builder.StateFailed {
			verb = "FAILED"
		}
		var d time.Duration
		if s != nil {
			d = time.Since(s.start).Round(10 * time.Millisecond)
		}
		fmt.Fprintf(p.w, "%s %s (%s)\n", verb, e.Step, d)
	default:
		return
	}
	p.draw()
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
	names := make([]string, 0, len(p.steps))
	for n := range p.steps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := p.steps[n]
		line := fmt.Sprintf("  %-36s %6.1fs", n, time.Since(s.start).Seconds())
		if s.total > 0 {
			frac := float64(s.done) / float64(s.total)
			if frac > 1 {
				frac = 1
			}
			const width = 24
			fill := int(frac * width)
			line += fmt.Sprintf("  [%s%s] %3.0f%% %s/%s", strings.Repeat("#", fill), strings.Repeat(" ", width-fill),
				frac*100, human(s.done), human(s.total))
		} else if s.done > 0 {
			line += "  " + human(s.done)
		}
		fmt.Fprintln(p.w, line)
	}
	p.drawn = len(names)
	p.last = time.Now()
}

// Close removes the live area.
func (p *progress) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	p.closed = true
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
