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
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cocobuild/cocobuild/internal/childenv"
	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/internal/termsafe"
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
	onceFlags(root)
	root.SetArgs(goStyleFlags(root, args))
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	code, msg := exitUsage, err.Error() // errors of cobra itself (unknown command, bad arguments)
	var rf *repeatedFlagError
	var rl *limits.RepeatedError
	switch {
	case errors.As(err, &rf):
		err = usageErr(rf)
	case errors.As(err, &rl):
		err = usageErr(rl)
	}
	var ee *exitError
	if errors.As(err, &ee) {
		code, msg = ee.code, ""
		if ee.err != nil {
			msg = ee.err.Error()
		}
		if msg != "" && !ee.printed {
			fmt.Fprintln(stderr, "error:", escapeLines(msg))
		}
	} else {
		fmt.Fprintln(stderr, "error:", escapeLines(msg))
	}
	if a.json && !a.jsonPrinted {
		// --json callers always get a result on stdout, failures too, with
		// the message exact (an error escaped for the terminal as a whole,
		// tee.Escaped, gives its text back).
		var ex interface{ Exact() string }
		if errors.As(err, &ex) && ex.(error).Error() == msg {
			msg = ex.Exact()
		}
		a.printJSON(map[string]any{"ok": false, "error": msg, "exit_code": code})
	}
	return code
}

// escapeLines escapes each line of an error for the terminal
// (termsafe.Escape): errors quote names from inputs (a path, an archive
// entry, a feed's name) that must not drive it. The lines stay lines;
// --json prints the error exact.
func escapeLines(msg string) string {
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		lines[i] = termsafe.Escape(l)
	}
	return strings.Join(lines, "\n")
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

// onceFlags makes every flag of the command tree that takes one value
// refuse a second one, naming both ("--mode given twice (snp, then sev):
// give it once"), where pflag would let the last one win. Flags that
// collect values stay repeatable: slices, arrays, maps (stringToString),
// counts and --limit (which refuses a repeated NAME itself). A switch
// (bool) may be repeated, but not contradicted (--x --x=false).
func onceFlags(root *cobra.Command) {
	seen := map[*pflag.Flag]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.PersistentFlags(), c.Flags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				if seen[f] {
					return
				}
				seen[f] = true
				if repeatable(f.Value) {
					return
				}
				if f.Value.Type() == "duration" && f.DefValue == "0s" {
					// pflag's help tells a zero default by the value's
					// type, which the wrapper hides: "0" is the same
					// duration and keeps "(default 0s)" out of --help.
					f.DefValue = "0"
				}
				once := &onceValue{Value: f.Value, name: f.Name}
				if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
					f.Value = onceSwitch{once}
				} else {
					f.Value = once
				}
			})
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// repeatable says whether a flag value collects its repetitions.
func repeatable(v pflag.Value) bool {
	if _, ok := v.(pflag.SliceValue); ok {
		return true
	}
	if _, ok := v.(*limits.Values); ok {
		return true
	}
	t := v.Type()
	return strings.HasSuffix(t, "Slice") || strings.HasSuffix(t, "Array") || strings.HasPrefix(t, "stringTo") || t == "count"
}

// onceValue is a flag value that may be set once.
type onceValue struct {
	pflag.Value
	name  string
	set   bool
	first string
}

func (v *onceValue) Set(s string) error {
	if !v.set {
		if err := v.Value.Set(s); err != nil {
			return err
		}
		v.set, v.first = true, s
		return nil
	}
	if v.Value.Type() == "bool" {
		if b, err := strconv.ParseBool(s); err == nil && strconv.FormatBool(b) == v.Value.String() {
			return nil // the same switch again
		}
	}
	return &repeatedFlagError{name: v.name, first: v.first, second: s}
}

// repeatedFlagError is a flag that takes one value given twice. runApp
// prints it without pflag's "invalid argument" preamble: the value is not
// wrong, the repetition is.
type repeatedFlagError struct{ name, first, second string }

func (e *repeatedFlagError) Error() string {
	return fmt.Sprintf("--%s given twice (%s, then %s): give it once", e.name, termsafe.Escape(e.first), termsafe.Escape(e.second))
}

// onceSwitch is a onceValue of a switch: pflag's help tells a switch by
// its IsBoolFlag method.
type onceSwitch struct{ *onceValue }

func (onceSwitch) IsBoolFlag() bool { return true }
