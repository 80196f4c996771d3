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

// kvmtoolDTB generates the device tree kvmtool gives a realm, as
// realm-measurements generates it (padded to 64 KiB).
func (c *vmConfig) kvmtoolDTB(initrdBase, initrdSize, logBase uint64) ([]byte, error) {
	w := newFDTWriter()
	w.begin("")
	w.propString("compatible", "linux,dummy-virt")
	w.propString("model", "linux,dummy-virt-realm")
	w.propU32("#address-cells", 2)
	w.propU32("#size-cells", 2)
	w.propU32("interrupt-parent", kvmtoolGICPhandle)
	w.begin("chosen")
	w.propString("bootargs", c.bootargs)
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
	w.begin("timer")
	var timer []uint32
	for _, irq := range []uint32{13, 14, 11} {
		timer = append(timer, irqPPI, irq, irqLevelLo)
	}
	w.propU32("interrupts", timer...)
	w.propNull("always-on")
	w.propString("compatible", "arm,armv8-timer", "arm,armv7-timer")
	w.end()
	if c.host.PMU != nil && *c.host.PMU {
		w.begin("pmu")
		w.propU32("interrupts", irqPPI, 7, irqLevelHi)
		w.propString("compatible", "arm,armv8-pmuv3")
		w.end()
	}
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
