// Package se models IBM Z Secure Execution (SE) boot images as s390-tools'
// genprotimg and pvimg write them: the SE header (the boot request control
// block the Ultravisor unpacks the guest with) and the image's encrypted
// components, from which it recomputes the header's page-list, address-list
// and tweak-list digests (PLD, ALD, TLD).
//
// Every field is big-endian. The header's GCM tag authenticates PLD, ALD,
// TLD, the key slots and the encrypted part (component key, PSW, flags):
// it is what IBM's attestation (and Trustee's se verifier, as se.tag)
// reports of the guest, and so the reference value of an SE image. The tag
// itself cannot be recomputed without the header's key, which only the
// image's builder and the host's Ultravisor hold; cocobuild recomputes what
// the tag covers of the image's contents and checks it equals the header's.
//
// The parsers take untrusted bytes: they return errors, never panic, and
// allocate at most what the format's limits allow (a header of two pages,
// an IPIB of one page).
package se

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ModelVersion changes whenever what the model computes changes.
const ModelVersion = "1"

// Format constants of the SE header version 1 (s390-tools
// genprotimg/src/include/pv_hdr_def.h, rust/pv/src/brcb.rs).
const (
	// Magic is the header's first 8 bytes, "IBMSecEx".
	Magic = "IBMSecEx"
	// Version1 is the only header version (0x100).
	Version1 = 0x100
	// HeadSize is the size of the fixed part of the header before the
	// key slots (magic to TLD).
	HeadSize = 0x1a0
	// KeySlotSize is the size of one key slot: the public host-key hash,
	// the wrapped image key and its GCM tag.
	KeySlotSize = 32 + 32 + 16
	// EncryptedSize is the size of the encrypted part without optional
	// items: customer communication key, XTS key, PSW, secret control
	// flags, number of optional items, reserved.
	EncryptedSize = 32 + 64 + 16 + 8 + 4 + 4
	// TagSize is the size of the AES-GCM tag that ends the header.
	TagSize = 16
	// MaxHeaderSize is the largest header of version 1 (two pages).
	MaxHeaderSize = 2 * PageSize
	// PageSize is the Ultravisor's page (and component chunk) size.
	PageSize = 4096
	// DigestSize is the size of PLD, ALD and TLD (SHA-512).
	DigestSize = 64
)

// Plaintext control flags of the header (bit numbers counted from the most
// significant bit, as s390-tools' PcfV1 names them).
var pcfNames = []struct {
	bit  uint
	name string
}{
	{34, "allow_dumping"},
	{35, "no_component_encryption"},
	{56, "pckmo_dea_tdea"},
	{57, "pckmo_aes"},
	{58, "pckmo_ecc"},
	{59, "pckmo_hmac"},
}

// KeySlot is one of the header's key slots: the image key wrapped for one
// host key. PHKH is the SHA-256 of that host key's public key (the
// affine coordinates, each padded to 80 bytes), which IBM's attestation
// reports as the image's public host-key hash (Trustee's se.image_phkh).
type KeySlot struct {
	PHKH       [32]byte
	WrappedKey [32]byte
	Tag        [16]byte
}

// Header is a parsed SE header.
type Header struct {
	Version uint32
	// Size is the header's size in bytes (phs).
	Size uint32
	IV   [12]byte
	// EncryptedAreaSize is the size of the encrypted part (sea).
	EncryptedAreaSize uint64
	// Pages is the number of encrypted pages the components have (nep).
	Pages uint64
	// PCF are the plaintext control flags.
	PCF uint64
	// CustomerPublicKey is the ECDH public key of the image's builder
	// (P-521 affine coordinates, each padded to 80 bytes).
	CustomerPublicKey [160]byte
	PLD, ALD, TLD     [DigestSize]byte
	KeySlots          []KeySlot
	// Tag is the header's AES-GCM tag (Trustee's se.tag).
	Tag [TagSize]byte
}

