package cca

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// VMM names the VMMs whose realm layout the package models.
const (
	QEMU    = "qemu"
	Kvmtool = "kvmtool"
)

// vmConfig is what a VMM's command line says about the realm.
type vmConfig struct {
	vmm                      string
	host                     Host
	memBase, memSize         uint64
	vcpus                    int
	kernel, initrd, firmware bool
	measurementLog           bool
	firmwareBase             uint64
	notes                    []string
	qemuMaxMem, qemuSlots    uint64
	qemuMaxMemSet            bool
	// The DTB: the command line, the ITS, kvmtool's virtio-mmio devices,
	// QEMU's high memory map.
	bootargs                                        string
	hasBootargs                                     bool
	its                                             bool
	virtioMMIO                                      int
	qemuHighRedist, qemuHighPCICfg, qemuHighPCIMMIO uint64
	// Where the VMM loads the initrd (set by the layout).
	initrdBase, initrdSize uint64
}

// popArg returns the value of option opt.
func popArg(args *[]string, opt string) (string, error) {
	if len(*args) == 0 {
		return "", fmt.Errorf("%s needs a value", opt)
	}
	v := (*args)[0]
	*args = (*args)[1:]
	return v, nil
}

// QEMU virt machine constants (hw/arm/virt.c).
const (
	qemuMemBase         = 0x40000000
	qemuHighRedistBase  = 0x40_00000000
	qemuHighRedistSize  = 64 * MiB
	qemuHighPCICfgSize  = 256 * MiB
	qemuHighPCIMMIOSize = 512 * GiB
	qemuDTBSize         = 1 * MiB
	qemuLogSize         = 64 * KiB
)

func alignUp(n, a uint64) uint64 { return (n + a - 1) &^ (a - 1) }

// parseQEMU reads a qemu-system-aarch64 command line (its arguments, the
// binary's name left out).
func parseQEMU(host Host, args []string) (*vmConfig, error) {
	c := &vmConfig{vmm: QEMU, host: host, memBase: qemuMemBase, memSize: 128 * MiB, vcpus: 1, its: true}
	sha512 := SHA512 // QEMU's default measurement algorithm
	c.host.Hash = &sha512
	var smp struct{ cpus, maxcpus, sockets, clusters, cores, threads int }
	args = append([]string(nil), args...)
	for len(args) > 0 {
		arg := args[0]
		args = args[1:]
		// QEMU takes its options with one dash or two.
		if strings.HasPrefix(arg, "--") {
			arg = arg[1:]
		}
		if name, val, ok := strings.Cut(arg, "="); ok {
			arg = name
			args = append([]string{val}, args...)
		}
		var err error
		switch arg {
		case "-m":
			err = c.qemuMemory(&args)
		case "-smp":
			var v string
			if v, err = popArg(&args, arg); err == nil {
				err = parseSMP(v, &smp.cpus, &smp.maxcpus, &smp.sockets, &smp.clusters, &smp.cores, &smp.threads, &c.notes)
			}
		case "-object":
			err = c.qemuObject(&args)
		case "-machine", "-M":
			err = c.qemuMachine(&args)
		case "-cpu":
			err = c.qemuCPU(&args)
		case "-append":
			c.bootargs, err = popArg(&args, arg)
			c.hasBootargs = true
		case "-device", "-drive", "-fsdev", "-chardev", "-netdev", "-mon", "-dtb":
			_, err = popArg(&args, arg)
		case "-enable-kvm", "-nographic", "-nodefaults":
		case "-kernel", "-initrd", "-bios":
			_, err = popArg(&args, arg)
			switch arg {
			case "-kernel":
				c.kernel = true
			case "-initrd":
				c.initrd = true
			default:
				c.firmware = true
			}
		default:
			c.notes = append(c.notes, fmt.Sprintf("qemu argument %q ignored: it does not change the realm's measurement", arg))
		}
		if err != nil {
			return nil, fmt.Errorf("qemu %s: %w", arg, err)
		}
	}
	switch {
	case smp.maxcpus > 0:
		c.vcpus = smp.maxcpus
	case smp.cpus > 0:
		c.vcpus = smp.cpus
	default:
		c.vcpus = max(smp.sockets, 1) * max(smp.clusters, 1) * max(smp.cores, 1) * max(smp.threads, 1)
	}
	if c.initrd && !c.kernel {
		return nil, fmt.Errorf("qemu -initrd without -kernel: an initrd is loaded only with a kernel")
	}
	ipa, err := c.qemuIPABits()
	if err != nil {
		return nil, err
	}
	restrict(&c.host.IPABits, ipa)
	return c, nil
}

