package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// makeBuild builds cocobuild exactly as the README's commands do: `make
// build` (CGO_ENABLED=0, -trimpath, so runtime.GOROOT() is empty).
func makeBuild(t *testing.T) string {
	t.Helper()
	testenv.Tool(t, "make", "make")
	bin := filepath.Join(t.TempDir(), "cocobuild")
	cmd := exec.Command("make", "-C", testenv.ModuleRoot(t), "build", "BIN="+bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	return bin
}

// busyboxRecipe writes a recipe whose only step of weight is the u-root
// busybox, resolved in cocobuild's own module.
func busyboxRecipe(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	recipe := fmt.Sprintf(`recipe {
  name = "bb"
}

initramfs "bb" {
  go_module = %q
  uroot {
    commands = ["core/init", "core/gosh", "core/ls"]
  }
}
`, testenv.ModuleRoot(t))
	if err := os.WriteFile(filepath.Join(dir, "bb.hcl"), []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// cleanEnv is the environment without GOROOT, as a user's shell has it.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOROOT=") && !strings.HasPrefix(kv, "COCOBUILD_TEST_MAIN=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// TestMakefileBinary runs the binary that `make build` makes: it finds the
// Go toolchain for the u-root busybox (issue: a -trimpath binary looked for
// "bin/go"), and SIGINT in the middle of the busybox build stops the build,
// every go command and compiler it started, within 5 s, leaving nothing in
// the cache.
func TestMakefileBinary(t *testing.T) {
	bin := makeBuild(t)
	recipe := busyboxRecipe(t)

	t.Run("builds the busybox", func(t *testing.T) {
		cache := t.TempDir()
		cmd := exec.Command(bin, "build", "--cache-dir", cache, "-o", filepath.Join(t.TempDir(), "out"), recipe)
		cmd.Env = cleanEnv()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s build: %v\n%s", bin, err, out)
		}
		if !strings.Contains(string(out), "built  initramfs.bb:busybox") {
			t.Errorf("output does not say the busybox was built:\n%s", out)
		}
	})

	t.Run("SIGINT mid-busybox", func(t *testing.T) {
		marker := fmt.Sprintf("COCOBUILD_SIGINT_TEST=%d-%d", os.Getpid(), time.Now().UnixNano())
		cache := t.TempDir()
		// A cold Go build cache, so that the busybox build compiles for
		// long enough to be interrupted in the middle.
		cmd := exec.Command(bin, "build", "--cache-dir", cache, "-o", filepath.Join(t.TempDir(), "out"), recipe)
		cmd.Env = cleanEnv(marker, "GOCACHE="+t.TempDir())
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			for _, p := range testenv.ProcessesWithEnv(marker) {
				syscall.Kill(p.PID, syscall.SIGKILL)
			}
		}()
		lines := make(chan string, 100)
		var log strings.Builder
		go func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		deadline := time.After(3 * time.Minute)
		for started := false; !started; {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the build ended before the busybox step started:\n%s", log.String())
				}
				log.WriteString(l + "\n")
				started = l == "running initramfs.bb:busybox"
			case <-deadline:
				t.Fatalf("no 'running initramfs.bb:busybox' line within 3 minutes:\n%s", log.String())
			}
		}
		// Wait until the go command compiles: the middle of the build.
		for compiling := false; !compiling; time.Sleep(50 * time.Millisecond) {
			for _, p := range testenv.ProcessesWithEnv(marker) {
				compiling = compiling || p.Comm == "compile"
			}
			select {
			case <-deadline:
				t.Fatalf("no compiler started within 3 minutes; processes: %v", testenv.ProcessesWithEnv(marker))
			default:
			}
		}
		start := time.Now()
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		for l := range lines {
			log.WriteString(l + "\n")
		}
		err = cmd.Wait()
		took := time.Since(start)
		if took > 5*time.Second {
			t.Errorf("cocobuild exited %v after SIGINT, want within 5s", took.Round(time.Millisecond))
		}
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitFailure {
			t.Errorf("exit: %v, want exit code %d", err, exitFailure)
		}
		for _, want := range []string{"cancelled initramfs.bb:busybox", "build interrupted"} {
			if !strings.Contains(log.String(), want) {
				t.Errorf("stderr does not say %q:\n%s", want, log.String())
			}
		}
		if strings.Contains(log.String(), "FAILED") {
			t.Errorf("an interrupted step is reported as FAILED:\n%s", log.String())
		}
		if left := testenv.ProcessesWithEnv(marker); len(left) > 0 {
			t.Errorf("processes still running after cocobuild exited: %v", left)
		}
		steps, _ := os.ReadDir(filepath.Join(cache, "steps"))
		tmp, _ := os.ReadDir(filepath.Join(cache, "tmp"))
		if len(steps) != 0 || len(tmp) != 0 {
			t.Errorf("the interrupted build left %d step(s) and %d temporary entries in the cache", len(steps), len(tmp))
		}
	})
}
