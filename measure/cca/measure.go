package cca

import (
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
)

// Inputs are the images a realm is built from, as realm-measurements'
// -k, -i, -f and --dtb give them: Kernel an arm64 Image (decompressed),
// DTB the device tree the VMM generates for this command line, measured as
// it is (nil: generated).
type Inputs struct {
	Kernel, Initrd, Firmware, DTB []byte
}

// Step is one call of the host that extended the RIM.
type Step struct {
	Call     string `json:"call"` // RMI_REALM_CREATE, RMI_RTT_INIT_RIPAS, RMI_DATA_CREATE, RMI_REC_CREATE
	What     string `json:"what"`
	Base     uint64 `json:"base"`
	Size     uint64 `json:"size,omitempty"`
	Granules int    `json:"granules,omitempty"`
}

// Result is a realm's measurements and how they were reached.
type Result struct {
	VMM    string      `json:"vmm"`
	Hash   Hash        `json:"-"`
	Params RealmParams `json:"realm_params"`
	VCPUs  int         `json:"vcpus"`
	// RIM and REMs are hash-size bytes.
	RIM  []byte    `json:"-"`
	REMs [4][]byte `json:"-"`
	// REC is the runnable REC's entry point and arguments.
	REC   REC    `json:"rec"`
	Steps []Step `json:"steps"`
	// Measured names the images in the RIM: kernel, initrd, firmware,
	// DTB. Unused are those given that the command line does not load.
	Measured []string `json:"measured"`
	Unused   []string `json:"unused,omitempty"`
	// DTB is the device tree measured: the one given, or the one
	// generated (DTBGenerated) when none was.
	DTB          []byte `json:"-"`
	DTBGenerated bool   `json:"dtb_generated"`
	// Chosen is the DTB's /chosen node: the kernel command line the RIM
	// commits to, and the initrd placement (checked against the layout).
	Chosen Chosen `json:"dtb_chosen"`
	// Notes say what the command line holds that the model ignores, and
	// what the REMs do not include.
	Notes []string `json:"notes,omitempty"`
}

// blob is an image the host loads with measured DATA_CREATE calls.
type blob struct {
	what string
	addr uint64
	data []byte
}

