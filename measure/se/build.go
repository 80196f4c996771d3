package se

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
)

// Layout of a genprotimg image (s390-tools genprotimg v2.35.0: pv_image.c,
// common.h, include/boot/loaders_layout.h, rust/pvimg/boot/stage3a.h).
const (
	stage3aLoadAddress = 0x10000 // IMAGE_LOAD_ADDRESS
	stage3aEntry       = 0x11000 // STAGE3A_ENTRY
	imageEntry         = 0x10000 // DEFAULT_INITIAL_PSW_ADDR: the kernel's entry
	pswMaskEABA        = 0x0000000180000000
	pswMaskBit12       = 0x0008000000000000
	stage3aArgsSize    = 24
	// defaultPCF are genprotimg's plaintext control flags: PCKMO for
	// DEA/TDEA, AES and ECC keys allowed.
	defaultPCF = 1<<(63-56) | 1<<(63-57) | 1<<(63-58)
)

// Component types, genprotimg's order of the components in the image and
// the first two bytes of their tweaks.
const (
	compKernel = iota
	compCmdline
	compInitrd
	compStage3b
)

// BuildInput is what an SE image is made of.
type BuildInput struct {
	Kernel, Initrd []byte // Initrd may be empty: no initrd
	// Cmdline is the kernel's parmline, without a NUL (one is added).
	Cmdline []byte
	// Stage3a and Stage3b are the loaders, stage3a.bin and
	// stage3b_reloc.bin as s390-tools installs them.
	Stage3a, Stage3b []byte
	// HostKeys are the public keys (P-521) of the hosts the image is to
	// run on, one key slot each.
	HostKeys []*ecdh.PublicKey
}

// BuildKeys are the keys and the per-image values genprotimg draws at
// random.
type BuildKeys struct {
	XTS         [XTSKeySize]byte    // the components' key
	Header      [HeaderKeySize]byte // the header's AES-GCM key
	Communicate [32]byte            // the customer communication key
	IV          [12]byte            // the header's GCM IV
	Customer    *ecdh.PrivateKey    // the customer's ECDH key (P-521)
	TweakSuffix [4][6]byte          // the random part of each component's tweak prefix
}

// DeriveKeys derives every key and tweak of an image from a secret seed
// and the image's contents, instead of drawing them at random as
// genprotimg does: the same seed and inputs give the same image, byte for
// byte; another seed or input, other keys. The seed must stay secret (it
// gives the keys that protect the image's contents) and be at least 32
// bytes.
func DeriveKeys(seed []byte, in *BuildInput) (*BuildKeys, error) {
	if len(seed) < 32 {
		return nil, fmt.Errorf("the seed has %d bytes: at least 32 secret bytes", len(seed))
	}
	ctx := sha512.New()
	for _, part := range [][]byte{in.Kernel, in.Cmdline, in.Initrd, in.Stage3a, in.Stage3b} {
		s := sha512.Sum512(part)
		ctx.Write(s[:])
	}
	for _, k := range in.HostKeys {
		s := sha512.Sum512(k.Bytes())
		ctx.Write(s[:])
	}
	content := ctx.Sum(nil)
	derive := func(label string, n int) []byte {
		var out []byte
		for i := byte(0); len(out) < n; i++ {
			m := hmac.New(sha512.New, seed)
			m.Write([]byte("cocobuild se " + label))
			m.Write([]byte{i})
			m.Write(content)
			out = m.Sum(out)
		}
		return out[:n]
	}
	k := &BuildKeys{}
	copy(k.XTS[:], derive("xts key", XTSKeySize))
	copy(k.Header[:], derive("header key", HeaderKeySize))
	copy(k.Communicate[:], derive("customer communication key", 32))
	copy(k.IV[:], derive("header iv", 12))
	for i := range k.TweakSuffix {
		copy(k.TweakSuffix[i][:], derive(fmt.Sprintf("tweak %d", i), 6))
	}
	// A P-521 scalar of 66 bytes whose top 7 bits are clear is below the
	// group order unless it is one of a negligible few; retry on those.
	for i := 0; ; i++ {
		b := derive(fmt.Sprintf("customer key %d", i), 66)
		b[0] &= 1
		if c, err := ecdh.P521().NewPrivateKey(b); err == nil {
			k.Customer = c
			break
		}
		if i > 8 {
			return nil, errors.New("no customer key derived")
		}
	}
	return k, nil
}