// ErrNotHeader says the bytes do not start with an SE header's magic.
var ErrNotHeader = errors.New("no Secure Execution header (magic IBMSecEx)")

// IsHeader says whether b starts with an SE header's magic.
func IsHeader(b []byte) bool { return len(b) >= len(Magic) && string(b[:len(Magic)]) == Magic }

// ParseHeader parses the SE header at the start of b; b may go on beyond
// the header's size (an image's page).
func ParseHeader(b []byte) (*Header, error) {
	if !IsHeader(b) {
		return nil, ErrNotHeader
	}
	if len(b) < HeadSize+TagSize {
		return nil, fmt.Errorf("SE header: %d bytes, shorter than its fixed part (%d): the file is truncated", len(b), HeadSize+TagSize)
	}
	be := binary.BigEndian
	h := &Header{Version: be.Uint32(b[8:]), Size: be.Uint32(b[12:])}
	if h.Version != Version1 {
		return nil, fmt.Errorf("SE header version %#x: only version 1 (0x100) is known", h.Version)
	}
	if h.Size < HeadSize+EncryptedSize+TagSize || h.Size > MaxHeaderSize {
		return nil, fmt.Errorf("SE header size %d: a version 1 header has %d to %d bytes", h.Size, HeadSize+EncryptedSize+TagSize, MaxHeaderSize)
	}
	if uint64(len(b)) < uint64(h.Size) {
		return nil, fmt.Errorf("SE header: %d bytes, its size says %d: the file is truncated", len(b), h.Size)
	}
	copy(h.IV[:], b[16:28])
	nks := be.Uint64(b[32:])
	h.EncryptedAreaSize = be.Uint64(b[40:])
	h.Pages = be.Uint64(b[48:])
	h.PCF = be.Uint64(b[56:])
	copy(h.CustomerPublicKey[:], b[64:224])
	copy(h.PLD[:], b[224:288])
	copy(h.ALD[:], b[288:352])
	copy(h.TLD[:], b[352:416])
	// The size is the fixed part, the key slots, the encrypted part and
	// the tag; each count is bounded by the size before it is used.
	room := uint64(h.Size) - HeadSize - TagSize
	if nks > room/KeySlotSize {
		return nil, fmt.Errorf("SE header: %d key slots do not fit in its size %d", nks, h.Size)
	}
	if h.EncryptedAreaSize < EncryptedSize || h.EncryptedAreaSize > room {
		return nil, fmt.Errorf("SE header: encrypted area of %d bytes (at least %d) does not fit in its size %d", h.EncryptedAreaSize, EncryptedSize, h.Size)
	}
	if nks*KeySlotSize+h.EncryptedAreaSize != room {
		return nil, fmt.Errorf("SE header: size %d is not %d (fixed part) + %d key slots of %d + %d (encrypted area) + %d (tag)",
			h.Size, HeadSize, nks, KeySlotSize, h.EncryptedAreaSize, TagSize)
	}
	if nks == 0 {
		return nil, errors.New("SE header: no key slot, so no host can unpack the image")
	}
	h.KeySlots = make([]KeySlot, nks)
	for i := range h.KeySlots {
		s := b[HeadSize+i*KeySlotSize:]
		copy(h.KeySlots[i].PHKH[:], s[0:32])
		copy(h.KeySlots[i].WrappedKey[:], s[32:64])
		copy(h.KeySlots[i].Tag[:], s[64:80])
	}
	copy(h.Tag[:], b[h.Size-TagSize:h.Size])
	return h, nil
}

// Flags names the plaintext control flags that are set; unknown bits are
// named by their number ("bit_N", counted from the most significant bit).
func (h *Header) Flags() []string {
	var out []string
	for bit := uint(0); bit < 64; bit++ {
		if h.PCF&(1<<(63-bit)) == 0 {
			continue
		}
		name := fmt.Sprintf("bit_%d", bit)
		for _, f := range pcfNames {
			if f.bit == bit {
				name = f.name
			}
		}
		out = append(out, name)
	}
	return out
}
