package tee

import (
	"errors"
	"strconv"

	"github.com/cocobuild/cocobuild/manifest"
)

// Launcher is implemented by a TEE whose entries `cocobuild run --tee`
// can launch on real hardware under QEMU (package launch builds the rest of
// the command line: kernel, initrd, cmdline, disks).
type Launcher interface {
	// Title is the TEE's name for people: SEV-SNP, TDX.
	Title(name string) string
	// LaunchNames are the names whose entries launch on hardware (the
	// values of `run --tee`).
	LaunchNames() []string
	// EmulatedDirectBoot says whether the firmware of a name's entries that
	// boot a kernel directly does so outside the TEE too, as an emulated
	// boot needs (firmware built for SEV's hashes table does not).
	EmulatedDirectBoot(name string) bool
	// LaunchArgs are QEMU's arguments, after the binary and before
	// -kernel, for the hardware launch of e: accelerator, machine, the
	// confidential-guest object, CPU, -smp, -m and -bios; and notes on what
	// the host must match for the launch to give e's values. An error that
	// wraps ErrNoLaunch says no QEMU launch gives them (a command-line
	// problem, not a failure).
	LaunchArgs(e *manifest.Measurement, l Launch) (args, notes []string, err error)
}

// Launch is what package launch has decided before a TEE's arguments.
type Launch struct {
	Firmware string // the firmware file
	Kernel   bool   // the entry boots a kernel directly
	VCPUs    int
	Memory   string // as QEMU's -m takes it, e.g. 2G
}

// ErrNoLaunch marks a LaunchArgs error that says the entry cannot be
// launched as asked (another VMM's vCPU state, guest features QEMU cannot
// set).
var ErrNoLaunch = errors.New("no QEMU launch gives this entry's values")

// Param returns a string parameter of an entry ("" when absent); numbers
// are formatted.
func Param(p map[string]any, k string) string {
	switch v := p[k].(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case int:
		return strconv.Itoa(v)
	}
	return ""
}