// ecdhCoordinates returns a P-521 public key's affine coordinates, each
// left-padded to 80 bytes (genprotimg's union ecdh_pub_key).
func ecdhCoordinates(k *ecdh.PublicKey) ([160]byte, error) {
	var out [160]byte
	b := k.Bytes() // 0x04 || X || Y
	if k.Curve() != ecdh.P521() || len(b) != 1+2*66 {
		return out, errors.New("a host key must be a P-521 key")
	}
	copy(out[80-66:80], b[1:67])
	copy(out[160-66:], b[67:])
	return out, nil
}

// ParseHostKey reads a host-key document (an X.509 certificate, PEM or
// DER) and returns its P-521 public key. Its signature chain is not
// checked (genprotimg's --no-verify).
func ParseHostKey(b []byte) (*ecdh.PublicKey, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	cert, err := x509.ParseCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("not an X.509 certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("a %T key, want an EC P-521 host key", cert.PublicKey)
	}
	k, err := pub.ECDH()
	if err != nil || k.Curve() != ecdh.P521() {
		return nil, errors.New("want an EC P-521 host key")
	}
	return k, nil
}

// HostKeyHash is the public host-key hash of a host key, as the header's
// key slot and IBM's attestation (Trustee's se.image_phkh) give it.
func HostKeyHash(k *ecdh.PublicKey) ([32]byte, error) {
	c, err := ecdhCoordinates(k)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(c[:]), nil
}

func pageAlign(n uint64) uint64 { return (n + PageSize - 1) &^ (PageSize - 1) }

