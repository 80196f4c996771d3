// Package limits bounds what cocobuild reads from inputs it did not make:
// firmware, kernels, archives and documents handed to inspect, diff,
// measure, verify and check by CI jobs and verifiers. Each Limit has a
// name, a documented default and a unit; Values holds the defaults and the
// overrides of the command line's repeatable `--limit NAME=VALUE` flag, and
// every error for a limit names it and that flag. ReadFile and Open take a
// path only when it is a regular file within its size limit, checked
// before anything is allocated.
package limits

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cocobuild/cocobuild/internal/units"
)

// Unit is what a limit counts.
type Unit int

// The units of a limit.
const (
	Bytes Unit = iota // a size: 64MiB, 1GiB or a number of bytes
	Count             // a number of things, such as archive entries
	Ratio             // a factor, such as decompressed bytes per compressed byte
)

// Limit is one bound on an untrusted input.
type Limit struct {
	Name    string // as written after --limit
	Default int64
	Unit    Unit
	Doc     string // what it bounds, for --help and docs/limits.md
}

// The limits. Defaults are generous for real inputs (the sample's firmware
// is 4 MiB, its kernel 14 MiB, a distribution initramfs holds some
// hundred MiB in tens of thousands of entries) and small enough that a
// hostile input fails in a second, within about 100 MB of memory.
var (
	Firmware = Limit{"firmware", 64 * units.MiB, Bytes,
		"size of a firmware image (OVMF .fd)"}
	Kernel = Limit{"kernel", 512 * units.MiB, Bytes,
		"size of a kernel image (bzImage, vmlinuz, UKI)"}
	Initrd = Limit{"initrd", 2 * units.GiB, Bytes,
		"size of an initrd or initramfs file"}
	File = Limit{"file", 4 * units.GiB, Bytes,
		"size of any other input file (ACPI tables, event logs, evidence, files diff and inspect compare or list)"}
	Decompressed = Limit{"decompressed", 1 * units.GiB, Bytes,
		"bytes one compressed stream (gzip, zstd, xz, bzip2) may expand to"}
	Expansion = Limit{"expansion", 100, Ratio,
		"decompressed bytes per compressed byte, checked once a stream has expanded past 16MiB (real archives expand 2-10x; a bomb of zeros 1000x and more)"}
	Entries = Limit{"entries", 200_000, Count,
		"entries of one archive (cpio, tar) or directory tree"}
	NameLen = Limit{"name", 4096, Bytes,
		"length of one entry name or link target in an archive"}
	Evidence = Limit{"evidence", 16 * units.MiB, Bytes,
		"size of attestation evidence or an event log (an SNP report with its certificates, a TDX quote, a CCEL log)"}
	Document = Limit{"document", 64 * units.MiB, Bytes,
		"size of a JSON, CBOR or signature document (a release's rvps.json, statement, bundle, CoRIM, a feed index)"}
)

// All lists every limit, in the order --help and the docs show them.
var All = []Limit{Firmware, Kernel, Initrd, File, Decompressed, Expansion, Entries, NameLen, Evidence, Document}

// Format writes v in the limit's unit: sizes as 64MiB when exact.
func (l Limit) Format(v int64) string {
	if l.Unit == Bytes {
		for _, u := range []struct {
			s string
			n int64
		}{{"GiB", units.GiB}, {"MiB", units.MiB}, {"KiB", units.KiB}} {
			if v >= u.n && v%u.n == 0 {
				return strconv.FormatInt(v/u.n, 10) + u.s
			}
		}
	}
	return strconv.FormatInt(v, 10)
}

// Parse reads a value in the limit's unit.
func (l Limit) Parse(s string) (int64, error) {
	if l.Unit == Bytes {
		return units.ParseSize(s)
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q: want a whole number", s)
	}
	return n, nil
}

// Values are the limits in force: the defaults and what --limit set. The
// zero value holds the defaults. It is a pflag.Value, so one repeatable
// --limit flag fills it.
type Values struct {
	set map[string]int64
}

// Get is the value of l in force.
func (v *Values) Get(l Limit) int64 {
	if v != nil {
		if n, ok := v.set[l.Name]; ok {
			return n
		}
	}
	return l.Default
}

// With returns a copy of v with l set to n (for callers that take a limit
// from elsewhere, such as a test).
func (v *Values) With(l Limit, n int64) *Values {
	c := &Values{set: map[string]int64{}}
	if v != nil {
		for k, x := range v.set {
			c.set[k] = x
		}
	}
	c.set[l.Name] = n
	return c
}