// Measure computes the RIM (and the launch REMs) of a realm that vmm
// ("qemu" or "kvmtool") builds from vmmArgs (the VMM's own arguments)
// on a host with the capabilities host.
func Measure(host Host, vmm string, vmmArgs []string, in Inputs) (*Result, error) {
	if err := host.Check(); err != nil {
		return nil, err
	}
	var c *vmConfig
	var err error
	var unused []string
	switch vmm {
	case QEMU:
		c, err = parseQEMU(host, vmmArgs)
	case Kvmtool:
		c, err = parseKvmtool(host, vmmArgs)
	default:
		return nil, fmt.Errorf("VMM %q: want qemu or kvmtool", vmm)
	}
	if err != nil {
		return nil, err
	}
	for _, x := range []struct {
		used  bool
		given []byte
		opt   string
	}{{c.kernel, in.Kernel, "kernel (-k)"}, {c.initrd, in.Initrd, "initrd (-i)"}, {c.firmware, in.Firmware, "firmware (-f)"}} {
		if x.used && x.given == nil {
			return nil, fmt.Errorf("the %s command line loads a %s: give its file", vmm, x.opt)
		}
		if !x.used && x.given != nil {
			c.notes = append(c.notes, fmt.Sprintf("the %s is not on the %s command line, so it is not loaded into the realm", x.opt, vmm))
			unused = append(unused, strings.Fields(x.opt)[0])
		}
	}
	var kernel ImageHeader
	if c.kernel {
		if kernel, err = ParseImageHeader(in.Kernel); err != nil {
			return nil, fmt.Errorf("kernel: %w", err)
		}
	}
	var blobs []blob
	var rec REC
	var logBase uint64
	if c.kernel && (kernel.TextOffset >= c.memSize || kernel.ImageSize > c.memSize-kernel.TextOffset) {
		return nil, fmt.Errorf("kernel: text offset %#x and image size %#x do not fit in %d MiB of RAM", kernel.TextOffset, kernel.ImageSize, c.memSize/MiB)
	}
	switch vmm {
	case QEMU:
		blobs, rec, logBase = c.qemuLayout(kernel, in)
	case Kvmtool:
		if blobs, rec, logBase, err = c.kvmtoolLayout(kernel, in); err != nil {
			return nil, err
		}
	}
	var dtb []byte
	for _, b := range blobs {
		if b.what == "DTB" {
			dtb = b.data
		}
	}
	chosen, err := ReadChosen(dtb)
	if err != nil {
		return nil, err
	}
	rp, err := c.host.realmParams()
	if err != nil {
		return nil, err
	}
	r, err := NewRealm(rp)
	if err != nil {
		return nil, err
	}
	// The realm's protected IPA space is the lower half of 2^s2sz.
	limit := uint64(1) << (rp.S2SZ - 1)
	if c.memBase+c.memSize > limit {
		return nil, fmt.Errorf("RAM up to %#x does not fit in the protected half of a %d-bit IPA space (%#x): raise --ipa-bits or lower the memory", c.memBase+c.memSize, rp.S2SZ, limit)
	}
	for _, b := range blobs {
		if b.addr+uint64(len(b.data)) > limit {
			return nil, fmt.Errorf("the %s at %#x does not fit in the protected half of a %d-bit IPA space", b.what, b.addr, rp.S2SZ)
		}
	}
	if err := c.checkChosen(chosen); err != nil {
		return nil, err
	}
	res := &Result{VMM: vmm, Hash: rp.Hash, Params: rp, VCPUs: c.vcpus, REC: rec, Notes: c.notes, Unused: unused, Chosen: chosen,
		DTB: dtb, DTBGenerated: in.DTB == nil}
	res.Steps = append(res.Steps, Step{Call: "RMI_REALM_CREATE", What: "realm parameters"})
	base := c.memBase &^ (Granule - 1)
	top := alignUp(base+c.memSize-1, Granule)
	if err := r.InitRIPAS(base, top); err != nil {
		return nil, err
	}
	res.Steps = append(res.Steps, Step{Call: "RMI_RTT_INIT_RIPAS", What: "RAM", Base: base, Size: top - base})
	sort.SliceStable(blobs, func(i, j int) bool { return blobs[i].addr < blobs[j].addr })
	for i, b := range blobs {
		// The RMM refuses a second DATA_CREATE of a granule.
		if p := blobs[max(i-1, 0)]; i > 0 && alignUp(p.addr+uint64(len(p.data)), Granule) > b.addr&^(Granule-1) {
			return nil, fmt.Errorf("the %s (%#x, %d bytes) and the %s (%#x) share a granule: no realm loads them so", p.what, p.addr, len(p.data), b.what, b.addr)
		}
		res.Measured = append(res.Measured, b.what)
		n := r.DataCreate(b.addr, b.data)
		res.Steps = append(res.Steps, Step{Call: "RMI_DATA_CREATE", What: b.what, Base: b.addr, Size: uint64(len(b.data)), Granules: n})
	}
	r.RECCreate(rec)
	res.Steps = append(res.Steps, Step{Call: "RMI_REC_CREATE", What: "boot vCPU (runnable)", Base: rec.PC})
	if c.measurementLog {
		size := map[string]uint64{QEMU: qemuLogSize, Kvmtool: kvmtoolLogSize}[vmm]
		r.DataCreateUnmeasured(logBase, size)
		res.Steps = append(res.Steps, Step{Call: "RMI_DATA_CREATE", What: "measurement log (unmeasured)", Base: logBase, Size: size, Granules: int(size / Granule)})
	}
	res.RIM = r.RIM()
	for i := range res.REMs {
		res.REMs[i] = r.REM(i)
	}
	if c.vcpus > 1 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d vCPUs: only the boot vCPU's REC is runnable and measured; the others are started by PSCI", c.vcpus))
	}
	return res, nil
}

// qemuLayout places the images as QEMU's virt machine does for a realm:
// the kernel at the base of RAM plus its text offset, the initrd after it
// (at least half of RAM, at most 128 MiB, above the base), the DTB at the
// next 2 MiB boundary; with -bios, the firmware at 0, the DTB at the base
// of RAM, and the kernel and initrd left to the firmware (fw_cfg), outside
// the RIM.
func (c *vmConfig) qemuLayout(k ImageHeader, in Inputs) ([]blob, REC, uint64) {
	var blobs []blob
	dtb := uint64(qemuMemBase)
	var initrd, initrdSize uint64
	if c.kernel {
		kstart := qemuMemBase + k.TextOffset
		initrd = max(qemuMemBase+min(c.memSize/2, 128*MiB), kstart+k.ImageSize)
		initrd = alignUp(initrd, 4*KiB)
		if c.initrd {
			initrdSize = uint64(len(in.Initrd))
		}
		if c.firmware {
			c.notes = append(c.notes, "with -bios the firmware loads the kernel and initrd (fw_cfg): they are not in the RIM, and the REMs the firmware extends at run time with them are not modelled (the values here are the REMs at launch)")
		} else {
			blobs = append(blobs, blob{"kernel", kstart, in.Kernel})
			if c.initrd {
				blobs = append(blobs, blob{"initrd", initrd, in.Initrd})
			}
		}
		dtb = alignUp(initrd+initrdSize, 2*MiB)
	}
	rec := REC{Runnable: true, PC: qemuMemBase}
	rec.GPRs[0] = dtb
	if c.firmware {
		blobs = append(blobs, blob{"firmware", 0, in.Firmware})
		dtb = qemuMemBase
		rec = REC{Runnable: true}
	}
	logBase := dtb + qemuDTBSize
	fdt := in.DTB
	if fdt == nil {
		// QEMU's DTB tells the kernel where the initrd is, also when the
		// firmware loads them.
		fdt = c.qemuDTB(initrd, initrdSize, logBase)
	}
	blobs = append(blobs, blob{"DTB", dtb, fdt})
	c.initrdBase, c.initrdSize = initrd, initrdSize
	return blobs, rec, logBase
}

