package testenv

import (
	"syscall"
	"testing"
	"time"
)

// Fast runs f and fails the test unless it used less than limit of CPU
// time (user and system, of the whole test process) and less than five
// times limit of wall time: what "finishes in under limit" can assert on a
// shared, loaded machine, where the wall time of work that does not block
// depends on everything else running, while a reader that hangs or spins
// still fails. It returns f's wall time. Tests that call it must not run
// in parallel with others (the CPU time is the process's).
func Fast(t testing.TB, limit time.Duration, f func()) time.Duration {
	t.Helper()
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	c0, start := cpu(), time.Now()
	f()
	wall, used := time.Since(start), cpu()-c0
	if used >= limit || wall >= 5*limit {
		t.Errorf("took %v of CPU time and %v of wall time, want < %v and < %v", used.Round(time.Millisecond), wall.Round(time.Millisecond), limit, 5*limit)
	}
	return wall
}
