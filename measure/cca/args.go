package cca

import (
	"fmt"
	"strconv"
)

// Args is a realm-measurements command line: its options, then the VMM
// ("qemu" or "kvmtool") and the VMM's own arguments.
type Args struct {
	Host                          Host
	Kernel, Initrd, Firmware, DTB string // file names
	OutputDTB                     string // where to write the DTB measured
	PrintB64, NoMeasurements      bool
	Verbose                       bool
	JSON                          bool     // cocobuild's --json
	Limits                        []string // cocobuild's --limit NAME=VALUE
	Help                          bool
	VMM                           string
	VMMArgs                       []string
}

// argOptions are realm-measurements' options that take a value.
var argOptions = map[string]bool{
	"kernel": true, "initrd": true, "firmware": true, "dtb": true, "ipa-bits": true, "num-bps": true, "num-wps": true,
	"sve-vl": true, "pmu-num-ctrs": true, "pmu": true, "lpa2": true, "hash-algo": true,
	"output-dtb": true, "dtb-template": true, "config": true, "endorsements-template": true, "endorsements-output": true,
	"limit": true, "verbose": false, "no-measurements": false, "print-b64": false, "json": false, "help": false,
}

var argShort = map[byte]string{'k': "kernel", 'i': "initrd", 'f': "firmware", 'c': "config", 'v': "verbose", 'h': "help"}

// unsupported are realm-measurements' options that this model does not
// implement, and why.
var unsupported = map[string]string{
	"dtb-template":          "patching a DTB template is not modelled: give the VMM's own DTB with --dtb",
	"config":                "configuration files are not read: give the host's capabilities as options (--ipa-bits, --num-bps, ...)",
	"endorsements-template": "CoMID endorsements are not written: cocobuild publishes reference values from a recipe",
	"endorsements-output":   "CoMID endorsements are not written: cocobuild publishes reference values from a recipe",
}

// ParseArgs parses a realm-measurements command line (without the program
// name).
func ParseArgs(args []string) (*Args, error) {
	a := &Args{}
	o := options{takes: argOptions, short: argShort}
	rest, err := o.parse(args, func(name, val string) error {
		if why, ok := unsupported[name]; ok {
			return fmt.Errorf("--%s: %s", name, why)
		}
		return a.set(name, val)
	})
	if err != nil {
		return nil, err
	}
	switch {
	case len(rest) == 0:
		if !a.Help {
			return nil, fmt.Errorf("no VMM: end the options with qemu or kvmtool and the VMM's own arguments")
		}
	case rest[0] == QEMU || rest[0] == Kvmtool:
		a.VMM, a.VMMArgs = rest[0], append([]string(nil), rest[1:]...)
	case rest[0] == "cloud-hv" || rest[0] == "cloud-hypervisor":
		return nil, fmt.Errorf("VMM %q: the cloud-hypervisor realm layout is not modelled (qemu or kvmtool)", rest[0])
	default:
		return nil, fmt.Errorf("unexpected argument %q: options come first, then the VMM (qemu or kvmtool) and its arguments", rest[0])
	}
	return a, a.Host.Check()
}

func (a *Args) set(name, val string) error {
	num := func(dst **int) error {
		n, err := strconv.Atoi(val)
		if err != nil {
			return fmt.Errorf("--%s %q is not a number", name, val)
		}
		*dst = &n
		return nil
	}
	boolean := func(dst **bool) error {
		b, err := strconv.ParseBool(val)
		if err != nil {
			return fmt.Errorf("--%s %q: want true or false", name, val)
		}
		*dst = &b
		return nil
	}
	switch name {
	case "kernel":
		a.Kernel = val
	case "initrd":
		a.Initrd = val
	case "firmware":
		a.Firmware = val
	case "dtb":
		a.DTB = val
	case "output-dtb":
		a.OutputDTB = val
	case "ipa-bits":
		return num(&a.Host.IPABits)
	case "num-bps":
		return num(&a.Host.NumBPs)
	case "num-wps":
		return num(&a.Host.NumWPs)
	case "sve-vl":
		return num(&a.Host.SVEVL)
	case "pmu-num-ctrs":
		return num(&a.Host.PMUNumCtrs)
	case "pmu":
		return boolean(&a.Host.PMU)
	case "lpa2":
		return boolean(&a.Host.LPA2)
	case "hash-algo":
		h, err := ParseHash(val)
		if err != nil {
			return fmt.Errorf("--hash-algo: %w", err)
		}
		a.Host.Hash = &h
	case "limit":
		a.Limits = append(a.Limits, val)
	case "verbose":
		a.Verbose = true
	case "print-b64":
		a.PrintB64 = true
	case "no-measurements":
		a.NoMeasurements = true
	case "json":
		a.JSON = true
	case "help":
		a.Help = true
	}
	return nil
}
