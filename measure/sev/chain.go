package sev

import (
	"crypto/sha512"
	"encoding/binary"
	"hash"
)

// SNP page types of the PAGE_INFO structure (SEV-SNP firmware ABI, SNP_LAUNCH_UPDATE).
const (
	pageTypeNormal     = 0x01
	pageTypeVMSA       = 0x02
	pageTypeZero       = 0x03
	pageTypeUnmeasured = 0x04
	pageTypeSecrets    = 0x05
	pageTypeCPUID      = 0x06
)

// DigestSize is the size of an SNP launch digest (SHA-384).
const DigestSize = sha512.Size384

// pageInfoSize is the size of the PAGE_INFO structure the digest chain hashes.
const pageInfoSize = 0x70

// DefaultVMSAGPA is the GPA that KVM records VMSA pages under: (u64)-1,
// page-aligned and with the bits above 47 cleared.
const DefaultVMSAGPA = 0xFFFFFFFFF000

// chain is the SNP launch digest: each measured page extends it with
// SHA-384(previous digest || PAGE_INFO). It reuses one hash and one buffer,
// so extending allocates nothing.
type chain struct {
	h    hash.Hash
	info [pageInfoSize]byte // digest(48) | contents(48) | length u16 | type u8 | imi u8 | vmpl3..1 perms, reserved | GPA u64
	sum  [DigestSize]byte   // scratch for page content hashes
	// hashed counts the bytes fed to SHA-384 and skipped the page bytes whose
	// digest was reused, for the benchmark that compares the chain with raw hashing.
	hashed, skipped int64
}

func newChain(seed []byte) *chain {
	c := &chain{h: sha512.New384()}
	copy(c.info[:DigestSize], seed)
	return c
}

// digest returns a copy of the current launch digest.
func (c *chain) digest() []byte {
	return append([]byte(nil), c.info[:DigestSize]...)
}

// extend folds one PAGE_INFO with the given contents digest into the chain.
func (c *chain) extend(pageType byte, gpa uint64, contents *[DigestSize]byte) {
	if contents == nil {
		clear(c.info[DigestSize : 2*DigestSize])
	} else {
		copy(c.info[DigestSize:2*DigestSize], contents[:])
	}
	binary.LittleEndian.PutUint16(c.info[96:98], pageInfoSize)
	c.info[98] = pageType
	clear(c.info[99:104]) // IS_IMI, VMPL3/2/1 permissions, reserved
	binary.LittleEndian.PutUint64(c.info[104:112], gpa)
	c.h.Reset()
	c.h.Write(c.info[:])
	c.h.Sum(c.info[:0]) // the new digest replaces the old one in place
	c.hashed += pageInfoSize
}

// pageDigest hashes one page of contents into c.sum.
func (c *chain) pageDigest(page []byte) *[DigestSize]byte {
	c.h.Reset()
	c.h.Write(page)
	c.h.Sum(c.sum[:0])
	c.hashed += int64(len(page))
	return &c.sum
}

// normalPages measures data (a whole number of pages) as NORMAL pages from gpa on.
func (c *chain) normalPages(gpa uint64, data []byte) {
	for off := 0; off+PageSize <= len(data); off += PageSize {
		c.extend(pageTypeNormal, gpa+uint64(off), c.pageDigest(data[off:off+PageSize]))
	}
}

// vmsaPage measures one VMSA page at the VMSA GPA.
func (c *chain) vmsaPage(gpa uint64, page []byte) {
	c.extend(pageTypeVMSA, gpa, c.pageDigest(page))
}

// emptyPages measures size bytes from gpa on as pages of a type whose
// contents field is zero (ZERO, UNMEASURED, SECRETS, CPUID).
func (c *chain) emptyPages(pageType byte, gpa uint64, size uint64) {
	for off := uint64(0); off < size; off += PageSize {
		c.extend(pageType, gpa+off, nil)
	}
}
