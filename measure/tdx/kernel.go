package tdx

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// QEMUVersion is a QEMU release, e.g. 10.2 or 8.2.2.
type QEMUVersion struct{ Major, Minor, Micro int }

// DefaultQEMUVersion is the QEMU release assumed when none is given.
var DefaultQEMUVersion = QEMUVersion{10, 2, 0}

// unpatchedKernelSince is the first QEMU release whose fw_cfg serves OVMF the
// kernel as given ("etc/boot/kernel"), without the setup-header patches.
var unpatchedKernelSince = QEMUVersion{10, 2, 0}

// ParseQEMUVersion parses "MAJOR.MINOR[.MICRO]".
func ParseQEMUVersion(s string) (QEMUVersion, error) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return QEMUVersion{}, fmt.Errorf("QEMU version %q: want MAJOR.MINOR or MAJOR.MINOR.MICRO, e.g. 10.2 or 8.2.2", s)
	}
	var v [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 1000 {
			return QEMUVersion{}, fmt.Errorf("QEMU version %q: %q is not a version number, want e.g. 10.2 or 8.2.2", s, p)
		}
		v[i] = n
	}
	return QEMUVersion{v[0], v[1], v[2]}, nil
}

// String returns "MAJOR.MINOR" or "MAJOR.MINOR.MICRO".
func (v QEMUVersion) String() string {
	if v.Micro == 0 {
		return fmt.Sprintf("%d.%d", v.Major, v.Minor)
	}
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Micro)
}

// MarshalText returns String.
func (v QEMUVersion) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// Less reports whether v is an earlier release than w.
func (v QEMUVersion) Less(w QEMUVersion) bool {
	if v.Major != w.Major {
		return v.Major < w.Major
	}
	if v.Minor != w.Minor {
		return v.Minor < w.Minor
	}
	return v.Micro < w.Micro
}

// PatchesKernelHeader reports whether this QEMU hands OVMF the kernel with
// its setup header patched (releases before 10.2), which changes the
// kernel's Authenticode digest in RTMR1.
func (v QEMUVersion) PatchesKernelHeader() bool { return v.Less(unpatchedKernelSince) }

// DefaultACPIDataSize is the room QEMU keeps below the top of low memory for
// ACPI tables on current q35 machine types (0x20000 + 0x8000); the initrd is
// placed below it.
const DefaultACPIDataSize = 0x28000

// Linux x86 boot protocol offsets (Documentation/arch/x86/boot.rst).
const (
	hdrSetupSects    = 0x1f1
	hdrVidMode       = 0x1fa
	hdrMagic         = 0x202
	hdrVersion       = 0x206
	hdrTypeOfLoader  = 0x210
	hdrLoadflags     = 0x211
	hdrRamdiskImage  = 0x218
	hdrRamdiskSize   = 0x21c
	hdrHeapEndPtr    = 0x224
	hdrCmdLinePtr    = 0x228
	hdrInitrdAddrMax = 0x22c
	hdrXLoadflags    = 0x236
	hdrOldCmdMagic   = 0x20
	hdrOldCmdOffset  = 0x22

	loadedHigh            = 0x01
	canUseHeap            = 0x80
	xlfCanBeLoadedAbove4G = 1 << 1
	qemuLoaderType        = 0xb0
	qemuHeaderBytes       = 8192 // QEMU reads and patches at most this much of the setup
)

// KernelHeader describes the setup-header fields QEMU writes.
type KernelHeader struct {
	Protocol     uint16 `json:"protocol"`
	TypeOfLoader uint8  `json:"type_of_loader"`
	Loadflags    uint8  `json:"loadflags"`
	HeapEndPtr   uint16 `json:"heap_end_ptr"`
	CmdLinePtr   uint32 `json:"cmd_line_ptr"`
	RamdiskImage uint32 `json:"ramdisk_image"`
	RamdiskSize  uint32 `json:"ramdisk_size"`
}

// QEMUKernel holds the inputs of QEMU's x86 Linux loader (x86_load_linux).
type QEMUKernel struct {
	Kernel       []byte
	Initrd       []byte // nil: no -initrd
	Cmdline      string
	Memory       uint64 // guest RAM in bytes (q35 split applies)
	ACPIDataSize uint64 // 0 means DefaultACPIDataSize
}

