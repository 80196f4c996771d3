package procgroup

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// TestCancelKillsGroup starts a shell that starts two more processes and
// cancels the context: the shell and both of its children must be gone,
// where exec.CommandContext alone kills only the shell.
func TestCancelKillsGroup(t *testing.T) {
	for _, tc := range []struct {
		name      string
		group     bool
		wantAlive int
	}{
		{"procgroup.Command", true, 0},
		{"exec.CommandContext (the control)", false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			marker := fmt.Sprintf("COCOBUILD_PROCGROUP_TEST=%d-%d", os.Getpid(), time.Now().UnixNano())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			script := `sleep 60 & sleep 60 & echo started; wait`
			cmd := Command(ctx, "sh", "-c", script)
			if !tc.group {
				cmd = plainCommand(ctx, "sh", "-c", script)
			}
			cmd.Env = append(os.Environ(), marker)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 8)
			if n, _ := out.Read(buf); !strings.HasPrefix(string(buf[:n]), "started") {
				t.Fatalf("the shell said %q, want started", buf[:n])
			}
			start := time.Now()
			cancel()
			cmd.Wait()
			if d := time.Since(start); d > WaitDelay+time.Second {
				t.Errorf("Wait returned after %v, want at most %v", d, WaitDelay+time.Second)
			}
			var alive []testenv.Process
			for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if alive = testenv.ProcessesWithEnv(marker); len(alive) == tc.wantAlive {
					break
				}
			}
			for _, p := range alive {
				defer func() { _ = killPID(p.PID) }()
			}
			if len(alive) != tc.wantAlive {
				t.Errorf("%d processes left running after cancellation (%v), want %d", len(alive), alive, tc.wantAlive)
			}
		})
	}
}
