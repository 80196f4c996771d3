// Package kernel provides the guest kernel to a build: the `kernel` block,
// either a prebuilt image or a kernel built reproducibly from a source
// tarball with a base configuration and fragments (the shipped ones are in
// kernel/fragments: common, tdx, snp), and inspection of bzImage files
// (setup header, version string, PE sections, Authenticode digests).
//
// A build from source runs the kernel's own tools — make tinyconfig or
// defconfig, scripts/kconfig/merge_config.sh -m, make olddefconfig — then
// checks that every fragment option survived, and explains those that did
// not from the Kconfig files (the dependency each lacks). It builds out of
// tree in a clean environment: KBUILD_BUILD_TIMESTAMP from the recipe's
// epoch, fixed KBUILD_BUILD_USER/HOST/VERSION and LOCALVERSION, LC_ALL=C,
// TZ=UTC, a fixed PATH, prefix maps for the build directory and no module
// signing key, so that two builds anywhere give the same bytes.
package kernel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Info is what a bzImage's setup header says about the kernel.
type Info struct {
	Version         string // the kernel_version string, e.g. "6.1.0-56-cloud-amd64 (debian-kernel@…) #1 SMP …"
	Release         string // its first word, e.g. "6.1.0-56-cloud-amd64"
	ProtocolVersion uint16 // boot protocol, e.g. 0x020f
	SetupSects      uint8
	XLoadFlags      uint16
	InitSize        uint32
	PE              bool // it carries a PE header (EFI stub)
}

// ProtocolString renders the boot protocol version as "2.15".
func (i *Info) ProtocolString() string {
	return fmt.Sprintf("%d.%02d", i.ProtocolVersion>>8, i.ProtocolVersion&0xff)
}

// Inspect parses a bzImage's setup header. It returns an error, never
// panics, on anything that is not a bzImage.
func Inspect(b []byte) (*Info, error) {
	const hdr = 0x1f1
	if len(b) < 0x268 {
		return nil, errors.New("too short for a bzImage setup header")
	}
	if binary.LittleEndian.Uint16(b[0x1fe:]) != 0xaa55 || string(b[0x202:0x206]) != "HdrS" {
		return nil, errors.New("no Linux setup header (boot flag 0xAA55 and \"HdrS\" missing): not a bzImage")
	}
	info := &Info{
		SetupSects:      b[hdr],
		ProtocolVersion: binary.LittleEndian.Uint16(b[0x206:]),
		PE:              b[0] == 'M' && b[1] == 'Z',
	}
	if info.ProtocolVersion >= 0x20c {
		info.XLoadFlags = binary.LittleEndian.Uint16(b[0x236:])
	}
	if info.ProtocolVersion >= 0x20a {
		info.InitSize = binary.LittleEndian.Uint32(b[0x260:])
	}
	if ptr := int(binary.LittleEndian.Uint16(b[0x20e:])); ptr != 0 {
		off := ptr + 0x200
		if off >= len(b) {
			return nil, fmt.Errorf("kernel_version pointer 0x%x is past the end of the image", ptr)
		}
		end := bytes.IndexByte(b[off:min(len(b), off+512)], 0)
		if end < 0 {
			return nil, errors.New("kernel_version string is not terminated")
		}
		info.Version = string(b[off : off+end])
		if f := bytes.Fields([]byte(info.Version)); len(f) > 0 {
			info.Release = string(f[0])
		}
	}
	return info, nil
}