// Lookup finds a limit by name.
func Lookup(name string) (Limit, bool) {
	i := slices.IndexFunc(All, func(l Limit) bool { return l.Name == name })
	if i < 0 {
		return Limit{}, false
	}
	return All[i], true
}

func names() string {
	var s []string
	for _, l := range All {
		s = append(s, l.Name)
	}
	return strings.Join(s, ", ")
}

// Set parses NAME=VALUE (pflag.Value). Setting one limit twice is an
// error that names both values.
func (v *Values) Set(s string) error {
	name, val, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("%q: want NAME=VALUE, where NAME is one of %s", s, names())
	}
	l, ok := Lookup(strings.TrimSpace(name))
	if !ok {
		return fmt.Errorf("%q: unknown limit %q: want one of %s", s, name, names())
	}
	n, err := l.Parse(strings.TrimSpace(val))
	if err != nil {
		return fmt.Errorf("--limit %s: %w", l.Name, err)
	}
	if v.set == nil {
		v.set = map[string]int64{}
	}
	if old, dup := v.set[l.Name]; dup {
		return &RepeatedError{Limit: l, First: old, Second: n}
	}
	v.set[l.Name] = n
	return nil
}

// RepeatedError is one limit given twice on a command line.
type RepeatedError struct {
	Limit         Limit
	First, Second int64
}

func (e *RepeatedError) Error() string {
	return fmt.Sprintf("--limit %s given twice (%s, then %s): give it once", e.Limit.Name, e.Limit.Format(e.First), e.Limit.Format(e.Second))
}

// String lists the limits set, for pflag.
func (v *Values) String() string {
	if v == nil || len(v.set) == 0 {
		return ""
	}
	var s []string
	for _, l := range All {
		if n, ok := v.set[l.Name]; ok {
			s = append(s, l.Name+"="+l.Format(n))
		}
	}
	return strings.Join(s, ",")
}

// Type is pflag's name for the value's type.
func (v *Values) Type() string { return "NAME=VALUE" }

// Help describes every limit and its default, for a command's --help.
func Help() string {
	var b strings.Builder
	for _, l := range All {
		fmt.Fprintf(&b, "  %-13s %-7s %s\n", l.Name, l.Format(l.Default), l.Doc)
	}
	return b.String()
}

// ErrExceeded is what errors.Is finds in every *Error.
var ErrExceeded = errors.New("input exceeds a limit")

// Error says which input went over which limit, and how to raise it.
type Error struct {
	What  string // the input: a path, "zstd stream of x.cpio.zst", an entry name
	Limit Limit
	Max   int64 // the value in force
	Got   int64 // what the input has (or has at least, when AtLeast)
	// AtLeast says Got is where reading stopped, not the input's size.
	AtLeast bool
}

func (e *Error) Error() string {
	got := e.Limit.Format(e.Got)
	if e.AtLeast {
		got = "more than " + e.Limit.Format(e.Max)
	}
	raise := e.Got
	if e.AtLeast || raise <= e.Max {
		raise = e.Max * 2
		if e.Limit.Unit == Bytes && raise < units.MiB {
			raise = units.MiB
		}
	}
	if e.Limit.Unit == Ratio {
		// The ratio seen is where reading stopped: a stream that keeps
		// expanding goes past it, so suggest ten times more.
		raise = max(e.Got, e.Max) * 10
	}
	unit := ""
	switch e.Limit.Unit {
	case Count:
		unit = " entries"
	case Ratio:
		unit = "x"
	}
	return fmt.Sprintf("%s: %s%s is over the %s limit of %s%s (%s): if the input is trusted, raise it with --limit %s=%s",
		e.What, got, unit, e.Limit.Name, e.Limit.Format(e.Max), unit, e.Limit.Doc, e.Limit.Name, e.Limit.Format(roundUp(e.Limit, raise)))
}

// Is makes errors.Is(err, ErrExceeded) true.
func (e *Error) Is(target error) bool { return target == ErrExceeded }

// roundUp rounds a suggested size up to whole MiB or GiB, so that the
// suggestion reads well.
func roundUp(l Limit, n int64) int64 {
	if l.Unit != Bytes {
		return n
	}
	for _, u := range []int64{units.GiB, units.MiB} {
		if n >= u {
			return (n + u - 1) / u * u
		}
	}
	return n
}

// Check returns an *Error when got is over the value of l in force.
func (v *Values) Check(what string, l Limit, got int64) error {
	if max := v.Get(l); got > max {
		return &Error{What: what, Limit: l, Max: max, Got: got}
	}
	return nil
}
