package cca

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ImageHeader is the header of an arm64 Linux Image (Linux
// Documentation/arch/arm64/booting.rst): where in RAM the kernel goes and
// how much memory it takes.
type ImageHeader struct {
	TextOffset uint64 // offset from the 2 MiB-aligned base of RAM
	ImageSize  uint64 // effective image size, bss included (0: unknown)
	Flags      uint64
}

// imageMagic is "ARM\x64", little-endian at offset 56.
const imageMagic = 0x644d5241

// ErrNotImage says that bytes are not an arm64 Linux Image.
var ErrNotImage = errors.New("not an arm64 Linux Image (no \"ARM\\x64\" magic at offset 56)")

// ParseImageHeader reads the header of an arm64 Linux Image.
func ParseImageHeader(b []byte) (ImageHeader, error) {
	if len(b) < 64 {
		return ImageHeader{}, fmt.Errorf("%w: %d bytes, shorter than the 64-byte header", ErrNotImage, len(b))
	}
	le := binary.LittleEndian
	if le.Uint32(b[56:]) != imageMagic {
		return ImageHeader{}, ErrNotImage
	}
	return ImageHeader{TextOffset: le.Uint64(b[8:]), ImageSize: le.Uint64(b[16:]), Flags: le.Uint64(b[24:])}, nil
}

// FDTHeader is what CheckFDT reads of a flattened device tree's header.
type FDTHeader struct {
	TotalSize uint32
	Version   uint32
}

// CheckFDT checks that b starts with a flattened device tree header
// (devicetree specification 5.2) whose blocks lie within b. A DTB is
// measured as given, padding included (kvmtool pads it to 64 KiB).
func CheckFDT(b []byte) (FDTHeader, error) {
	if len(b) < 40 {
		return FDTHeader{}, fmt.Errorf("not a device tree blob: %d bytes, shorter than its 40-byte header", len(b))
	}
	be := binary.BigEndian
	if be.Uint32(b) != 0xd00dfeed {
		return FDTHeader{}, fmt.Errorf("not a device tree blob: magic %#08x, want 0xd00dfeed", be.Uint32(b))
	}
	h := FDTHeader{TotalSize: be.Uint32(b[4:]), Version: be.Uint32(b[20:])}
	if uint64(h.TotalSize) > uint64(len(b)) || h.TotalSize < 40 {
		return h, fmt.Errorf("device tree blob: totalsize %d, but the file has %d bytes", h.TotalSize, len(b))
	}
	for _, f := range []struct {
		name      string
		off, size uint32
	}{
		{"structure block", be.Uint32(b[8:]), be.Uint32(b[36:])},
		{"strings block", be.Uint32(b[12:]), be.Uint32(b[32:])},
		{"memory reservation block", be.Uint32(b[16:]), 0},
	} {
		if uint64(f.off)+uint64(f.size) > uint64(h.TotalSize) {
			return h, fmt.Errorf("device tree blob: its %s (%d bytes at %d) ends past totalsize %d", f.name, f.size, f.off, h.TotalSize)
		}
	}
	if h.Version < 16 {
		return h, fmt.Errorf("device tree blob version %d: want 16 or 17", h.Version)
	}
	return h, nil
}
