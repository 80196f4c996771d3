package launch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/cocobuild/cocobuild/internal/procgroup"
)

// KVMAvailable says whether this host can run KVM guests (/dev/kvm opens
// for reading and writing).
func KVMAvailable() bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// RunOptions control a launch's run.
type RunOptions struct {
	// Console receives QEMU's output (the guest's serial console and QEMU's
	// messages) as it comes, carriage returns removed; nil discards it.
	Console io.Writer
	// Expect, when set, ends the run with success as soon as a console line
	// matches it (QEMU is killed). Lines are matched without terminal
	// control sequences; the last one also without its newline.
	Expect *regexp.Regexp
	// Timeout ends the run (QEMU is killed) when it is reached; 0: none.
	Timeout time.Duration
	// Env is added to QEMU's environment.
	Env []string
	// KVM ends the run as soon as QEMU reports that KVM failed ("KVM
	// internal error": the guest is stopped and would never go on), with
	// Result.KVMError set.
	KVM bool
}

// Result is how a run ended.
type Result struct {
	// Matched is the console line that matched Expect ("" when none did).
	Matched string `json:"matched,omitempty"`
	// TimedOut says the timeout ended the run.
	TimedOut bool `json:"timed_out"`
	// ExitCode is QEMU's exit status; -1 when it was killed.
	ExitCode int `json:"exit_code"`
	// Duration is how long QEMU ran, in seconds.
	Duration float64 `json:"seconds"`
	// Tail is the end of the console (up to 4 KiB), for reports.
	Tail string `json:"console_tail"`
	// KVMError is QEMU's report that KVM could not run the guest (e.g.
	// "KVM internal error. Suberror: 1", an emulation failure under nested
	// virtualization); the run was ended at once.
	KVMError string `json:"kvm_error,omitempty"`
}

// OK says the run did what was asked: the expected line appeared, or,
// without Expect, QEMU exited with status 0.
func (r *Result) OK(expect bool) bool {
	if expect {
		return r.Matched != ""
	}
	return !r.TimedOut && r.ExitCode == 0
}

// Run starts QEMU with the plan's argv in its own process group and
// watches its console. It returns when QEMU exits, when a line matches
// Expect, when the timeout passes or when ctx is cancelled (Ctrl-C); in all
// but the first case it kills QEMU's process group and waits for it. The
// error is for a QEMU that could not start or a cancelled ctx.
func Run(ctx context.Context, p *Plan, o RunOptions) (*Result, error) {
	if len(p.Argv) == 0 {
		return nil, errors.New("empty command line")
	}
	if _, err := exec.LookPath(p.Argv[0]); err != nil {
		return nil, fmt.Errorf("%s not found: install QEMU (Debian: apt-get install qemu-system-x86): %w", p.Argv[0], err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var timedOut atomic.Bool
	if o.Timeout > 0 {
		t := time.AfterFunc(o.Timeout, func() { timedOut.Store(true); cancel() })
		defer t.Stop()
	}
	// QEMU and anything it starts form a process group, killed whole.
	cmd := procgroup.Command(runCtx, p.Argv[0], p.Argv[1:]...)
	cmd.Env = append(cmd.Env, o.Env...) // procgroup.Command: childenv.Environ(runCtx)
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = pw, pw // stdin stays /dev/null: QEMU must not read the terminal
	start := time.Now()
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("starting %s: %w", p.Argv[0], err)
	}
	pw.Close()
	w := &watcher{out: o.Console, expect: o.Expect, onMatch: cancel, kvm: o.KVM}
	copyDone := make(chan struct{})
	go func() {
		io.Copy(w, pr)
		w.flush()
		close(copyDone)
	}()
	werr := cmd.Wait()
	// QEMU is gone; children that kept the pipe open were killed with the
	// group, or WaitDelay closed it.
	pr.Close()
	<-copyDone
	res := &Result{Matched: w.matched, TimedOut: timedOut.Load() && w.matched == "", ExitCode: cmd.ProcessState.ExitCode(),
		Duration: time.Since(start).Seconds(), Tail: w.tail(), KVMError: w.kvmError}
	if w.matched == "" && !timedOut.Load() && ctx.Err() != nil {
		return res, ctx.Err()
	}
	var ee *exec.ExitError
	if werr != nil && !errors.As(werr, &ee) && !errors.Is(werr, exec.ErrWaitDelay) {
		return res, werr
	}
	return res, nil
}

// watcher streams the console, keeps its tail and matches lines.
type watcher struct {
	out     io.Writer
	expect  *regexp.Regexp
	onMatch func()
	line    []byte
	last    []byte
	matched string
	// kvm: watch for QEMU's "KVM internal error" (kvmError), which ends
	// the run through onMatch.
	kvm      bool
	kvmError string
}

const tailSize = 4096

func (w *watcher) Write(b []byte) (int, error) {
	clean := bytes.ReplaceAll(b, []byte("\r"), nil)
	if w.out != nil {
		w.out.Write(clean)
	}
	w.last = append(w.last, clean...)
	if len(w.last) > 2*tailSize {
		w.last = append([]byte(nil), w.last[len(w.last)-tailSize:]...)
	}
	for _, c := range clean {
		if c == '\n' {
			w.check()
			w.line = w.line[:0]
			continue
		}
		w.line = append(w.line, c)
	}
	return len(b), nil
}

// ansiCSI matches terminal control sequences (the firmware clears the
// screen), which lines are matched without.
var ansiCSI = regexp.MustCompile(`\x1b\[[0-9;=?]*[A-Za-z]`)

func (w *watcher) check() {
	line := ansiCSI.ReplaceAll(w.line, nil)
	if w.kvm && w.kvmError == "" && w.matched == "" && bytes.HasPrefix(line, []byte("KVM internal error")) {
		w.kvmError = string(line)
		w.onMatch()
		return
	}
	if w.expect == nil || w.matched != "" || w.kvmError != "" {
		return
	}
	if w.expect.Match(line) {
		w.matched = string(line)
		w.onMatch()
	}
}

func (w *watcher) flush() {
	if len(w.line) > 0 {
		w.check()
	}
}

func (w *watcher) tail() string {
	if len(w.last) > tailSize {
		return string(w.last[len(w.last)-tailSize:])
	}
	return string(w.last)
}
