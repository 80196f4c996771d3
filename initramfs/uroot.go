package initramfs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"

	"github.com/u-root/gobusybox/src/pkg/golang"
	"github.com/u-root/mkuimage/uimage"
	"github.com/u-root/uio/llog"

	"github.com/cocobuild/cocobuild/internal/childenv"
	"github.com/cocobuild/cocobuild/internal/procgroup"
)

// The u-root busybox is built by mkuimage, which starts the go command
// without a context: a build running in this process could not be stopped.
// So cocobuild runs it in a child process of its own (this executable again,
// with helperEnv set), leading a process group that is killed, with every
// go command and compiler in it, when the step is cancelled.
const helperEnv = "COCOBUILD_INTERNAL_UROOT_HELPER"

// gobusybox runs `go build -a`, which recompiles every package and never
// takes one from the Go build cache (about 25 s for the sample's busybox
// every time). Its builds are -trimpath and its packages' sources are in
// the cache key, so the cache is safe: mkuimage is given this executable
// as its go command, with goWrapperEnv naming the real one, and
// goWrapperMain runs the real go command without the -a of `go build`.
const goWrapperEnv = "COCOBUILD_INTERNAL_GO_WRAPPER"

// urootRequest is what the child process builds.
type urootRequest struct {
	Dir      string   // the Go module the commands resolve in
	Commands []string // u-root command packages
	Init     string
	Shell    string
	TempDir  string // mkuimage's work directory
	Out      string // the newc archive mkuimage writes
	GoBin    string // the go command, found as gotool.Look finds it
	Compiler string // what mkuimage runs as the go command: GoBin through goWrapperMain
	GOROOT   string // its root, as `go env GOROOT` says
}

func init() {
	// Any binary that links this package (cocobuild, and test binaries)
	// can serve as the child process.
	if os.Getenv(helperEnv) == "1" {
		os.Unsetenv(helperEnv)
		os.Exit(urootHelperMain(os.Stdin, os.Stdout, os.Stderr))
	}
	if goBin := os.Getenv(goWrapperEnv); goBin != "" {
		os.Unsetenv(goWrapperEnv)
		os.Exit(goWrapperMain(goBin, os.Args[1:]))
	}
}

// goWrapperMain runs the go command goBin with args less the -a of a `go
// build`, on this process's standard streams and environment (without the
// signing secrets), and returns the exit status to exit with.
func goWrapperMain(goBin string, args []string) int {
	cmd := exec.Command(goBin, withoutForceRebuild(args)...)
	cmd.Env = childenv.Environ(context.Background())
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode() > 0:
		return ee.ExitCode()
	case err != nil:
		fmt.Fprintf(os.Stderr, "running %s: %v\n", goBin, err)
		return 2
	}
	return 0
}

// withoutForceRebuild drops -a from the flags of a `go build` (those
// before the packages, which gobusybox puts last).
func withoutForceRebuild(args []string) []string {
	if len(args) == 0 || args[0] != "build" {
		return args
	}
	out, rest := []string{args[0]}, args[1:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" || !strings.HasPrefix(a, "-") {
			return append(out, rest[i:]...)
		}
		if a == "-a" {
			continue
		}
		out = append(out, a)
		if takesValue(a) && i+1 < len(rest) {
			i++
			out = append(out, rest[i])
		}
	}
	return out
}

// takesValue says whether a go build flag given without "=" takes the next
// argument as its value (those gobusybox passes).
func takesValue(flag string) bool {
	switch flag {
	case "-o", "-mod", "-installsuffix", "-ldflags", "-gcflags", "-tags", "-asmflags", "-p", "-pkgdir", "-overlay", "-modfile", "-toolexec":
		return true
	}
	return false
}

// urootHelperMain is the child process: it reads a urootRequest from in,
// builds it with mkuimage logging to log, and writes an error to errw.
func urootHelperMain(in io.Reader, log, errw io.Writer) int {
	var req urootRequest
	if err := json.NewDecoder(in).Decode(&req); err != nil {
		fmt.Fprintf(errw, "reading the request: %v\n", err)
		return 2
	}
	if err := runMkuimage(req, log); err != nil {
		fmt.Fprintln(errw, err)
		return 1
	}
	return 0
}

// runMkuimage builds the busybox archive with mkuimage, in this process.
func runMkuimage(req urootRequest, log io.Writer) error {
	env := golang.Default(golang.DisableCGO(), golang.WithGOOS(guestGOOS), golang.WithGOARCH(guestGOARCH),
		golang.WithGO111MODULE("on"), golang.WithWorkingDir(req.Dir),
		golang.WithGOROOT(req.GOROOT), golang.WithCompiler(req.Compiler))
	l := llog.New(slog.LevelInfo, llog.WritePrintf(log))
	return uimage.Create(l,
		uimage.WithReplaceEnv(env),
		uimage.WithBusyboxCommands(req.Commands...),
		uimage.WithTempDir(req.TempDir),
		uimage.WithCPIOOutput(req.Out),
		uimage.WithSkipLDD(),
		uimage.WithInit(req.Init),
		uimage.WithShell(req.Shell),
	)
}

// mkuimage runs runMkuimage in a child process that dies with ctx. The
// child's output goes to log.
func mkuimage(ctx context.Context, req urootRequest, log io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this executable to run the u-root build in: %w", err)
	}
	req.Compiler = exe
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	cmd := procgroup.Command(ctx, exe)
	cmd.Env = append(cmd.Env, helperEnv+"=1", goWrapperEnv+"="+req.GoBin) // procgroup.Command: childenv.Environ(ctx)
	cmd.Stdin = bytes.NewReader(body)
	var errb bytes.Buffer
	cmd.Stdout = log
	cmd.Stderr = io.MultiWriter(log, &errb)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if msg := strings.TrimSpace(errb.String()); msg != "" {
			return fmt.Errorf("%s", msg)
		}
		return fmt.Errorf("the u-root build process: %w", err)
	}
	return nil
}