func (c *vmConfig) qemuMemory(args *[]string) error {
	v, err := popArg(args, "-m")
	if err != nil {
		return err
	}
	for _, item := range strings.Split(v, ",") {
		prop, val, ok := strings.Cut(item, "=")
		if !ok {
			prop, val = "size", item
		}
		switch prop {
		case "size":
			c.memSize, err = ParseMemorySize(val)
		case "maxmem":
			c.qemuMaxMem, err = ParseMemorySize(val)
			c.qemuMaxMemSet = true
		case "slots":
			c.qemuSlots, err = strconv.ParseUint(val, 10, 16)
		default:
			err = fmt.Errorf("unsupported -m parameter %q", prop)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// qemuIPABits is the IPA width QEMU's virt memory map needs: RAM, hotplug
// memory, the high redistributors, PCI config and PCI MMIO regions, plus
// the bit of the unprotected half.
func (c *vmConfig) qemuIPABits() (int, error) {
	maxMem := c.memSize
	if c.qemuMaxMemSet {
		maxMem = c.qemuMaxMem
	}
	if maxMem < c.memSize {
		return 0, fmt.Errorf("qemu -m: maxmem %d is below the memory size %d", maxMem, c.memSize)
	}
	addr := alignUp(qemuMemBase+c.memSize, GiB) + alignUp(maxMem-c.memSize+c.qemuSlots*GiB, GiB)
	addr = max(addr, qemuHighRedistBase)
	c.qemuHighRedist = alignUp(addr, qemuHighRedistSize)
	addr += qemuHighRedistSize
	c.qemuHighPCICfg = alignUp(addr, qemuHighPCICfgSize)
	addr += qemuHighPCICfgSize
	c.qemuHighPCIMMIO = alignUp(addr, qemuHighPCIMMIOSize)
	addr += qemuHighPCIMMIOSize
	return 63 - bits.LeadingZeros64(addr) + 2, nil
}

func parseSMP(v string, cpus, maxcpus, sockets, clusters, cores, threads *int, notes *[]string) error {
	for _, item := range strings.Split(v, ",") {
		prop, val, ok := strings.Cut(item, "=")
		if !ok {
			prop, val = "cpus", item
		}
		dst := map[string]*int{"cpus": cpus, "maxcpus": maxcpus, "sockets": sockets, "clusters": clusters, "cores": cores, "threads": threads}[prop]
		if dst == nil {
			*notes = append(*notes, fmt.Sprintf("qemu -smp %s ignored", prop))
			continue
		}
		n, err := strconv.Atoi(val)
		if err != nil || n < 1 || n > 512 {
			return fmt.Errorf("-smp %s=%q: want 1-512", prop, val)
		}
		*dst = n
	}
	return nil
}

func (c *vmConfig) qemuObject(args *[]string) error {
	v, err := popArg(args, "-object")
	if err != nil {
		return err
	}
	items := strings.Split(v, ",")
	if items[0] != "rme-guest" {
		c.notes = append(c.notes, fmt.Sprintf("qemu -object %s ignored", items[0]))
		return nil
	}
	for _, item := range items[1:] {
		prop, val, ok := strings.Cut(item, "=")
		if !ok {
			return fmt.Errorf("cannot parse %q", item)
		}
		switch prop {
		case "measurement-algorithm":
			h, err := ParseHash(val)
			if err != nil {
				return err
			}
			c.host.Hash = &h
		case "measurement-log":
			if err := parseBool(&c.measurementLog, val); err != nil {
				return fmt.Errorf("measurement-log: %w", err)
			}
		case "personalization-value", "id":
			// The RPV is reported in the realm token, not measured.
		default:
			return fmt.Errorf("unsupported rme-guest property %q", prop)
		}
	}
	return nil
}

func (c *vmConfig) qemuMachine(args *[]string) error {
	v, err := popArg(args, "-machine")
	if err != nil {
		return err
	}
	for _, item := range strings.Split(v, ",") {
		prop, val, ok := strings.Cut(item, "=")
		if !ok {
			if item == "virt" {
				continue
			}
			return fmt.Errorf("machine %q: the realm layout modelled is QEMU's virt machine", item)
		}
		var b bool
		switch prop {
		case "gic-version":
			if val != "3" && val != "host" && val != "max" {
				return fmt.Errorf("GIC version %q: a realm has a GICv3", val)
			}
		case "its":
			err = parseBool(&c.its, val)
		case "acpi":
			err = parseBool(&b, val) // ACPI tables are not a realm's
		case "highmem":
			return fmt.Errorf("highmem: the realm layout modelled has the high memory regions")
		case "confidential-guest-support":
		default:
			c.notes = append(c.notes, fmt.Sprintf("qemu machine parameter %q ignored", prop))
		}
		if err != nil {
			return fmt.Errorf("%s: %w", prop, err)
		}
	}
	return nil
}

func (c *vmConfig) qemuCPU(args *[]string) error {
	v, err := popArg(args, "-cpu")
	if err != nil {
		return err
	}
	sve := c.host.SVEVL
	for _, item := range strings.Split(v, ",") {
		prop, val, ok := strings.Cut(item, "=")
		if !ok {
			if item == "host" {
				continue
			}
			return fmt.Errorf("CPU model %q: a realm runs on -cpu host", item)
		}
		num := func(dst **int) error {
			n, err := strconv.Atoi(val)
			if err != nil {
				return fmt.Errorf("%s=%q is not a number", prop, val)
			}
			restrict(dst, n)
			return nil
		}
		switch {
		case prop == "num-breakpoints":
			err = num(&c.host.NumBPs)
		case prop == "num-watchpoints":
			err = num(&c.host.NumWPs)
		case prop == "num-pmu-counters":
			err = num(&c.host.PMUNumCtrs)
		case prop == "pmu":
			pmu := c.host.PMU != nil && *c.host.PMU
			if err = parseBool(&pmu, val); err == nil {
				restrictBool(&c.host.PMU, pmu)
			}
		case prop == "sve":
			if val == "off" {
				zero := 0
				sve = &zero
			}
		case strings.HasPrefix(prop, "sve"):
			vl, perr := strconv.Atoi(prop[3:])
			if perr != nil {
				return fmt.Errorf("CPU property %q: want sveN=on|off", prop)
			}
			cur := 0
			if sve != nil {
				cur = *sve
			}
			if val == "off" && cur >= vl {
				h := vl / 2
				sve = &h
			} else if val == "on" && cur < vl {
				sve = &vl
			}
		default:
			c.notes = append(c.notes, fmt.Sprintf("qemu cpu parameter %q ignored", prop))
		}
		if err != nil {
			return err
		}
	}
	if sve != nil {
		if err := checkSVE(*sve); err != nil {
			return err
		}
		restrict(&c.host.SVEVL, *sve)
	}
	return c.host.Check()
}

// kvmtool's memory map (arm/include/arm-common/kvm-arch.h) and the realm
// DTB placement.
const (
	kvmtoolMemBase  = 0x80000000
	kvmtoolFDTLimit = kvmtoolMemBase + 256*MiB
	kvmtoolFDTAlign = 2 * MiB
	kvmtoolFDTSize  = 0x10000
	kvmtoolLogSize  = 64 * KiB
)

// kvmtoolOptions are lkvm run's options: whether each takes a value.
var kvmtoolOptions = map[string]bool{
	"name": true, "cpus": true, "mem": true, "disk": true, "balloon": false, "rng": false, "nodefaults": false,
	"9p": true, "console": true, "vsock": true, "dev": true, "tty": true, "hugetlbfs": true, "virtio-transport": true,
	"loglevel": true, "kernel": true, "initrd": true, "params": true, "firmware": true, "flash": true, "network": true,
	"no-dhcp": false, "vfio-pci": true, "debug": false, "debug-single-step": false, "debug-ioport": false,
	"debug-mmio": false, "debug-iodelay": true, "pmu": false, "disable-sve": false, "realm": false,
	"measurement-algo": true, "measurement-log": false, "realm-pv": true, "no-pvtime": false, "sve-max-vl": true,
	"pmu-counters": true, "vcpu-affinity": true, "disable-mte": false, "force-pci": false, "irqchip": true,
	"firmware-address": true, "dtb": true, "restricted_mem": false,
}

// kvmtoolShort are lkvm run's one-letter options.
var kvmtoolShort = map[byte]string{'c': "cpus", 'm': "mem", 'd': "disk", 'k': "kernel", 'i': "initrd", 'p': "params", 'f': "firmware", 'F': "flash", 'n': "network"}

// parseKvmtool reads an lkvm run command line (its options; "run" may
// come first).
func parseKvmtool(host Host, args []string) (*vmConfig, error) {
	c := &vmConfig{vmm: Kvmtool, host: host, memBase: kvmtoolMemBase}
	if len(args) > 0 && args[0] == "run" {
		args = args[1:]
	}
	opts := map[string]string{}
	all := map[string][]string{}
	set := map[string]bool{}
	rest, err := options{what: "kvmtool: ", takes: kvmtoolOptions, short: kvmtoolShort}.parse(args, func(name, val string) error {
		set[name], opts[name], all[name] = true, val, append(all[name], val)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("kvmtool: unexpected argument %q (options only)", rest[0])
	}
	if !set["realm"] {
		return nil, fmt.Errorf("kvmtool: no --realm: without it kvmtool launches a normal VM, which has no realm measurement")
	}
	if set["flash"] {
		return nil, fmt.Errorf("kvmtool --flash: a CFI flash image is not modelled")
	}
	if !set["cpus"] {
		return nil, fmt.Errorf("kvmtool: give the number of vCPUs (-c N): it sets the DTB")
	}
	if c.vcpus, err = strconv.Atoi(opts["cpus"]); err != nil || c.vcpus < 1 || c.vcpus > 512 {
		return nil, fmt.Errorf("kvmtool -c %q: want 1-512 vCPUs", opts["cpus"])
	}
	if !set["mem"] {
		return nil, fmt.Errorf("kvmtool: give the memory size (-m SIZE): its default depends on the host")
	}
	if strings.Contains(opts["mem"], "@") {
		return nil, fmt.Errorf("kvmtool -m %q: moving the RAM base is not modelled", opts["mem"])
	}
	if c.memSize, err = ParseMemorySize(opts["mem"]); err != nil {
		return nil, fmt.Errorf("kvmtool -m: %w", err)
	}
	if c.memSize%(2*MiB) != 0 {
		return nil, fmt.Errorf("kvmtool -m %s: a realm's RAM size is a multiple of 2 MiB", opts["mem"])
	}
	h := SHA256 // kvmtool's default
	if set["measurement-algo"] {
		if h, err = ParseHash(opts["measurement-algo"]); err != nil {
			return nil, fmt.Errorf("kvmtool --measurement-algo: %w", err)
		}
	}
	c.host.Hash = &h
	if set["pmu"] {
		restrictBool(&c.host.PMU, true)
	}
	if set["pmu-counters"] {
		n, err := strconv.Atoi(opts["pmu-counters"])
		if err != nil {
			return nil, fmt.Errorf("kvmtool --pmu-counters %q is not a number", opts["pmu-counters"])
		}
		restrict(&c.host.PMUNumCtrs, n)
	}
	if set["disable-sve"] {
		restrict(&c.host.SVEVL, 0)
	} else if set["sve-max-vl"] {
		n, err := strconv.Atoi(opts["sve-max-vl"])
		if err != nil {
			return nil, fmt.Errorf("kvmtool --sve-max-vl %q is not a number", opts["sve-max-vl"])
		}
		restrict(&c.host.SVEVL, n)
	}
	if err := c.host.Check(); err != nil {
		return nil, fmt.Errorf("kvmtool: %w", err)
	}
	// kvmtool's IPA width holds the top of RAM (at least 32 bits), plus
	// the bit of the unprotected half. realm-measurements 08aaf5a gives
	// max(ilog2(top), 32)+1, equal below 2 GiB of RAM; above, its width
	// leaves the top of RAM in the unprotected half, where no RIPAS can
	// be set.
	lastIPA := c.memBase + c.memSize - 1
	restrict(&c.host.IPABits, max(64-bits.LeadingZeros64(lastIPA), 32)+1)
	c.firmwareBase = c.memBase
	if set["firmware-address"] {
		if c.firmwareBase, err = strconv.ParseUint(opts["firmware-address"], 0, 64); err != nil {
			return nil, fmt.Errorf("kvmtool --firmware-address %q is not a number", opts["firmware-address"])
		}
	}
	c.kernel, c.initrd, c.firmware, c.measurementLog = set["kernel"], set["initrd"], set["firmware"], set["measurement-log"]
	c.bootargs, c.hasBootargs = kvmtoolBootargs, true
	if p := opts["params"]; p != "" {
		c.bootargs += " " + p
	}
	if err := c.kvmtoolDevices(opts, all, set); err != nil {
		return nil, err
	}
	return c, nil
}

// kvmtoolDevices reads what of the devices the DTB describes: the ITS
// (--irqchip) and, with --virtio-transport mmio, the virtio devices (each
// a DTB node; on PCI they are not in the DTB).
func (c *vmConfig) kvmtoolDevices(opts map[string]string, all map[string][]string, set map[string]bool) error {
	c.its = true
	switch opts["irqchip"] {
	case "", "gicv3-its":
	case "gicv3":
		c.its = false
	default:
		return fmt.Errorf("kvmtool --irqchip %q: a realm has gicv3 or gicv3-its", opts["irqchip"])
	}
	mmio := false
	switch opts["virtio-transport"] {
	case "", "pci":
	case "mmio":
		mmio = true
	default:
		return fmt.Errorf("kvmtool --virtio-transport %q: want pci or mmio", opts["virtio-transport"])
	}
	n := len(all["9p"]) + len(all["disk"])
	for _, f := range []string{"balloon", "rng", "vsock"} {
		if set[f] {
			n++
		}
	}
	if opts["console"] == "virtio" {
		n++
	}
	nets := 1 // kvmtool's default network device, unless mode=none
	for _, spec := range all["network"] {
		for _, item := range strings.Split(spec, ",") {
			k, v, ok := strings.Cut(item, "=")
			if !ok {
				return fmt.Errorf("kvmtool -n %q: malformed %q", spec, item)
			}
			switch {
			case k == "mode" && v == "none":
				nets = 0
			case k == "mode":
				nets++
			case k == "trans" && (v == "mmio") != mmio:
				return fmt.Errorf("kvmtool -n %q: a network device on another virtio transport than --virtio-transport is not modelled", spec)
			}
		}
	}
	if mmio {
		c.virtioMMIO = n + nets
	}
	return nil
}
