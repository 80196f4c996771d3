package cca

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"math/bits"
)

// Granule is the RMM granule size: the unit of DATA_CREATE and RIPAS.
const Granule = 0x1000

// MeasurementWidth is the size of a realm measurement as the RMM stores
// it; a SHA-256 value is zero-padded to it.
const MeasurementWidth = 64

// Hash is a realm's measurement algorithm (RmiHashAlgorithm).
type Hash uint8

// The measurement algorithms of RMI_REALM_CREATE.
const (
	SHA256 Hash = 0
	SHA512 Hash = 1
)

// ParseHash parses sha256 or sha512, as QEMU and kvmtool name them.
func ParseHash(s string) (Hash, error) {
	switch s {
	case "sha256":
		return SHA256, nil
	case "sha512":
		return SHA512, nil
	}
	return 0, fmt.Errorf("measurement algorithm %q: want sha256 or sha512", s)
}

// String returns sha256 or sha512.
func (h Hash) String() string {
	if h == SHA512 {
		return "sha512"
	}
	return "sha256"
}

// Size is the digest size: 32 or 64 bytes.
func (h Hash) Size() int {
	if h == SHA512 {
		return 64
	}
	return 32
}

// sum hashes data into a measurement (zero-padded to MeasurementWidth).
func (h Hash) sum(data []byte) [MeasurementWidth]byte {
	var m [MeasurementWidth]byte
	if h == SHA512 {
		return sha512.Sum512(data)
	}
	d := sha256.Sum256(data)
	copy(m[:], d[:])
	return m
}

// Realm flags of RMI_REALM_CREATE (RmiRealmFlags).
const (
	FlagLPA2 = 1 << 0
	FlagSVE  = 1 << 1
	FlagPMU  = 1 << 2
)

// RealmParams are the measured fields of RmiRealmParams, as encoded in
// it: NumBPs and NumWPs are the counts minus one, SVEVL the vector length
// as ZCR_EL2.LEN ((bits/128)-1).
type RealmParams struct {
	Flags      uint64 `json:"flags"`
	S2SZ       uint8  `json:"s2sz"`
	SVEVL      uint8  `json:"sve_vl"`
	NumBPs     uint8  `json:"num_bps"`
	NumWPs     uint8  `json:"num_wps"`
	PMUNumCtrs uint8  `json:"pmu_num_ctrs"`
	Hash       Hash   `json:"hash_algo"`
}

// bytes returns the RmiRealmParams granule with only the measured fields
// set (DEN0137 B4.3.9.4: the others are zero for the RIM).
func (p RealmParams) bytes() []byte {
	b := make([]byte, Granule)
	binary.LittleEndian.PutUint64(b[0:], p.Flags)
	b[0x08] = p.S2SZ
	b[0x10] = p.SVEVL
	b[0x18] = p.NumBPs
	b[0x20] = p.NumWPs
	b[0x28] = p.PMUNumCtrs
	b[0x30] = uint8(p.Hash)
	return b
}

// REC is the measured part of RmiRecParams.
type REC struct {
	Runnable bool      `json:"runnable"`
	PC       uint64    `json:"pc"`
	GPRs     [8]uint64 `json:"gprs"`
}

func (r REC) bytes() []byte {
	b := make([]byte, Granule)
	if r.Runnable {
		b[0] = 1
	}
	binary.LittleEndian.PutUint64(b[0x200:], r.PC)
	for i, g := range r.GPRs {
		binary.LittleEndian.PutUint64(b[0x300+8*i:], g)
	}
	return b
}

// Measurement descriptor types (RmmMeasurementDescriptor*).
const (
	descData  = 0
	descREC   = 1
	descRIPAS = 2
	descSize  = 0x100
)

// Realm is the measurement state the RMM keeps for a realm.
type Realm struct {
	hash       Hash
	blockSizes uint64
	rim        [MeasurementWidth]byte
	rem        [4][MeasurementWidth]byte
}

// NewRealm is RMI_REALM_CREATE: the RIM starts as the hash of the realm
// parameters.
func NewRealm(p RealmParams) (*Realm, error) {
	if p.Hash != SHA256 && p.Hash != SHA512 {
		return nil, fmt.Errorf("measurement algorithm %d: want 0 (SHA-256) or 1 (SHA-512)", p.Hash)
	}
	bs, err := translationBlockSizes(int(p.S2SZ))
	if err != nil {
		return nil, err
	}
	r := &Realm{hash: p.Hash, blockSizes: bs}
	r.rim = p.Hash.sum(p.bytes())
	return r, nil
}

