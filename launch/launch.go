// Package launch boots a built guest the way one of its measurements
// modelled it: the entry of OUT/manifest.json gives the firmware, kernel,
// initrd, command line, vCPUs, vCPU type, memory, SNP policy and TDX
// options, and the output directory holds the files. It builds the QEMU
// command line for an emulated boot (KVM when available, else TCG, without
// the TEE) and for real SEV-SNP or TDX hardware, and runs it with a console
// watch (Run).
package launch

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/cocobuild/cocobuild/internal/filehash"
	"github.com/cocobuild/cocobuild/internal/qemuacpi"
	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/measure/tdx"
	"github.com/cocobuild/cocobuild/tee"
)

// DefaultQEMU is the QEMU binary a plan runs unless told otherwise: the
// one the measure step's ACPI helper uses by default too.
const DefaultQEMU = qemuacpi.DefaultQEMU

// Defaults for what an entry does not model: SNP measurements do not depend
// on the memory size, TDX measurements not on the vCPU count.
const (
	DefaultMemory = "2G"
	DefaultVCPUs  = 1
)

// Options say how to launch.
type Options struct {
	// Measurement names the manifest entry ("tdx/memory=2G,…"); empty takes
	// the default (Select).
	Measurement string
	// TEE is "" for an emulated boot (no confidential guest object), or
	// one of the LaunchNames of a registered TEE (snp, tdx) for the command
	// line of real hardware.
	TEE string
	// TEEs are the registered TEEs; their tee.Launcher builds the hardware
	// command lines.
	TEEs tee.Set
	// KVM selects -accel kvm for an emulated boot (TCG otherwise); the TEE
	// command lines always use KVM.
	KVM bool
	// Memory and VCPUs apply when the entry does not model them; they must
	// equal the entry's values when it does. Empty/0: the entry's value or
	// the default.
	Memory string
	VCPUs  int
	// QEMU is the binary (default DefaultQEMU); Extra are appended to the
	// command line.
	QEMU  string
	Extra []string
}

// Plan is one launch: the argv and where each of its parts comes from.
type Plan struct {
	Measurement manifest.Measurement `json:"measurement"`
	TEE         string               `json:"tee"`   // Options.TEE: "" (emulated) or a launch name
	Accel       string               `json:"accel"` // kvm or tcg
	Argv        []string             `json:"argv"`
	Files       Files                `json:"files"`
	VCPUs       int                  `json:"vcpus"`
	Memory      string               `json:"memory"`
	Notes       []string             `json:"notes"`
}

// Files are the paths a plan boots, inside the output directory.
type Files struct {
	Firmware string   `json:"firmware"`
	Kernel   string   `json:"kernel,omitempty"`
	Initrd   string   `json:"initrd,omitempty"`
	Disks    []string `json:"disks"`
}

// UsageError is a request that cannot be met as asked (unknown entry, a
// TEE that does not match it, a flag that contradicts it).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usage(format string, args ...any) error { return &UsageError{fmt.Errorf(format, args...)} }

// Select returns the manifest entry to launch: the one named name; without
// a name, the first entry (of the TEE name teeName, when given) that boots a
// kernel directly, or the first such entry at all when none does. Without a
// TEE (an emulated boot), an entry whose firmware boots a kernel directly
// outside the TEE too (tee.Launcher's EmulatedDirectBoot; SEV's
// hashes-table firmware does not) is taken before others. An unknown name
// is a UsageError listing the names.
func Select(m *manifest.Manifest, name, teeName string, tees tee.Set) (*manifest.Measurement, error) {
	if len(m.Measurements) == 0 {
		return nil, usage("the manifest has no measurements: add a measure block to the recipe")
	}
	if name != "" {
		for i := range m.Measurements {
			if m.Measurements[i].Name == name {
				return &m.Measurements[i], nil
			}
		}
		return nil, usage("no measurement %q; the manifest has:\n  %s", name, strings.Join(Names(m), "\n  "))
	}
	var first, firstDirect *manifest.Measurement
	for i := range m.Measurements {
		e := &m.Measurements[i]
		if teeName != "" && e.TEE != teeName {
			continue
		}
		if first == nil {
			first = e
		}
		if str(e.Params, "kernel_sha256") == "" {
			continue
		}
		if teeName == "" && !emulatedDirectBoot(tees, e.TEE) {
			if firstDirect == nil {
				firstDirect = e
			}
			continue
		}
		return e, nil
	}
	if firstDirect != nil {
		return firstDirect, nil
	}
	if first == nil {
		return nil, usage("the manifest has no %s measurement; it has:\n  %s", teeName, strings.Join(Names(m), "\n  "))
	}
	return first, nil
}

// emulatedDirectBoot says whether the entries of a TEE name that boot a
// kernel directly do so in an emulated boot.
func emulatedDirectBoot(tees tee.Set, name string) bool {
	t, ok := tees.Lookup(name)
	if !ok {
		return false
	}
	l, ok := t.(tee.Launcher)
	return ok && l.EmulatedDirectBoot(name)
}

// launcher returns the Launcher whose LaunchNames has name.
func launcher(tees tee.Set, name string) (tee.Launcher, []string) {
	var names []string
	var found tee.Launcher
	for _, t := range tees.All() {
		if l, ok := t.(tee.Launcher); ok {
			for _, n := range l.LaunchNames() {
				names = append(names, n)
				if n == name {
					found = l
				}
			}
		}
	}
	return found, names
}

// LaunchNames are the values Options.TEE takes besides "": the launch
// names of the registered TEEs.
func LaunchNames(tees tee.Set) []string {
	_, names := launcher(tees, "")
	return names
}

// title is a TEE name for people (SEV-SNP), or the name itself.
func title(tees tee.Set, name string) string {
	if t, ok := tees.Lookup(name); ok {
		if l, ok := t.(tee.Launcher); ok && l.Title(name) != "" {
			return l.Title(name)
		}
	}
	return name
}

// Names lists the manifest's measurement names in order.
func Names(m *manifest.Manifest) []string {
	var out []string
	for _, e := range m.Measurements {
		out = append(out, e.Name)
	}
	return out
}

// str returns a string parameter ("" when absent); numbers are formatted.
func str(p map[string]any, k string) string { return tee.Param(p, k) }

// NewPlan builds the launch of one measurement entry of the build in out.
func NewPlan(out string, m *manifest.Manifest, o Options) (*Plan, error) {
	var hw tee.Launcher
	if o.TEE != "" {
		var names []string
		if hw, names = launcher(o.TEEs, o.TEE); hw == nil {
			return nil, usage("--tee %q: want %s (or none for an emulated boot)", o.TEE, strings.Join(names, " or "))
		}
	}
	e, err := Select(m, o.Measurement, o.TEE, o.TEEs)
	if err != nil {
		return nil, err
	}
	if o.TEE != "" && e.TEE != o.TEE {
		return nil, usage("measurement %s is a %s measurement, not %s", e.Name, e.TEE, o.TEE)
	}
	p := &Plan{Measurement: *e, TEE: o.TEE, Accel: "tcg", Notes: []string{}}
	if o.KVM || o.TEE != "" {
		p.Accel = "kvm"
	}
	find := func(what, key string) (string, error) {
		sum := str(e.Params, key)
		if sum == "" {
			return "", nil
		}
		block, _, _ := strings.Cut(e.Name, "/")
		return findArtifact(out, m, sum, what, "measure."+block+"/")
	}
	if p.Files.Firmware, err = find("firmware", "firmware_sha256"); err != nil {
		return nil, err
	}
	if p.Files.Firmware == "" {
		return nil, fmt.Errorf("measurement %s names no firmware (firmware_sha256): its measure block has none (give it firmware = input.NAME to run it), or the manifest is not one cocobuild wrote", e.Name)
	}
	if p.Files.Kernel, err = find("kernel", "kernel_sha256"); err != nil {
		return nil, err
	}
	if p.Files.Initrd, err = find("initrd", "initrd_sha256"); err != nil {
		return nil, err
	}
	p.Files.Disks = disks(out, m)
	if v := str(e.Params, "virtio_disks"); v != "" && v != strconv.Itoa(len(p.Files.Disks)) {
		p.Notes = append(p.Notes, fmt.Sprintf("measurement %s read QEMU's ACPI tables (RTMR0) with %s virtio disks, this launch attaches %d: RTMR0 differs unless the device sets agree", e.Name, v, len(p.Files.Disks)))
	}

	// vCPUs and memory: the entry's when it models them.
	p.VCPUs, p.Memory = DefaultVCPUs, DefaultMemory
	if v := str(e.Params, "vcpus"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("measurement %s: vcpus %q is not a number", e.Name, v)
		}
		if o.VCPUs != 0 && o.VCPUs != n {
			return nil, usage("--vcpus %d: measurement %s was computed for %d vCPUs; pick the entry with --measurement", o.VCPUs, e.Name, n)
		}
		p.VCPUs = n
	} else {
		if o.VCPUs != 0 {
			p.VCPUs = o.VCPUs
		}
		p.Notes = append(p.Notes, fmt.Sprintf("vCPUs (%d) are not part of this %s measurement", p.VCPUs, e.TEE))
	}
	if v := str(e.Params, "memory"); v != "" {
		if o.Memory != "" && !sameMemory(o.Memory, v) {
			return nil, usage("--memory %s: measurement %s was computed for %s; pick the entry with --measurement", o.Memory, e.Name, v)
		}
		p.Memory = v
	} else {
		if o.Memory != "" {
			p.Memory = o.Memory
		}
		p.Notes = append(p.Notes, fmt.Sprintf("memory (%s) is not part of this %s measurement", p.Memory, e.TEE))
	}
	memBytes, err := tdx.ParseMemory(p.Memory)
	if err != nil {
		return nil, usage("memory: %w", err)
	}
	mem := qemuMemory(memBytes)

	qemu := o.QEMU
	if qemu == "" {
		qemu = DefaultQEMU
	}
	argv := []string{qemu}
	if hw != nil {
		tail, notes, err := hw.LaunchArgs(e, tee.Launch{Firmware: p.Files.Firmware, Kernel: p.Files.Kernel != "", VCPUs: p.VCPUs, Memory: mem})
		if errors.Is(err, tee.ErrNoLaunch) {
			return nil, &UsageError{err}
		}
		if err != nil {
			return nil, err
		}
		argv, p.Notes = append(argv, tail...), append(p.Notes, notes...)
	} else {
		cpu := "max"
		if p.Accel == "kvm" {
			cpu = "host"
		}
		argv = append(argv, "-accel", p.Accel, "-machine", "q35", "-cpu", cpu, "-smp", strconv.Itoa(p.VCPUs), "-m", mem,
			"-bios", p.Files.Firmware)
		p.Notes = append(p.Notes, fmt.Sprintf("emulated boot under %s: the same firmware, kernel, initrd, cmdline, vCPUs and memory, but the %s TEE itself is not emulated (no confidential guest object, no measurement taken)", strings.ToUpper(p.Accel), title(o.TEEs, e.TEE)))
	}
	if p.Files.Kernel != "" {
		argv = append(argv, "-kernel", p.Files.Kernel)
		if p.Files.Initrd != "" {
			argv = append(argv, "-initrd", p.Files.Initrd)
		}
		argv = append(argv, "-append", str(e.Params, "cmdline"))
	} else {
		p.Notes = append(p.Notes, "this measurement covers the firmware only (no directly booted kernel): the guest boots what the firmware finds")
	}
	for _, d := range p.Files.Disks {
		format := "raw"
		if strings.HasSuffix(d, ".qcow2") {
			format = "qcow2"
		}
		// snapshot=on: the build output is never written to.
		argv = append(argv, "-drive", "file="+qemuEscape(d)+",format="+format+",if=virtio,snapshot=on")
	}
	argv = append(argv, "-nic", "none", "-nographic", "-no-reboot")
	p.Argv = append(argv, o.Extra...)
	return p, nil
}

