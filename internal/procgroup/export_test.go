package procgroup

import (
	"context"
	"os/exec"
	"syscall"
)

func plainCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, name, args...)
}

func killPID(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }
