package sev

import (
	"crypto/sha256"
	"encoding"
	"hash"
	"sync"
)

// Prepared is a firmware image parsed once, whose firmware hashes (SNP page
// chain, SEV SHA-256 state) are computed at most once, for measuring a whole
// matrix of vCPU counts, CPU types and VMMs. It is safe for concurrent use.
type Prepared struct {
	fw *Firmware

	snpOnce sync.Once
	snp     []byte
	snpErr  error

	sevOnce  sync.Once
	sevState []byte
}

// Prepare parses image for repeated measurements.
func Prepare(image []byte) (*Prepared, error) {
	fw, err := ParseFirmware(image)
	if err != nil {
		return nil, err
	}
	return &Prepared{fw: fw}, nil
}

// Firmware returns what was parsed from the image.
func (pr *Prepared) Firmware() *Firmware { return pr.fw }

// Measure is the package Measure with the prepared firmware in place of
// p.Firmware, which is ignored. The result is identical, Coverage included.
func (pr *Prepared) Measure(p Params) (*Result, error) {
	r, _, err := measure(p, pr)
	return r, err
}

// snpSeed returns the SNP digest after the firmware pages.
func (pr *Prepared) snpSeed() ([]byte, error) {
	pr.snpOnce.Do(func() { pr.snp, pr.snpErr = SNPFirmwareHash(pr.fw.Image) })
	return pr.snp, pr.snpErr
}

// sevHash returns a SHA-256 that has absorbed the firmware image.
func (pr *Prepared) sevHash() hash.Hash {
	pr.sevOnce.Do(func() {
		h := sha256.New()
		h.Write(pr.fw.Image)
		// crypto/sha256 digests always marshal; a failure leaves the state
		// empty and sevHash falls back to hashing the image.
		pr.sevState, _ = h.(encoding.BinaryMarshaler).MarshalBinary()
	})
	h := sha256.New()
	if pr.sevState == nil || h.(encoding.BinaryUnmarshaler).UnmarshalBinary(pr.sevState) != nil {
		h.Reset()
		h.Write(pr.fw.Image)
	}
	return h
}