// qemuMemory writes a size as QEMU's -m takes it, in the largest unit that
// divides it.
func qemuMemory(b uint64) string {
	for _, u := range []struct {
		s     string
		shift uint
	}{{"T", 40}, {"G", 30}, {"M", 20}} {
		if b%(1<<u.shift) == 0 {
			return strconv.FormatUint(b>>u.shift, 10) + u.s
		}
	}
	return strconv.FormatUint(b>>10, 10) + "K"
}

func sameMemory(a, b string) bool {
	x, err1 := tdx.ParseMemory(a)
	y, err2 := tdx.ParseMemory(b)
	return err1 == nil && err2 == nil && x == y
}

// qemuEscape doubles commas, QEMU's escape inside an option value.
func qemuEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// findArtifact returns the path in out of the artifact with the given
// sha256 (one whose name starts with prefer when there are several),
// checking that the file still holds those bytes.
func findArtifact(out string, m *manifest.Manifest, sum, what, prefer string) (string, error) {
	arts := append([]manifest.Artifact(nil), m.Artifacts...)
	sort.SliceStable(arts, func(i, j int) bool {
		return strings.HasPrefix(arts[i].Name, prefer) && !strings.HasPrefix(arts[j].Name, prefer)
	})
	for _, a := range arts {
		if a.SHA256 != sum {
			continue
		}
		p := filepath.Join(out, filepath.FromSlash(a.Path))
		got, _, err := filehash.SHA256(p)
		if err != nil {
			return "", fmt.Errorf("the %s %s: %w (rebuild the output directory)", what, a.Path, err)
		}
		if got != sum {
			return "", fmt.Errorf("the %s %s has sha256 %s, the manifest says %s: the output directory was changed after the build; rebuild it", what, p, got, sum)
		}
		return p, nil
	}
	return "", fmt.Errorf("the %s the measurement names (sha256 %s) is not in %s: rebuild it with this cocobuild, which writes it there", what, sum, out)
}

// disks returns the build's disk images, one per disk block (raw preferred
// over qcow2), in the order of their names: the first is /dev/vda.
func disks(out string, m *manifest.Manifest) []string {
	byBlock := map[string]manifest.Artifact{}
	for _, a := range m.Artifacts {
		if a.Kind != "disk" {
			continue
		}
		block := strings.TrimSuffix(strings.TrimSuffix(a.Name, ".raw"), ".qcow2")
		if prev, ok := byBlock[block]; ok && prev.Extra["format"] == "raw" {
			continue
		}
		byBlock[block] = a
	}
	names := make([]string, 0, len(byBlock))
	for n := range byBlock {
		names = append(names, n)
	}
	sort.Strings(names)
	out2 := []string{}
	for _, n := range names {
		out2 = append(out2, filepath.Join(out, filepath.FromSlash(byBlock[n].Path)))
	}
	return out2
}
