package se

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// Key sizes: the header key (AES-256-GCM, the "customer root key"
// genprotimg's --x-header-key gives) and the components' key
// (AES-256-XTS, --x-comp-key).
const (
	HeaderKeySize = 32
	XTSKeySize    = 64
)

// Secrets are the header's encrypted part, as the header key opens it
// (genprotimg's struct pv_hdr_encrypted).
type Secrets struct {
	// CustomerCommunicationKey is the guest's key for add-secret requests.
	CustomerCommunicationKey [32]byte
	// XTSKey is the key the components are encrypted with.
	XTSKey [XTSKeySize]byte
	// PSWMask and PSWAddr are the PSW the Ultravisor starts the guest
	// with (genprotimg: the stage3b component's address).
	PSWMask, PSWAddr uint64
	// SCF are the secret control flags.
	SCF uint64
	// OptionalItems is the number of optional items.
	OptionalItems uint32
}

// Open checks the header's AES-GCM tag with the header key and decrypts
// its encrypted part: the tag authenticates the fixed part (PLD, ALD, TLD,
// flags, the customer's public key) and the key slots as associated data
// and the encrypted part (genprotimg's pv_hdr_encrypt). raw is the header
// (at least h.Size bytes, as ParseHeader took it).
func (h *Header) Open(raw, key []byte) (*Secrets, error) {
	if len(key) != HeaderKeySize {
		return nil, fmt.Errorf("the header key has %d bytes, want %d (AES-256)", len(key), HeaderKeySize)
	}
	if uint64(len(raw)) < uint64(h.Size) || !IsHeader(raw) {
		return nil, errors.New("the header's bytes are not those parsed")
	}
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	aadLen := HeadSize + len(h.KeySlots)*KeySlotSize
	sealed := raw[aadLen:h.Size] // the encrypted part, then the tag
	plain, err := gcm.Open(nil, h.IV[:], sealed, raw[:aadLen])
	if err != nil {
		return nil, errors.New("the header's tag does not verify with this header key: a different key, or the header was altered")
	}
	if len(plain) < EncryptedSize {
		return nil, fmt.Errorf("encrypted part of %d bytes, want at least %d", len(plain), EncryptedSize)
	}
	s := &Secrets{}
	be := binary.BigEndian
	copy(s.CustomerCommunicationKey[:], plain[0:32])
	copy(s.XTSKey[:], plain[32:96])
	s.PSWMask, s.PSWAddr = be.Uint64(plain[96:]), be.Uint64(plain[104:])
	s.SCF = be.Uint64(plain[112:])
	s.OptionalItems = be.Uint32(plain[120:])
	return s, nil
}

// xts is AES-XTS (IEEE 1619) with a full 16-byte tweak, which
// genprotimg sets per page to the component's tweak prefix and the page's
// offset, as one big-endian 128-bit number. (golang.org/x/crypto/xts
// takes a 64-bit sector number as the tweak, so it cannot express these.)
type xts struct{ data, tweak cipher.Block }

func newXTS(key []byte) (*xts, error) {
	if len(key) != XTSKeySize {
		return nil, fmt.Errorf("the component key has %d bytes, want %d (AES-256-XTS)", len(key), XTSKeySize)
	}
	d, err := aes.NewCipher(key[:32])
	if err != nil {
		return nil, err
	}
	t, err := aes.NewCipher(key[32:])
	if err != nil {
		return nil, err
	}
	return &xts{d, t}, nil
}

// crypt en- or decrypts one page (a whole number of AES blocks) in place.
func (x *xts) crypt(page []byte, tweak [16]byte, decrypt bool) {
	var t [16]byte
	x.tweak.Encrypt(t[:], tweak[:])
	for i := 0; i+16 <= len(page); i += 16 {
		b := page[i : i+16]
		for j := range b {
			b[j] ^= t[j]
		}
		if decrypt {
			x.data.Decrypt(b, b)
		} else {
			x.data.Encrypt(b, b)
		}
		for j := range b {
			b[j] ^= t[j]
		}
		// t *= x in GF(2^128), little-endian (IEEE 1619).
		carry := t[15] >> 7
		for j := 15; j > 0; j-- {
			t[j] = t[j]<<1 | t[j-1]>>7
		}
		t[0] = t[0]<<1 ^ 0x87*carry
	}
}

// pageTweak is the tweak of the page at off within a component.
func pageTweak(prefix, off uint64) [16]byte {
	var t [16]byte
	binary.BigEndian.PutUint64(t[:8], prefix)
	binary.BigEndian.PutUint64(t[8:], off)
	return t
}

// DecryptComponent decrypts component i of the image with the XTS key,
// page by page, and hands each plaintext page to fn (the buffer is reused).
// It stops when ctx is done or fn returns an error.
func (im *Image) DecryptComponent(ctx context.Context, r io.ReaderAt, i int, key []byte, fn func(page []byte) error) error {
	if i < 0 || i >= len(im.Components) {
		return fmt.Errorf("no component %d (the image has %d)", i, len(im.Components))
	}
	x, err := newXTS(key)
	if err != nil {
		return err
	}
	c := im.Components[i]
	page := make([]byte, PageSize)
	for off := uint64(0); off < c.Size; off += PageSize {
		if off%(256*PageSize) == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if _, err := r.ReadAt(page, int64(c.Addr+off)); err != nil {
			return fmt.Errorf("component %d, page at %#x: %w", i, c.Addr+off, err)
		}
		x.crypt(page, pageTweak(c.TweakPrefix, off), true)
		if err := fn(page); err != nil {
			return err
		}
	}
	return nil
}

