package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// measuredReportEnv makes the test binary a launcher (see init): it runs
// itself as cocobuild, passes the streams through, and writes the child's
// exit code, wall time and peak RSS to the file the variable names. The
// Rusage of a child of the test process itself would not do: Go starts
// children with vfork, and Linux counts what the child shares before exec
// in its ru_maxrss, so the figure starts at the test process's own peak.
// The launcher is a fresh, small process.
const measuredReportEnv = "COCOBUILD_TEST_MEASURED_REPORT"

func init() {
	report := os.Getenv(measuredReportEnv)
	if report == "" {
		return
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, measuredReportEnv+"=") {
			env = append(env, kv)
		}
	}
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(env, "COCOBUILD_TEST_MAIN=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	err := cmd.Run()
	if cmd.ProcessState == nil {
		fmt.Fprintln(os.Stderr, "launcher:", err)
		os.Exit(3)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	rep := fmt.Sprintf("%d %d %d %d\n", cmd.ProcessState.ExitCode(), time.Since(start).Nanoseconds(), cpu.Nanoseconds(), ru.Maxrss)
	if err := os.WriteFile(report, []byte(rep), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "launcher:", err)
		os.Exit(3)
	}
	os.Exit(cmd.ProcessState.ExitCode())
}

// measuredRun is a run of the CLI as a process of its own, with its wall
// time, CPU time (user and system) and peak RSS.
type measuredRun struct {
	code           int
	stdout, stderr string
	wall, cpu      time.Duration
	maxRSSKiB      int64
}

// fast says the run took under limit of CPU time and, however loaded the
// machine, under five times limit of wall time (a process that blocks
// uses no CPU): what "finishes in under limit" can assert on a shared
// machine, where wall time alone depends on everything else running.
func (r measuredRun) fast(limit time.Duration) bool {
	return r.cpu < limit && r.wall < 5*limit
}

// maxRSSMB is the peak RSS in MB (MiB).
func (r measuredRun) maxRSSMB() int64 { return r.maxRSSKiB / 1024 }

// runMeasured runs cocobuild args as a process of its own (this test
// binary as cocobuild, through the launcher of measuredReportEnv), killed
// with the launcher after 60 s, and returns what it did.
func runMeasured(t *testing.T, args ...string) measuredRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	report := filepath.Join(t.TempDir(), "report")
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), measuredReportEnv+"="+report)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the launcher and cocobuild
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := measuredRun{stdout: out.String(), stderr: errb.String(), wall: time.Since(start)}
	if ctx.Err() != nil {
		t.Fatalf("cocobuild %v: killed after %v\n%s", args, r.wall, r.stderr)
	}
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("cocobuild %v: no launcher report (%v)\n%s", args, err, r.stderr)
	}
	var wall, cpu int64
	if _, err := fmt.Sscan(string(b), &r.code, &wall, &cpu, &r.maxRSSKiB); err != nil {
		t.Fatalf("launcher report %q: %v", b, err)
	}
	r.wall, r.cpu = time.Duration(wall), time.Duration(cpu)
	t.Logf("cocobuild %s: exit %d, %v (%v CPU), %d MB peak RSS", strings.Join(args, " "), r.code, r.wall.Round(time.Millisecond), r.cpu.Round(time.Millisecond), r.maxRSSMB())
	return r
}
