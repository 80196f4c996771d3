package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cocobuild/cocobuild/launch"
	"github.com/cocobuild/cocobuild/manifest"
)

func newRunCmd(a *app) *cobra.Command {
	var rf recipeFlags
	var o launch.Options
	var out, expect string
	var jobs int
	var timeout time.Duration
	var printOnly bool
	var accel string
	c := &cobra.Command{
		Use:   "run [RECIPE|OUT] [--measurement NAME] [--tee snp|tdx --print] [-- QEMU-ARGS…]",
		Short: "Boot the built guest under QEMU exactly as one of its measurements modelled it",
		Long: `Run boots the guest with the firmware, kernel, initrd, kernel command line, vCPUs and
memory of one measurement entry of manifest.json, and the build's disk images (one
virtio drive per disk block, the first is /dev/vda, opened with snapshot=on so the
output is never written to). A RECIPE is built first (or taken from the cache) like
cocobuild build; an OUT directory (holding manifest.json) is used as it is.

Without --tee the boot is emulated, with no confidential guest object (the TEE
itself is not emulated): --accel auto (the default) uses KVM when /dev/kvm is usable
and boots again under TCG when QEMU reports that KVM failed ("KVM internal error",
as under some nested virtualization); --accel kvm or tcg forces one. With --tee snp or
--tee tdx the command line is the one for real hardware: sev-snp-guest with the
entry's policy, kernel-hashes=on when the entry measured a kernel, the modelled
vCPU type and count; or tdx-guest with split irqchip and the modelled memory size.
--print prints the command line instead of running it.

The default measurement is the first entry (of the --tee, when given) that boots a
kernel directly; --measurement NAME picks another (an unknown name lists them).
The console streams to stdout (with --json, only the result is printed); it is output
only, QEMU does not read the terminal. Ctrl-C kills QEMU. --expect
REGEX ends the run with exit 0 as soon as a console line matches; --timeout ends
it with exit 1. QEMU arguments after -- are appended.`,
		Example: `  cocobuild run recipes/sample
  cocobuild run --expect 'release ' --timeout 300s recipes/sample
  cocobuild run out/sample --measurement 'tdx/memory=4G,qemu=10.2,order=single-pass,separator=current'
  cocobuild run out/sample --tee snp --print --measurement 'snp/vcpus=4,cpu=EPYC-Genoa,vmm=QEMU,gf=0x1'
  cocobuild run --accel tcg --expect 'release ' --timeout 600s recipes/sample
  cocobuild run out/sample -- -device virtio-rng-pci`,
		RunE: func(cmd *cobra.Command, args []string) error {
			pos, extra := args, []string(nil)
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				pos, extra = args[:dash], args[dash:]
			}
			if len(pos) > 1 {
				return usageErr(fmt.Errorf("run takes one RECIPE or OUT, got %d: %s (QEMU arguments go after --)", len(pos), strings.Join(pos, " ")))
			}
			var re *regexp.Regexp
			if expect != "" {
				var err error
				if re, err = regexp.Compile(expect); err != nil {
					return usageErr(fmt.Errorf("--expect: %w", err))
				}
			}
			if printOnly && o.TEE == "" {
				return usageErr(fmt.Errorf("--print needs --tee %s: it prints the command line for that hardware", strings.Join(launch.LaunchNames(a.tees), " or --tee ")))
			}
			if timeout < 0 {
				return usageErr(errors.New("--timeout must not be negative"))
			}
			switch {
			case accel != "auto" && accel != "kvm" && accel != "tcg":
				return usageErr(fmt.Errorf("--accel %q: want auto, kvm or tcg", accel))
			case o.TEE != "" && accel == "tcg":
				return usageErr(fmt.Errorf("--accel tcg with --tee %s: a TEE guest runs under KVM on its hardware", o.TEE))
			}
			dir, m, err := a.runTarget(cmd, &rf, pos, out, jobs)
			if err != nil {
				return err
			}
			o.Extra = extra
			o.KVM = o.TEE != "" || accel == "kvm" || accel == "auto" && launch.KVMAvailable()
			o.TEEs = a.tees
			plan, err := launch.NewPlan(dir, m, o)
			if err != nil {
				var ue *launch.UsageError
				if errors.As(err, &ue) {
					return usageErr(err)
				}
				return failErr(err)
			}
			if printOnly {
				if a.json {
					return a.printJSON(map[string]any{"out": dir, "plan": plan, "command": shellCommand(plan.Argv)})
				}
				fmt.Fprint(a.stdout, planHeader(dir, plan, "#"))
				fmt.Fprintln(a.stdout, shellCommand(plan.Argv))
				return nil
			}
			if !a.json {
				fmt.Fprint(a.stderr, planHeader(dir, plan, "cocobuild run:"))
				fmt.Fprintf(a.stderr, "cocobuild run: %s\n", shellCommand(plan.Argv))
			}
			ro := launch.RunOptions{Expect: re, Timeout: timeout, KVM: plan.Accel == "kvm"}
			if !a.json {
				ro.Console = a.stdout
			}
			res, err := launch.Run(cmd.Context(), plan, ro)
			if err != nil {
				return failErr(err)
			}
			if res.KVMError != "" && accel == "auto" && o.TEE == "" {
				// The same boot under TCG: only the accelerator changes.
				note := fmt.Sprintf("KVM could not run the guest (%s): booting it again under TCG (--accel tcg skips KVM)", res.KVMError)
				o.KVM = false
				if plan, err = launch.NewPlan(dir, m, o); err != nil {
					return failErr(err)
				}
				if !a.json {
					fmt.Fprintf(a.stderr, "cocobuild run: note: %s\ncocobuild run: %s\n", note, shellCommand(plan.Argv))
				}
				ro.KVM = false
				if res, err = launch.Run(cmd.Context(), plan, ro); err != nil {
					return failErr(err)
				}
				plan.Notes = append(plan.Notes, note)
			}
			ok := res.OK(re != nil)
			if a.json {
				a.printJSON(map[string]any{"ok": ok, "out": dir, "plan": plan, "result": res})
			}
			switch {
			case ok:
				if !a.json && re != nil {
					fmt.Fprintf(a.stderr, "cocobuild run: matched %q after %.1fs\n", res.Matched, res.Duration)
				}
				return nil
			case res.KVMError != "":
				return &exitError{code: exitFailure, err: fmt.Errorf("KVM could not run the guest (%s): boot it under TCG with --accel tcg", res.KVMError), printed: a.json}
			case res.TimedOut && re != nil:
				return &exitError{code: exitFailure, err: fmt.Errorf("no console line matched %q within %s", expect, timeout), printed: a.json}
			case res.TimedOut:
				return &exitError{code: exitFailure, err: fmt.Errorf("timed out after %s", timeout), printed: a.json}
			case re != nil:
				return &exitError{code: exitFailure, err: fmt.Errorf("QEMU exited (status %d) before a console line matched %q", res.ExitCode, expect), printed: a.json}
			default:
				return &exitError{code: exitFailure, err: fmt.Errorf("QEMU exited with status %d", res.ExitCode), printed: a.json}
			}
		},
	}
	rf.register(c)
	a.addLimitFlag(c, false)
	c.Flags().StringVar(&o.Measurement, "measurement", "", "the manifest entry to boot (default: the first that boots a kernel directly)")
	c.Flags().StringVar(&o.TEE, "tee", "", strings.Join(launch.LaunchNames(a.tees), " or ")+": the command line for that hardware (with --print, print it)")
	c.Flags().BoolVar(&printOnly, "print", false, "print the command line (with --tee) instead of running it")
	c.Flags().StringVar(&expect, "expect", "", "succeed (exit 0) as soon as a console line matches this regular expression")
	c.Flags().DurationVar(&timeout, "timeout", 0, "kill QEMU and fail (exit 1) after this long, e.g. 300s (default: none)")
	c.Flags().StringVar(&o.Memory, "memory", "", "guest memory when the entry does not model it, e.g. 4G (default "+launch.DefaultMemory+")")
	c.Flags().IntVar(&o.VCPUs, "vcpus", 0, "vCPUs when the entry does not model them (default 1)")
	c.Flags().StringVar(&o.QEMU, "qemu", launch.DefaultQEMU, "the QEMU binary")
	c.Flags().StringVar(&accel, "accel", "auto", "emulated boot: auto (KVM when usable, TCG when KVM fails), kvm or tcg")
	c.Flags().StringVarP(&out, "out", "o", "", "where a RECIPE is built (default out/<recipe name>)")
	c.Flags().IntVarP(&jobs, "jobs", "j", 0, "steps to run at once when building (default: one per CPU)")
	return c
}