// Blob is where stage3b finds one of the guest's components (its address
// in the image and its size before padding).
type Blob struct {
	Addr uint64 `json:"addr"`
	Size uint64 `json:"size"`
}

// Stage3bArgs are the arguments genprotimg writes at the end of the
// stage3b loader (struct stage3b_args): where the kernel, the cmdline and
// the initrd are and their sizes, and the kernel's PSW.
type Stage3bArgs struct {
	Kernel, Cmdline, Initrd Blob
	PSWMask, PSWAddr        uint64
}

// stage3bArgsSize is the size of struct stage3b_args.
const stage3bArgsSize = 3*16 + 16

// ReadStage3bArgs decrypts the image's last component, the stage3b
// loader (where genprotimg and pvimg put it: the component the PSW in the
// header's encrypted part starts), and reads its arguments.
func (im *Image) ReadStage3bArgs(ctx context.Context, r io.ReaderAt, s *Secrets) (*Stage3bArgs, error) {
	last := -1
	for i, c := range im.Components {
		if c.Addr == s.PSWAddr {
			last = i
		}
	}
	if last < 0 {
		return nil, fmt.Errorf("no component at the PSW's address %#x: the stage3b loader is not found", s.PSWAddr)
	}
	// The last two pages: the arguments may straddle a page boundary.
	var tail []byte
	err := im.DecryptComponent(ctx, r, last, s.XTSKey[:], func(p []byte) error {
		if len(tail) > PageSize {
			tail = tail[PageSize:]
		}
		tail = append(tail, p...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The loader is padded to a page with zeros after its arguments: they
	// are the last 64 bytes before the padding. Find the loader's end from
	// the arguments' own consistency: every blob lies in a component.
	be := binary.BigEndian
	for end := len(tail); end >= stage3bArgsSize; end-- {
		a := tail[end-stage3bArgsSize : end]
		args := &Stage3bArgs{
			Kernel:  Blob{be.Uint64(a[0:]), be.Uint64(a[8:])},
			Cmdline: Blob{be.Uint64(a[16:]), be.Uint64(a[24:])},
			Initrd:  Blob{be.Uint64(a[32:]), be.Uint64(a[40:])},
			PSWMask: be.Uint64(a[48:]), PSWAddr: be.Uint64(a[56:]),
		}
		if im.holds(args.Kernel) && im.holds(args.Cmdline) && (args.Initrd == Blob{} || im.holds(args.Initrd)) {
			return args, nil
		}
	}
	return nil, errors.New("no stage3b arguments (kernel, cmdline and initrd in the image's components) at the end of the stage3b loader")
}

// holds says whether b starts a component and fits in it.
func (im *Image) holds(b Blob) bool {
	for _, c := range im.Components {
		if c.Addr == b.Addr && b.Size <= c.Size && b.Size > 0 {
			return true
		}
	}
	return false
}

// Component returns the index of the component at addr.
func (im *Image) Component(addr uint64) int {
	for i, c := range im.Components {
		if c.Addr == addr {
			return i
		}
	}
	return -1
}

// Content is one of the guest's components as the image holds it,
// decrypted: its size and SHA-256 (and the text of the cmdline).
type Content struct {
	Size   uint64 `json:"size"`
	SHA256 string `json:"sha256"`
	Text   string `json:"text,omitempty"`
}

// Contents decrypts the kernel, cmdline and initrd the stage3b arguments
// name and digests them (the cmdline without its NUL; "initrd" is left
// out when the image has none). It reads one page at a time.
func (im *Image) Contents(ctx context.Context, r io.ReaderAt, s *Secrets, args *Stage3bArgs) (map[string]Content, error) {
	out := map[string]Content{}
	for _, p := range []struct {
		name string
		blob Blob
	}{{"kernel", args.Kernel}, {"cmdline", args.Cmdline}, {"initrd", args.Initrd}} {
		if p.blob == (Blob{}) {
			continue
		}
		h := sha256.New()
		left := p.blob.Size
		var text []byte
		err := im.DecryptComponent(ctx, r, im.Component(p.blob.Addr), s.XTSKey[:], func(page []byte) error {
			n := min(left, uint64(len(page)))
			if p.name == "cmdline" && len(text) < PageSize {
				text = append(text, page[:n]...)
			}
			h.Write(page[:n])
			left -= n
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		c := Content{Size: p.blob.Size, SHA256: hex.EncodeToString(h.Sum(nil))}
		if p.name == "cmdline" {
			// The parmline ends with the NUL genprotimg adds; the
			// digest is of what the user gave.
			t := bytes.TrimSuffix(text, []byte{0})
			sum := sha256.Sum256(t)
			c = Content{Size: uint64(len(t)), SHA256: hex.EncodeToString(sum[:]), Text: string(t)}
		}
		out[p.name] = c
	}
	return out, nil
}