// Build writes an SE image as genprotimg v2.35.0 lays it out (the short
// PSW, stage3a with its arguments, the IPIB page, the header, then the
// encrypted kernel, cmdline, initrd and stage3b), with the given keys and
// tweaks: with DeriveKeys, reproducibly.
func Build(in *BuildInput, k *BuildKeys) ([]byte, error) {
	if len(in.HostKeys) == 0 {
		return nil, errors.New("no host key: the image could run on no machine")
	}
	if len(in.Stage3a) <= stage3aArgsSize || len(in.Stage3b) <= stage3bArgsSize {
		return nil, errors.New("the stage3a and stage3b loaders are too short")
	}
	if k.Customer == nil || k.Customer.Curve() != ecdh.P521() {
		return nil, errors.New("the customer key must be a P-521 key")
	}
	nks := len(in.HostKeys)
	hdrSize := uint64(HeadSize + nks*KeySlotSize + EncryptedSize + TagSize)
	if hdrSize > MaxHeaderSize {
		return nil, fmt.Errorf("%d host keys do not fit in a header", nks)
	}
	stage3aEnd := uint64(stage3aLoadAddress + len(in.Stage3a))
	ipibAddr := pageAlign(stage3aEnd)
	hdrAddr := ipibAddr + PageSize
	next := pageAlign(hdrAddr + hdrSize)

	type part struct {
		kind int
		data []byte
	}
	parts := []part{{compKernel, in.Kernel}, {compCmdline, append(bytes.Clone(in.Cmdline), 0)}}
	if len(in.Initrd) > 0 {
		parts = append(parts, part{compInitrd, in.Initrd})
	}
	// Addresses first: stage3b's arguments name them.
	var comps []Component
	var args Stage3bArgs
	for _, p := range parts {
		size := max(pageAlign(uint64(len(p.data))), PageSize)
		comps = append(comps, Component{Addr: next, Size: size})
		b := Blob{Addr: next, Size: uint64(len(p.data))}
		switch p.kind {
		case compKernel:
			args.Kernel = b
		case compCmdline:
			args.Cmdline = b
		case compInitrd:
			args.Initrd = b
		}
		next += size
	}
	args.PSWMask, args.PSWAddr = pswMaskEABA, imageEntry
	stage3b := bytes.Clone(in.Stage3b)
	a := stage3b[len(stage3b)-stage3bArgsSize:]
	be := binary.BigEndian
	for i, v := range []uint64{args.Kernel.Addr, args.Kernel.Size, args.Cmdline.Addr, args.Cmdline.Size,
		args.Initrd.Addr, args.Initrd.Size, args.PSWMask, args.PSWAddr} {
		be.PutUint64(a[8*i:], v)
	}
	parts = append(parts, part{compStage3b, stage3b})
	s3bSize := pageAlign(uint64(len(stage3b)))
	comps = append(comps, Component{Addr: next, Size: s3bSize})
	next += s3bSize

	img := make([]byte, next)
	be.PutUint64(img[0:], pswMaskEABA|pswMaskBit12|stage3aEntry)
	copy(img[stage3aLoadAddress:], in.Stage3a)
	argsAddr := stage3aEnd - stage3aArgsSize
	be.PutUint64(img[argsAddr:], hdrAddr-argsAddr)
	be.PutUint64(img[argsAddr+8:], hdrSize)
	be.PutUint64(img[argsAddr+16:], ipibAddr-argsAddr)

	// The components, encrypted page by page.
	x, err := newXTS(k.XTS[:])
	if err != nil {
		return nil, err
	}
	for i, p := range parts {
		c := &comps[i]
		c.TweakPrefix = uint64(p.kind)<<48 | uint64(be.Uint16(k.TweakSuffix[p.kind][:2]))<<32 | uint64(be.Uint32(k.TweakSuffix[p.kind][2:]))
		copy(img[c.Addr:], p.data)
		for off := uint64(0); off < c.Size; off += PageSize {
			x.crypt(img[c.Addr+off:c.Addr+off+PageSize], pageTweak(c.TweakPrefix, off), false)
		}
	}

	// The IPIB.
	ipib := img[ipibAddr : ipibAddr+PageSize]
	be.PutUint32(ipib[0:], PageSize)
	ipib[7] = 1
	pb := ipib[8:]
	be.PutUint32(pb[0:], uint32(128+ipibCompSize*len(comps)))
	pb[4] = ipibPBTPV
	be.PutUint32(pb[108:], uint32(len(comps)))
	be.PutUint64(pb[120:], hdrSize)
	for i, c := range comps {
		e := pb[128+i*ipibCompSize:]
		be.PutUint64(e[0:], c.TweakPrefix)
		be.PutUint64(e[8:], c.Addr)
		be.PutUint64(e[16:], c.Size)
	}

	// The header.
	im := &Image{Components: comps}
	d, err := im.Digests(context.Background(), bytes.NewReader(img))
	if err != nil {
		return nil, err
	}
	h := img[hdrAddr : hdrAddr+hdrSize]
	copy(h, Magic)
	be.PutUint32(h[8:], Version1)
	be.PutUint32(h[12:], uint32(hdrSize))
	copy(h[16:28], k.IV[:])
	be.PutUint64(h[32:], uint64(nks))
	be.PutUint64(h[40:], EncryptedSize)
	be.PutUint64(h[48:], d.Pages)
	be.PutUint64(h[56:], defaultPCF)
	cust, err := ecdhCoordinates(k.Customer.PublicKey())
	if err != nil {
		return nil, err
	}
	copy(h[64:224], cust[:])
	copy(h[224:288], d.PLD[:])
	copy(h[288:352], d.ALD[:])
	copy(h[352:416], d.TLD[:])
	for i, hk := range in.HostKeys {
		slot := h[HeadSize+i*KeySlotSize : HeadSize+(i+1)*KeySlotSize]
		phkh, err := HostKeyHash(hk)
		if err != nil {
			return nil, fmt.Errorf("host key %d: %w", i+1, err)
		}
		copy(slot[0:32], phkh[:])
		// genprotimg's compute_exchange_key: SHA-256 of the ECDH
		// secret (66 bytes) and the 32-bit counter 1 (ANSI X9.63);
		// the header key wrapped with it by AES-256-GCM, zero IV.
		secret, err := k.Customer.ECDH(hk)
		if err != nil {
			return nil, fmt.Errorf("host key %d: %w", i+1, err)
		}
		ex := sha256.Sum256(append(secret, 0, 0, 0, 1))
		wrapped, err := gcmSeal(ex[:], make([]byte, 12), k.Header[:], nil)
		if err != nil {
			return nil, err
		}
		copy(slot[32:], wrapped)
	}
	aadLen := HeadSize + nks*KeySlotSize
	enc := make([]byte, EncryptedSize)
	copy(enc[0:32], k.Communicate[:])
	copy(enc[32:96], k.XTS[:])
	be.PutUint64(enc[96:], pswMaskEABA)
	be.PutUint64(enc[104:], comps[len(comps)-1].Addr)
	sealed, err := gcmSeal(k.Header[:], k.IV[:], enc, h[:aadLen])
	if err != nil {
		return nil, err
	}
	copy(h[aadLen:], sealed)
	return img, nil
}

// gcmSeal encrypts plain with AES-256-GCM and appends the 16-byte tag.
func gcmSeal(key, iv, plain, aad []byte) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	return gcm.Seal(nil, iv, plain, aad), nil
}

// newGCM returns AES-GCM with key.
func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
