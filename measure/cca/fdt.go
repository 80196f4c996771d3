package cca

import (
	"encoding/binary"
	"fmt"
)

// Chosen is what a DTB's /chosen node tells the kernel: its command line
// and where the initrd is.
type Chosen struct {
	Bootargs    string
	HasBootargs bool
	// InitrdStart and InitrdEnd are linux,initrd-start and -end, when
	// HasInitrd.
	InitrdStart, InitrdEnd uint64
	HasInitrd              bool
}

// FDT structure block tokens (devicetree specification 5.4.1).
const (
	fdtBeginNode = 1
	fdtEndNode   = 2
	fdtProp      = 3
	fdtNop       = 4
	fdtEnd       = 9
)

// ReadChosen reads the /chosen node of a flattened device tree. A DTB
// without one gives a zero Chosen.
func ReadChosen(b []byte) (Chosen, error) {
	if _, err := CheckFDT(b); err != nil {
		return Chosen{}, err
	}
	be := binary.BigEndian
	structOff, structSize := be.Uint32(b[8:]), be.Uint32(b[36:])
	strOff, strSize := be.Uint32(b[12:]), be.Uint32(b[32:])
	s := b[structOff : structOff+structSize]
	strs := b[strOff : strOff+strSize]
	cstring := func(buf []byte, off int) (string, int, error) {
		for i := off; i < len(buf); i++ {
			if buf[i] == 0 {
				return string(buf[off:i]), i + 1, nil
			}
		}
		return "", 0, fmt.Errorf("device tree blob: unterminated name at %d", off)
	}
	var c Chosen
	var path []string
	for off := 0; ; {
		if off+4 > len(s) {
			return c, fmt.Errorf("device tree blob: the structure block ends without FDT_END")
		}
		tok := be.Uint32(s[off:])
		off += 4
		switch tok {
		case fdtBeginNode:
			name, next, err := cstring(s, off)
			if err != nil {
				return c, err
			}
			if len(path) >= 64 {
				return c, fmt.Errorf("device tree blob: nodes nested deeper than 64")
			}
			path = append(path, name)
			off = (next + 3) &^ 3
		case fdtEndNode:
			if len(path) == 0 {
				return c, fmt.Errorf("device tree blob: FDT_END_NODE outside a node")
			}
			path = path[:len(path)-1]
		case fdtProp:
			if off+8 > len(s) {
				return c, fmt.Errorf("device tree blob: truncated property")
			}
			n, nameOff := be.Uint32(s[off:]), be.Uint32(s[off+4:])
			off += 8
			if uint64(off)+uint64(n) > uint64(len(s)) {
				return c, fmt.Errorf("device tree blob: a property of %d bytes runs past the structure block", n)
			}
			val := s[off : off+int(n)]
			off = (off + int(n) + 3) &^ 3
			if len(path) != 2 || path[0] != "" || path[1] != "chosen" {
				continue
			}
			if int(nameOff) >= len(strs) {
				return c, fmt.Errorf("device tree blob: property name offset %d past the strings block", nameOff)
			}
			name, _, err := cstring(strs, int(nameOff))
			if err != nil {
				return c, err
			}
			switch name {
			case "bootargs":
				c.Bootargs, c.HasBootargs = string(val), true
				if l := len(c.Bootargs); l > 0 && c.Bootargs[l-1] == 0 {
					c.Bootargs = c.Bootargs[:l-1]
				}
			case "linux,initrd-start", "linux,initrd-end":
				v, err := cells(val)
				if err != nil {
					return c, fmt.Errorf("device tree blob: /chosen %s: %w", name, err)
				}
				if name == "linux,initrd-start" {
					c.InitrdStart = v
				} else {
					c.InitrdEnd = v
				}
				c.HasInitrd = true
			}
		case fdtNop:
		case fdtEnd:
			return c, nil
		default:
			return c, fmt.Errorf("device tree blob: unknown token %#x at %d", tok, off-4)
		}
	}
}

// cells reads a 32- or 64-bit big-endian property value.
func cells(v []byte) (uint64, error) {
	switch len(v) {
	case 4:
		return uint64(binary.BigEndian.Uint32(v)), nil
	case 8:
		return binary.BigEndian.Uint64(v), nil
	}
	return 0, fmt.Errorf("a value of %d bytes, want 4 or 8", len(v))
}
