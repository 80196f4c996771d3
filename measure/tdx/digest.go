package tdx

import (
	"encoding/hex"
	"fmt"
)

// DigestSize is the size of MRTD, the RTMRs and their event digests (SHA-384).
const DigestSize = 48

// Digest is a SHA-384 value: MRTD, an RTMR or an event digest.
type Digest [DigestSize]byte

// String returns lowercase hex.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// MarshalText returns lowercase hex.
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses 96 hex digits.
func (d *Digest) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != DigestSize {
		return fmt.Errorf("digest %q: want %d hex digits", b, 2*DigestSize)
	}
	_, err := hex.Decode(d[:], b)
	if err != nil {
		return fmt.Errorf("digest %q: %w", b, err)
	}
	return nil
}
