// Package procgroup runs external commands that start commands of their own
// (make, the go command, apt-get, cocobuild itself) so that cancelling the
// context stops all of them: each such command leads a process group of its
// own, and cancellation kills the whole group, not only its leader.
package procgroup

import (
	"context"
	"os/exec"
	"syscall"
	"time"

	"github.com/cocobuild/cocobuild/internal/childenv"
)

// WaitDelay bounds how long Wait waits, after the group was killed, for
// output that a surviving grandchild still holds open.
const WaitDelay = 5 * time.Second

// Command is exec.CommandContext for a command that starts others. The
// command leads a new process group; when ctx is done, every process of the
// group gets SIGKILL. The leader also gets SIGKILL when the thread that
// started it dies, so a cocobuild that is killed leaves no leader behind.
// Its environment is childenv.Environ(ctx): no secrets; callers that add
// variables append them to cmd.Env.
func Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = childenv.Environ(ctx)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		// The leader's pid is the group's id; the negative pid names the group.
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
			return cmd.Process.Kill()
		}
		return nil
	}
	cmd.WaitDelay = WaitDelay
	return cmd
}
