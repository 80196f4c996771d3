package cca

import (
	"encoding/binary"
	"fmt"
)

// fdtWriter writes a flattened device tree as the vm-fdt crate does
// (which realm-measurements uses to write the DTB kvmtool generates):
// header, an empty memory reservation block, the structure block, then
// the strings block, each property name stored once, in the order of
// first use.
type fdtWriter struct {
	st      []byte
	strs    []byte
	offsets map[string]uint32
}

func newFDTWriter() *fdtWriter { return &fdtWriter{offsets: map[string]uint32{}} }

func (w *fdtWriter) u32(v uint32) { w.st = binary.BigEndian.AppendUint32(w.st, v) }

func (w *fdtWriter) pad() {
	for len(w.st)%4 != 0 {
		w.st = append(w.st, 0)
	}
}

func (w *fdtWriter) begin(name string) {
	w.u32(fdtBeginNode)
	w.st = append(append(w.st, name...), 0)
	w.pad()
}

func (w *fdtWriter) end() { w.u32(fdtEndNode) }

func (w *fdtWriter) prop(name string, val []byte) {
	off, ok := w.offsets[name]
	if !ok {
		off = uint32(len(w.strs))
		w.offsets[name] = off
		w.strs = append(append(w.strs, name...), 0)
	}
	w.u32(fdtProp)
	w.u32(uint32(len(val)))
	w.u32(off)
	w.st = append(w.st, val...)
	w.pad()
}

func (w *fdtWriter) propNull(name string) { w.prop(name, nil) }

func (w *fdtWriter) propString(name string, vals ...string) {
	var b []byte
	for _, v := range vals {
		b = append(append(b, v...), 0)
	}
	w.prop(name, b)
}