// descriptor returns a measurement descriptor of type t with the current
// RIM, and body written at offset 0x50 (after type, length and RIM).
func (r *Realm) descriptor(t byte, body ...[]byte) []byte {
	d := make([]byte, descSize)
	d[0] = t
	binary.LittleEndian.PutUint64(d[8:], descSize)
	copy(d[16:], r.rim[:])
	off := 16 + MeasurementWidth
	for _, b := range body {
		off += copy(d[off:], b)
	}
	return d
}

func u64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// InitRIPAS is RMI_RTT_INIT_RIPAS over [base, top): the host covers the
// range with the largest translation blocks that fit, and each call
// extends the RIM with a RIPAS descriptor of its block.
func (r *Realm) InitRIPAS(base, top uint64) error {
	if top <= base || (base|top)%Granule != 0 {
		return fmt.Errorf("RIPAS range [%#x, %#x) is empty or not granule-aligned", base, top)
	}
	for cur := base; cur < top; {
		bs, err := findBlockSize(cur, top, r.blockSizes)
		if err != nil {
			return err
		}
		r.rim = r.hash.sum(r.descriptor(descRIPAS, u64(cur), u64(cur+bs)))
		cur += bs
	}
	return nil
}

// DataCreate is RMI_DATA_CREATE with RMI_MEASURE_CONTENT for every granule
// that data covers when loaded at ipa (the first granule is zero-filled
// before ipa, the last after the data). It returns the number of granules.
func (r *Realm) DataCreate(ipa uint64, data []byte) int {
	start := ipa &^ (Granule - 1)
	lead := int(ipa - start)
	n := (lead + len(data) + Granule - 1) / Granule
	page := make([]byte, Granule)
	for i := range n {
		clear(page)
		lo := i*Granule - lead // offset in data of the page's first byte
		switch {
		case lo < 0:
			copy(page[-lo:], data)
		default:
			copy(page, data[lo:])
		}
		content := r.hash.sum(page)
		r.rim = r.hash.sum(r.descriptor(descData, u64(start+uint64(i)*Granule), u64(1), content[:]))
	}
	return n
}

// DataCreateUnmeasured is RMI_DATA_CREATE without RMI_MEASURE_CONTENT for
// every granule of [ipa, ipa+size).
func (r *Realm) DataCreateUnmeasured(ipa, size uint64) {
	start := ipa &^ (Granule - 1)
	end := (ipa + size + Granule - 1) &^ (Granule - 1)
	var zero [MeasurementWidth]byte
	for a := start; a < end; a += Granule {
		r.rim = r.hash.sum(r.descriptor(descData, u64(a), u64(0), zero[:]))
	}
}

// RECCreate is RMI_REC_CREATE: the RIM is extended with a REC descriptor
// holding the hash of the REC parameters.
func (r *Realm) RECCreate(rec REC) {
	content := r.hash.sum(rec.bytes())
	r.rim = r.hash.sum(r.descriptor(descREC, content[:]))
}

// RIM returns the RIM, hash-size bytes.
func (r *Realm) RIM() []byte { return append([]byte(nil), r.rim[:r.hash.Size()]...) }

// REM returns REM[i], hash-size bytes: zero at launch (the realm extends
// them at run time with RSI_MEASUREMENT_EXTEND, which is not modelled).
func (r *Realm) REM(i int) []byte { return append([]byte(nil), r.rem[i][:r.hash.Size()]...) }

// translationBlockSizes returns the block sizes (a bit mask) of the
// stage-2 translation table of an s2sz-bit IPA space with 4 KiB granules,
// assuming the host concatenates tables at the starting level where it
// can (at most 16 entries), as KVM does.
func translationBlockSizes(s2sz int) (uint64, error) {
	if s2sz < 21 || s2sz > 52 {
		return 0, fmt.Errorf("IPA width %d bits: want 21-52", s2sz)
	}
	const pageBits, perLevel = 12, 9
	tableBits := s2sz - pageBits
	levels := (tableBits + perLevel - 1) / perLevel
	if tableBits-perLevel*(levels-1) <= 4 {
		levels--
	}
	if levels > 4 {
		levels = 4
	}
	var sizes uint64
	for l := 4 - levels; l < 4; l++ {
		sizes |= uint64(Granule) << (perLevel * (3 - l))
	}
	return sizes, nil
}

// findBlockSize returns the largest block of sizes that is aligned at
// start and fits below top.
func findBlockSize(start, top, sizes uint64) (uint64, error) {
	if start != 0 {
		sizes &= (uint64(1) << (bits.TrailingZeros64(start) + 1)) - 1
	}
	for sizes != 0 {
		b := uint64(1) << (63 - bits.LeadingZeros64(sizes))
		if top-start >= b {
			return b, nil
		}
		sizes &^= b
	}
	return 0, fmt.Errorf("no translation block fits [%#x, %#x)", start, top)
}
