package initramfs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/u-root/gobusybox/src/pkg/golang"
	"github.com/u-root/mkuimage/uimage"
	"github.com/u-root/uio/llog"

	"github.com/cocobuild/cocobuild/internal/procgroup"
)

// The u-root busybox is built by mkuimage, which starts the go command
// without a context: a build running in this process could not be stopped.
// So cocobuild runs it in a child process of its own (this executable again,
// with helperEnv set), leading a process group that is killed, with every
// go command and compiler in it, when the step is cancelled.
const helperEnv = "COCOBUILD_INTERNAL_UROOT_HELPER"

// urootRequest is what the child process builds.
type urootRequest struct {
	Dir      string   // the Go module the commands resolve in
	Commands []string // u-root command packages
	Init     string
	Shell    string
	TempDir  string // mkuimage's work directory
	Out      string // the newc archive mkuimage writes
	GoBin    string // the go command, found as gotool.Look finds it
	GOROOT   string // its root, as `go env GOROOT` says
}

func init() {
	// Any binary that links this package (cocobuild, and test binaries)
	// can serve as the child process.
	if os.Getenv(helperEnv) == "1" {
		os.Unsetenv(helperEnv)
		os.Exit(urootHelperMain(os.Stdin, os.Stdout, os.Stderr))
	}
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
		golang.WithGOROOT(req.GOROOT), golang.WithCompiler(req.GoBin))
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
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	cmd := procgroup.Command(ctx, exe)
	cmd.Env = append(cmd.Env, helperEnv+"=1") // procgroup.Command: childenv.Environ(ctx)
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