func (w *fdtWriter) propU32(name string, vals ...uint32) {
	var b []byte
	for _, v := range vals {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	w.prop(name, b)
}

func (w *fdtWriter) propU64(name string, vals ...uint64) {
	var b []byte
	for _, v := range vals {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	w.prop(name, b)
}

// finish returns the blob: a 40-byte header, the 16-byte empty memory
// reservation block, the structure block and the strings block.
func (w *fdtWriter) finish() []byte {
	w.u32(fdtEnd)
	const hdr, rsv = 40, 16
	be := binary.BigEndian
	b := make([]byte, hdr+rsv, hdr+rsv+len(w.st)+len(w.strs))
	b = append(append(b, w.st...), w.strs...)
	for i, v := range []uint32{0xd00dfeed, uint32(len(b)), hdr + rsv, uint32(hdr + rsv + len(w.st)), hdr, 17, 16, 0, uint32(len(w.strs)), uint32(len(w.st))} {
		be.PutUint32(b[4*i:], v)
	}
	return b
}

// FDT interrupt specifier values (GICv3 binding).
const (
	irqSPI       = 0
	irqPPI       = 1
	irqEdgeLoHi  = 1
	irqLevelHi   = 4
	irqLevelLo   = 8
	pciRangeIO   = 0x01000000
	pciRangeMMIO = 0x02000000
)

// kvmtool's device tree parameters (arm/fdt.c and the realm layout).
const (
	kvmtoolUARTBase       = 0x01000000
	kvmtoolUARTSize       = 8
	kvmtoolUARTStride     = 0x1000
	kvmtoolRTCBase        = 0x01010000
	kvmtoolRTCSize        = 2
	kvmtoolVirtioMMIOBase = 0x03000000
	kvmtoolVirtioMMIOSize = 0x200
	kvmtoolPCICfgBase     = 0x40000000
	kvmtoolPCICfgSize     = 1 << 28
	kvmtoolPCIMMIOBase    = kvmtoolPCICfgBase + kvmtoolPCICfgSize
	kvmtoolGICDistBase    = 0x3fff0000
	kvmtoolGICDistSize    = 0x10000
	kvmtoolGICRedistSize  = 0x20000
	kvmtoolGICITSSize     = 128 * KiB
	kvmtoolGICPhandle     = 1
	kvmtoolITSPhandle     = 2
	kvmtoolBootargs       = " console=hvc0 root=/dev/vda rw "
)

// dtbCommon writes what starts both VMMs' device trees as
// realm-measurements writes them: the chosen node (command line, initrd),
// memory, CPUs and PSCI.
func (c *vmConfig) dtbCommon(w *fdtWriter, initrdBase, initrdSize uint64) {
	w.begin("chosen")
	if c.hasBootargs {
		w.propString("bootargs", c.bootargs)
	}
	if initrdSize != 0 {
		w.propU64("linux,initrd-start", initrdBase)
		w.propU64("linux,initrd-end", initrdBase+initrdSize)
	}
	w.end()
	w.begin(fmt.Sprintf("memory@%x", c.memBase))
	w.propString("device_type", "memory")
	w.propU64("reg", c.memBase, c.memSize)
	w.end()
	w.begin("cpus")
	w.propU32("#size-cells", 0)
	w.propU32("#address-cells", 1)
	for i := range c.vcpus {
		w.begin(fmt.Sprintf("cpu@%d", i))
		w.propU32("reg", uint32(i))
		w.propString("enable-method", "psci")
		w.propString("compatible", "arm,armv8")
		w.propString("device_type", "cpu")
		w.end()
	}
	w.end()
	w.begin("psci")
	w.propU32("cpu_on", 0xc4000003)
	w.propU32("cpu_off", 0x84000002)
	w.propString("method", "smc")
	w.propString("compatible", "arm,psci-1.0", "arm,psci-0.2", "arm,psci")
	w.end()
}

// dtbTimer writes the architected timer: the secure, non-secure and
// virtual timer PPIs with the VMM's trigger.
func dtbTimer(w *fdtWriter, trigger uint32) {
	w.begin("timer")
	var timer []uint32
	for _, irq := range []uint32{13, 14, 11} {
		timer = append(timer, irqPPI, irq, trigger)
	}
	w.propU32("interrupts", timer...)
	w.propNull("always-on")
	w.propString("compatible", "arm,armv8-timer", "arm,armv7-timer")
	w.end()
}

// dtbPMU writes the PMU node when the realm has a PMU.
func (c *vmConfig) dtbPMU(w *fdtWriter) {
	if c.host.PMU != nil && *c.host.PMU {
		w.begin("pmu")
		w.propU32("interrupts", irqPPI, 7, irqLevelHi)
		w.propString("compatible", "arm,armv8-pmuv3")
		w.end()
	}
}

// dtbRoot begins the root node.
func dtbRoot(w *fdtWriter, gicPhandle uint32) {
	w.begin("")
	w.propString("compatible", "linux,dummy-virt")
	w.propString("model", "linux,dummy-virt-realm")
	w.propU32("#address-cells", 2)
	w.propU32("#size-cells", 2)
	w.propU32("interrupt-parent", gicPhandle)
}

// kvmtoolDTB generates the device tree kvmtool gives a realm, as
// realm-measurements generates it (padded to 64 KiB).
func (c *vmConfig) kvmtoolDTB(initrdBase, initrdSize, logBase uint64) ([]byte, error) {
	w := newFDTWriter()
	dtbRoot(w, kvmtoolGICPhandle)
	c.dtbCommon(w, initrdBase, initrdSize)

	redistSize := uint64(c.vcpus) * kvmtoolGICRedistSize
	redistBase := uint64(kvmtoolGICDistBase) - redistSize
	w.begin("intc")
	w.propString("compatible", "arm,gic-v3")
	w.propU32("#interrupt-cells", 3)
	w.propNull("interrupt-controller")
	w.propU64("reg", kvmtoolGICDistBase, kvmtoolGICDistSize, redistBase, redistSize)
	w.propU32("phandle", kvmtoolGICPhandle)
	w.propU32("#address-cells", 2)
	w.propU32("#size-cells", 2)
	w.propNull("ranges")
	if c.its {
		w.begin("msic")
		w.propString("compatible", "arm,gic-v3-its")
		w.propNull("msi-controller")
		w.propU32("phandle", kvmtoolITSPhandle)
		w.propU64("reg", redistBase-kvmtoolGICITSSize, kvmtoolGICITSSize)
		w.end()
	}
	w.end()
	if c.measurementLog {
		w.begin("reserved-memory")
		w.propU32("#address-cells", 2)
		w.propU32("#size-cells", 2)
		w.propNull("ranges")
		w.begin(fmt.Sprintf("event-log@%x", logBase))
		w.propString("compatible", "cc-event-log")
		w.propU64("reg", logBase, kvmtoolLogSize)
		w.end()
		w.end()
	}
	dtbTimer(w, irqLevelLo)
	c.dtbPMU(w)
	for i := range uint32(4) {
		addr := uint64(kvmtoolUARTBase) + uint64(i)*kvmtoolUARTStride
		w.begin(fmt.Sprintf("U6_16550A@%x", addr))
		w.propString("compatible", "ns16550a")
		w.propU64("reg", addr, kvmtoolUARTSize)
		w.propU32("interrupts", irqSPI, i, irqLevelHi)
		w.propU32("clock-frequency", 1843200)
		w.end()
	}
	for i := range uint32(c.virtioMMIO) {
		addr := uint64(kvmtoolVirtioMMIOBase) + uint64(i)*kvmtoolVirtioMMIOSize
		w.begin(fmt.Sprintf("virtio@%x", addr))
		w.propString("compatible", "virtio,mmio")
		w.propU64("reg", addr, kvmtoolVirtioMMIOSize)
		w.propNull("dma-coherent")
		w.propU32("interrupts", irqSPI, 4+i, irqEdgeLoHi)
		w.end()
	}
	w.begin(fmt.Sprintf("rtc@%x", kvmtoolRTCBase))
	w.propString("compatible", "motorola,mc146818")
	w.propU64("reg", kvmtoolRTCBase, kvmtoolRTCSize)
	w.end()
	w.begin(fmt.Sprintf("pci@%x", kvmtoolPCICfgBase))
	w.propString("device_type", "pci")
	w.propU32("#address-cells", 3)
	w.propU32("#size-cells", 2)
	w.propNull("dma-coherent")
	w.propU32("bus-range", 0, 0)
	w.propString("compatible", "pci-host-ecam-generic")
	w.propU64("reg", kvmtoolPCICfgBase, kvmtoolPCICfgSize)
	w.propU32("ranges", pciRangeIO, 0, 0, 0, 0, 0, 0x10000,
		pciRangeMMIO, 0, kvmtoolPCIMMIOBase, 0, kvmtoolPCIMMIOBase, 0, uint32(kvmtoolMemBase-kvmtoolPCIMMIOBase))
	var irqMap []uint32
	for i := range uint32(32) {
		irqMap = append(irqMap, (i<<3)<<8, 0, 0, 1, kvmtoolGICPhandle, 0, 0, irqSPI, 64+i, irqLevelHi)
	}
	w.propU32("interrupt-map", irqMap...)
	w.propU32("interrupt-map-mask", 0x1f<<3<<8, 0, 0, 7)
	w.propU32("#interrupt-cells", 1)
	if c.its {
		w.propU32("msi-map", 0, kvmtoolITSPhandle, 0, 0x10000)
	}
	w.end()
	w.end()
	b := w.finish()
	if len(b) > kvmtoolFDTSize {
		return nil, fmt.Errorf("the generated DTB has %d bytes, more than kvmtool's %d", len(b), kvmtoolFDTSize)
	}
	return append(b, make([]byte, kvmtoolFDTSize-len(b))...), nil
}

// QEMU virt machine addresses and interrupts (hw/arm/virt.c), as
// realm-measurements' DTB has them.
const (
	qemuGICDistBase    = 0x08000000
	qemuGICDistSize    = 0x00010000
	qemuGICITSBase     = 0x08080000
	qemuGICITSSize     = 0x00020000
	qemuGICRedistBase  = 0x080a0000
	qemuGICRedistSize  = 0x00f60000
	qemuUARTBase       = 0x09000000
	qemuUARTSize       = 0x00001000
	qemuRTCBase        = 0x09010000
	qemuRTCSize        = 0x00001000
	qemuFWCfgBase      = 0x09020000
	qemuFWCfgSize      = 0x00000018
	qemuVirtioMMIOBase = 0x0a000000
	qemuVirtioMMIOSize = 0x00000200
	qemuPlatformBase   = 0x0c000000
	qemuPlatformSize   = 0x02000000
	qemuPCIMMIOBase    = 0x10000000
	qemuPCIMMIOSize    = 0x2eff0000
	qemuPCIIOBase      = 0x3eff0000
	qemuPCIIOSize      = 0x00010000
	qemuBasePhandle    = 0x8000
	qemuSPIUART        = 1
	qemuSPIRTC         = 2
	qemuSPIPCIe        = 3
	qemuSPIMMIO        = 16
	pciRangeMMIO64     = 0x03000000
)

// qemuDTB generates the device tree of a QEMU virt realm as
// realm-measurements generates it (after QEMU 9.1's).
func (c *vmConfig) qemuDTB(initrdBase, initrdSize, logBase uint64) []byte {
	clock := uint32(qemuBasePhandle)
	gic := qemuBasePhandle + uint32(c.vcpus) + 1
	its := gic + 1
	w := newFDTWriter()
	dtbRoot(w, gic)
	c.dtbCommon(w, initrdBase, initrdSize)

	w.begin(fmt.Sprintf("platform-bus@%x", qemuPlatformBase))
	w.propU32("interrupt-parent", gic)
	w.propU32("ranges", 0, 0, qemuPlatformBase, qemuPlatformSize)
	w.propU32("#address-cells", 1)
	w.propU32("#size-cells", 1)
	w.propString("compatible", "qemu,platform", "simple-bus")
	w.end()
	if c.measurementLog {
		w.begin("reserved-memory")
		w.propNull("ranges")
		w.propU32("#size-cells", 2)
		w.propU32("#address-cells", 2)
		w.begin(fmt.Sprintf("event-log@%x", logBase))
		w.propU64("reg", logBase, qemuLogSize)
		w.propString("compatible", "cc-event-log")
		w.end()
		w.end()
	}
	w.begin(fmt.Sprintf("fw-cfg@%x", qemuFWCfgBase))
	w.propNull("dma-coherent")
	w.propU64("reg", qemuFWCfgBase, qemuFWCfgSize)
	w.propString("compatible", "qemu,fw-cfg-mmio")
	w.end()
	for i := range uint32(32) {
		addr := uint64(qemuVirtioMMIOBase) + uint64(i)*qemuVirtioMMIOSize
		w.begin(fmt.Sprintf("virtio_mmio@%x", addr))
		w.propNull("dma-coherent")
		w.propU32("interrupts", irqSPI, qemuSPIMMIO+i, irqEdgeLoHi)
		w.propU64("reg", addr, qemuVirtioMMIOSize)
		w.propString("compatible", "virtio,mmio")
		w.end()
	}
	w.begin(fmt.Sprintf("pcie@%x", qemuPCIMMIOBase))
	var irqMap []uint32
	for dev := range uint32(4) {
		for pin := range uint32(4) {
			irqMap = append(irqMap, (dev<<3)<<8, 0, 0, pin+1, gic, 0, 0, irqSPI, qemuSPIPCIe+(pin+dev)%4, irqLevelHi)
		}
	}
	w.propU32("interrupt-map", irqMap...)
	w.propU32("interrupt-map-mask", 3<<3<<8, 0, 0, 7)
	w.propU32("#interrupt-cells", 1)
	hi := func(v uint64) uint32 { return uint32(v >> 32) }
	lo := func(v uint64) uint32 { return uint32(v) }
	w.propU32("ranges", pciRangeIO, 0, 0, 0, qemuPCIIOBase, 0, qemuPCIIOSize,
		pciRangeMMIO, 0, qemuPCIMMIOBase, 0, qemuPCIMMIOBase, 0, qemuPCIMMIOSize,
		pciRangeMMIO64, hi(c.qemuHighPCIMMIO), lo(c.qemuHighPCIMMIO), hi(c.qemuHighPCIMMIO), lo(c.qemuHighPCIMMIO), hi(qemuHighPCIMMIOSize), lo(qemuHighPCIMMIOSize))
	w.propU64("reg", c.qemuHighPCICfg, qemuHighPCICfgSize)
	if c.its {
		w.propU32("msi-map", 0, its, 0, 0x10000)
	}
	w.propNull("dma-coherent")
	w.propU32("bus-range", 0, 0xff)
	w.propU32("linux,pci-domain", 0)
	w.propU32("#size-cells", 2)
	w.propU32("#address-cells", 3)
	w.propString("device_type", "pci")
	w.propString("compatible", "pci-host-ecam-generic")
	w.end()
	w.begin(fmt.Sprintf("pl031@%x", qemuRTCBase))
	w.propString("clock-names", "apb_pclk")
	w.propU64("reg", qemuRTCBase, qemuRTCSize)
	w.propU32("clocks", clock)
	w.propU32("interrupts", irqSPI, qemuSPIRTC, irqLevelHi)
	w.propString("compatible", "arm,pl031", "arm,primecell")
	w.end()
	w.begin(fmt.Sprintf("pl011@%x", qemuUARTBase))
	w.propString("clock-names", "uartclk", "apb_pclk")
	w.propU64("reg", qemuUARTBase, qemuUARTSize)
	w.propU32("clocks", clock, clock)
	w.propU32("interrupts", irqSPI, qemuSPIUART, irqLevelHi)
	w.propString("compatible", "arm,pl011", "arm,primecell")
	w.end()
	c.dtbPMU(w)
	gicRegs := []uint64{qemuGICDistBase, qemuGICDistSize, qemuGICRedistBase, qemuGICRedistSize}
	if c.vcpus > qemuGICRedistSize/0x20000 {
		gicRegs = append(gicRegs, c.qemuHighRedist, qemuHighRedistSize)
	}
	w.begin(fmt.Sprintf("intc@%x", qemuGICDistBase))
	w.propU32("phandle", gic)
	w.propU64("reg", gicRegs...)
	w.propU32("#redistributor-regions", uint32(len(gicRegs)-2)/2)
	w.propString("compatible", "arm,gic-v3")
	w.propNull("ranges")
	w.propU32("#size-cells", 2)
	w.propU32("#address-cells", 2)
	w.propNull("interrupt-controller")
	w.propU32("#interrupt-cells", 3)
	if c.its {
		w.begin(fmt.Sprintf("its@%x", qemuGICITSBase))
		w.propU32("phandle", its)
		w.propU64("reg", qemuGICITSBase, qemuGICITSSize)
		w.propU32("#msi-cells", 1)
		w.propNull("msi-controller")
		w.propString("compatible", "arm,gic-v3-its")
		w.end()
	}
	w.end()
	dtbTimer(w, irqLevelHi)
	w.begin("apb-pclk")
	w.propU32("phandle", clock)
	w.propString("clock-output-names", "clk24mhz")
	w.propU32("clock-frequency", 24000000)
	w.propU32("#clock-cells", 0)
	w.propString("compatible", "fixed-clock")
	w.end()
	w.end()
	return w.finish()
}