// PatchKernel returns a copy of the kernel with its setup header patched as
// QEMU releases before 10.2 serve it to OVMF over fw_cfg, and the values it
// wrote. It does not modify k.Kernel.
func PatchKernel(k QEMUKernel) ([]byte, KernelHeader, error) {
	kern := k.Kernel
	var h KernelHeader
	if len(kern) < hdrXLoadflags+2 {
		return nil, h, fmt.Errorf("kernel is %d bytes, too short for a Linux x86 boot header", len(kern))
	}
	out := append([]byte(nil), kern...)
	hdr := out[:min(len(out), qemuHeaderBytes)]
	le := binary.LittleEndian

	if string(hdr[hdrMagic:hdrMagic+4]) == "HdrS" {
		h.Protocol = le.Uint16(hdr[hdrVersion:])
	}
	protocol := h.Protocol
	cmdlineSize := uint32((len(k.Cmdline) + 16) &^ 15)
	var realAddr, cmdlineAddr uint32
	switch {
	case protocol < 0x200 || hdr[hdrLoadflags]&loadedHigh == 0:
		realAddr, cmdlineAddr = 0x90000, 0x9a000-cmdlineSize
	case protocol < 0x202:
		realAddr, cmdlineAddr = 0x90000, 0x9a000-cmdlineSize
	default:
		realAddr, cmdlineAddr = 0x10000, 0x20000
	}

	below, _ := Q35Memory(k.Memory)
	acpi := k.ACPIDataSize
	if acpi == 0 {
		acpi = DefaultACPIDataSize
	}
	if below <= acpi {
		return nil, h, fmt.Errorf("guest memory %d bytes leaves no room below the %d bytes of ACPI data", k.Memory, acpi)
	}
	var initrdMax uint64
	switch {
	case protocol >= 0x20c && le.Uint16(hdr[hdrXLoadflags:])&xlfCanBeLoadedAbove4G != 0:
		initrdMax = 0xffffffff
	case protocol >= 0x203:
		initrdMax = uint64(le.Uint32(hdr[hdrInitrdAddrMax:]))
	default:
		initrdMax = 0x37ffffff
	}
	if initrdMax >= below-acpi {
		initrdMax = below - acpi - 1
	}

	if protocol >= 0x202 {
		le.PutUint32(hdr[hdrCmdLinePtr:], cmdlineAddr)
	} else {
		le.PutUint16(hdr[hdrOldCmdMagic:], 0xa33f)
		le.PutUint16(hdr[hdrOldCmdOffset:], uint16(cmdlineAddr-realAddr))
	}
	if mode, ok, err := vgaMode(k.Cmdline); err != nil {
		return nil, h, err
	} else if ok {
		le.PutUint16(hdr[hdrVidMode:], mode)
	}
	if protocol >= 0x200 {
		hdr[hdrTypeOfLoader] = qemuLoaderType
	}
	if protocol >= 0x201 {
		hdr[hdrLoadflags] |= canUseHeap
		le.PutUint16(hdr[hdrHeapEndPtr:], uint16(cmdlineAddr-realAddr-0x200))
	}
	if k.Initrd != nil {
		if protocol < 0x200 {
			return nil, h, fmt.Errorf("kernel boot protocol 0x%x is too old to load an initrd", protocol)
		}
		size := uint64(len(k.Initrd))
		if size >= initrdMax {
			return nil, h, fmt.Errorf("initrd of %d bytes does not fit below 0x%x (QEMU refuses it); give the guest more memory", size, initrdMax)
		}
		addr := (initrdMax - size) &^ (PageSize - 1)
		le.PutUint32(hdr[hdrRamdiskImage:], uint32(addr))
		le.PutUint32(hdr[hdrRamdiskSize:], uint32(size))
	}

	// QEMU copies the patched header over the setup only as far as the
	// setup extends.
	setupSects := int(out[hdrSetupSects])
	if setupSects == 0 {
		setupSects = 4
	}
	setupSize := (setupSects + 1) * 512
	if setupSize > len(kern) {
		return nil, h, fmt.Errorf("kernel setup (%d bytes) is larger than the %d-byte kernel: invalid kernel header", setupSize, len(kern))
	}
	if protocol > 0 && setupSize < len(hdr) {
		copy(out[setupSize:len(hdr)], kern[setupSize:len(hdr)])
	}
	if protocol == 0 {
		copy(out, kern) // QEMU leaves a kernel without a boot header as it is
	}
	h.TypeOfLoader = out[hdrTypeOfLoader]
	h.Loadflags = out[hdrLoadflags]
	h.HeapEndPtr = le.Uint16(out[hdrHeapEndPtr:])
	h.CmdLinePtr = le.Uint32(out[hdrCmdLinePtr:])
	h.RamdiskImage = le.Uint32(out[hdrRamdiskImage:])
	h.RamdiskSize = le.Uint32(out[hdrRamdiskSize:])
	return out, h, nil
}

// vgaMode parses a "vga=" parameter as QEMU does.
func vgaMode(cmdline string) (uint16, bool, error) {
	i := strings.Index(cmdline, "vga=")
	if i < 0 {
		return 0, false, nil
	}
	v := cmdline[i+4:]
	switch {
	case strings.HasPrefix(v, "normal"):
		return 0xffff, true, nil
	case strings.HasPrefix(v, "ext"):
		return 0xfffe, true, nil
	case strings.HasPrefix(v, "ask"):
		return 0xfffd, true, nil
	}
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	n, err := strconv.ParseUint(v, 0, 32)
	if err != nil {
		return 0, false, fmt.Errorf("kernel command line has an invalid vga= parameter %q (QEMU refuses it)", v)
	}
	return uint16(n), true, nil
}
