package tdx

// TDHOBDigest is the digest of the TD HOB event (RTMR0) of a TD with this
// much memory booted with the firmware of md.
func TDHOBDigest(md *Metadata, memory uint64) (Digest, error) {
	ram, err := RAMLayout(md, memory)
	if err != nil {
		return Digest{}, err
	}
	_, measured, err := TDHOB(md, ram)
	if err != nil {
		return Digest{}, err
	}
	return sha384(measured), nil
}

// MemoryCandidates are the memory sizes SearchMemory tries: every multiple
// of 128 MiB up to 64 GiB, then every power of two up to 4 TiB.
func MemoryCandidates() []uint64 {
	var out []uint64
	for m := uint64(128 << 20); m <= 64<<30; m += 128 << 20 {
		out = append(out, m)
	}
	for m := uint64(128 << 30); m <= 4<<40; m *= 2 {
		out = append(out, m)
	}
	return out
}

// SearchMemory returns the memory size among MemoryCandidates whose TD HOB
// event digest is want.
func SearchMemory(md *Metadata, want Digest) (uint64, bool) {
	for _, m := range MemoryCandidates() {
		if d, err := TDHOBDigest(md, m); err == nil && d == want {
			return m, true
		}
	}
	return 0, false
}
