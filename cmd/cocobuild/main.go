// Command cocobuild builds confidential-guest images from HCL recipes, computes
// their launch measurements without booting them, and publishes signed
// reference values. The command only parses flags and prints results; the
// work is done by the packages it calls.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cocobuild/cocobuild/internal/childenv"
)

func main() {
	ctx, stop := interruptContext()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// interruptContext is cancelled by the first SIGINT or SIGTERM, which stops
// every running step; a second signal kills the process at once.
func interruptContext() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // signals get their default action again
	}()
	return ctx, stop
}

// run executes the CLI with args and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runApp(ctx, &app{stdin: stdin, stdout: stdout, stderr: stderr}, args)
}

// runApp executes the CLI for a prepared app.
func runApp(ctx context.Context, a *app, args []string) int {
	stdin, stdout, stderr := a.stdin, a.stdout, a.stderr
	// No process cocobuild starts gets a variable that an env:// key
	// reference of the command line names (--key, -var …), nor
	// COSIGN_PASSWORD; the builder adds the recipe's references.
	ctx = childenv.WithSecrets(ctx, childenv.RefNames(args...)...)
	root := newRootCmd(a)
	root.SetArgs(goStyleFlags(root, args))
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	code, msg := exitUsage, err.Error() // errors of cobra itself (unknown command, bad arguments)
	var ee *exitError
	if errors.As(err, &ee) {
		code, msg = ee.code, ""
		if ee.err != nil {
			msg = ee.err.Error()
		}
		if msg != "" && !ee.printed {
			fmt.Fprintln(stderr, "error:", msg)
		}
	} else {
		fmt.Fprintln(stderr, "error:", msg)
	}
	if a.json && !a.jsonPrinted {
		// --json callers always get a result on stdout, failures too.
		a.printJSON(map[string]any{"ok": false, "error": msg, "exit_code": code})
	}
	return code
}

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the build or the measurement failed
	exitUsage   = 2 // the recipe or the command line is wrong
)

// exitError carries an exit code through cobra. printed says the error was
// already shown to the user (e.g. as diagnostics).
type exitError struct {
	code    int
	err     error
	printed bool
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErr marks err as a problem with what the user asked for (exit 2).
func usageErr(err error) error { return &exitError{code: exitUsage, err: err} }

// failErr marks err as a failure of the work itself (exit 1).
func failErr(err error) error { return &exitError{code: exitFailure, err: err} }

// goStyleFlags lets users write long flags with one dash, as Go tools and
// Terraform do (-var, -check, -update): an argument "-name" or "-name=v"
// whose name is a long flag of some command becomes "--name".
func goStyleFlags(root *cobra.Command, args []string) []string {
	long := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.LocalFlags(), c.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				if len(f.Name) > 1 {
					long[f.Name] = true
				}
			})
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			name, _, _ := strings.Cut(a[1:], "=")
			if long[name] {
				a = "-" + a
			}
		}
		out = append(out, a)
	}
	return out
}