// kvmtoolLayout places the images as kvmtool does for a realm: the DTB
// (64 KiB) 2 MiB-aligned below min(end of RAM, 2.25 GiB) (and below the
// measurement log), the initrd just below it, the kernel at the base of
// RAM plus its text offset, the firmware at --firmware-address (default
// the base of RAM); x0 holds the DTB's address.
func (c *vmConfig) kvmtoolLayout(k ImageHeader, in Inputs) ([]blob, REC, uint64, error) {
	dtb := min(c.memBase+c.memSize, kvmtoolFDTLimit)
	var logBase uint64
	if c.measurementLog {
		logBase = dtb - kvmtoolLogSize
		dtb -= kvmtoolLogSize
	}
	dtb = alignUp(dtb-(kvmtoolFDTAlign+kvmtoolFDTSize), kvmtoolFDTAlign)
	var blobs []blob
	rec := REC{Runnable: true}
	if c.kernel {
		rec.PC = c.memBase
		blobs = append(blobs, blob{"kernel", c.memBase + k.TextOffset, in.Kernel})
	}
	var initrdBase, initrdSize uint64
	if c.initrd {
		if uint64(len(in.Initrd))+4 > dtb-c.memBase {
			return nil, REC{}, 0, fmt.Errorf("kvmtool: an initrd of %d bytes does not fit below the DTB at %#x", len(in.Initrd), dtb)
		}
		initrdBase, initrdSize = alignUp(dtb-uint64(len(in.Initrd))-4, 4), uint64(len(in.Initrd))
		blobs = append(blobs, blob{"initrd", initrdBase, in.Initrd})
	}
	c.initrdBase, c.initrdSize = initrdBase, initrdSize
	fdt := in.DTB
	if fdt == nil {
		var err error
		if fdt, err = c.kvmtoolDTB(initrdBase, initrdSize, logBase); err != nil {
			return nil, REC{}, 0, err
		}
	}
	if c.firmware {
		rec.PC = c.firmwareBase
		blobs = append(blobs, blob{"firmware", c.firmwareBase, in.Firmware})
	}
	rec.GPRs[0] = dtb
	blobs = append(blobs, blob{"DTB", dtb, fdt})
	return blobs, rec, logBase, nil
}

// Padded returns a measurement as realm-measurements prints it: 64 bytes
// of lowercase hex, a SHA-256 value followed by zeros.
func Padded(m []byte) string {
	var b [MeasurementWidth]byte
	copy(b[:], m)
	return hex.EncodeToString(b[:])
}

// checkChosen checks the initrd placement the DTB tells the kernel
// against where the VMM loads the initrd: a DTB generated for another
// command line (other memory size, initrd) fails here rather than giving a
// RIM no realm reaches.
func (c *vmConfig) checkChosen(ch Chosen) error {
	switch {
	case ch.HasInitrd && !c.initrd:
		return fmt.Errorf("the DTB's /chosen names an initrd at %#x-%#x, but the command line loads none: give the DTB the VMM generates for this command line", ch.InitrdStart, ch.InitrdEnd)
	case ch.HasInitrd && (ch.InitrdStart != c.initrdBase || ch.InitrdEnd != c.initrdBase+c.initrdSize):
		return fmt.Errorf("the DTB's /chosen places the initrd at %#x-%#x, the VMM loads it at %#x-%#x: give the DTB the VMM generates for this command line and initrd",
			ch.InitrdStart, ch.InitrdEnd, c.initrdBase, c.initrdBase+c.initrdSize)
	}
	return nil
}