// runTarget returns the build directory and manifest to launch: OUT as it
// is, or the output of building RECIPE.
func (a *app) runTarget(cmd *cobra.Command, rf *recipeFlags, pos []string, out string, jobs int) (string, *manifest.Manifest, error) {
	target := "."
	if len(pos) == 1 {
		target = pos[0]
	}
	mpath := filepath.Join(target, "manifest.json")
	if fi, err := os.Stat(target); err == nil && fi.IsDir() {
		if _, err := os.Stat(mpath); err == nil {
			if out != "" {
				return "", nil, usageErr(fmt.Errorf("-o applies to a RECIPE; %s is a build output", target))
			}
			m, err := manifest.Read(mpath)
			if err != nil {
				return "", nil, failErr(err)
			}
			return target, m, nil
		}
	}
	l, err := a.load(rf, pos, false)
	if err != nil {
		return "", nil, err
	}
	prog := newProgress(a)
	res, err := l.Build(cmd.Context(), out, jobs, prog)
	prog.Close()
	if err != nil {
		return "", nil, a.recipeError(err)
	}
	if !a.json {
		fmt.Fprintf(a.stderr, "cocobuild run: built %s into %s (%d step(s) ran)\n", l.Recipe.Name, res.OutDir, res.Report.Ran())
	}
	return res.OutDir, res.Manifest, nil
}

// planHeader says which entry a command line launches, what it measured,
// and the notes, each line starting with prefix.
func planHeader(dir string, p *launch.Plan, prefix string) string {
	var b strings.Builder
	how := "emulated (" + p.Accel + ")"
	if p.TEE != "" {
		how = p.TEE + " hardware"
	}
	fmt.Fprintf(&b, "%s measurement %s (%s) of %s, %s\n", prefix, p.Measurement.Name, p.Measurement.TEE, dir, how)
	keys := make([]string, 0, len(p.Measurement.Values))
	for k := range p.Measurement.Values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s   %s %v\n", prefix, k, p.Measurement.Values[k])
	}
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "%s note: %s\n", prefix, n)
	}
	return b.String()
}

// shellCommand writes argv as a POSIX shell command, one option and its
// value per line.
func shellCommand(argv []string) string {
	var b strings.Builder
	for i, s := range argv {
		switch {
		case i == 0:
		case strings.HasPrefix(s, "-"):
			b.WriteString(" \\\n  ")
		default:
			b.WriteString(" ")
		}
		b.WriteString(shellQuote(s))
	}
	return b.String()
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
