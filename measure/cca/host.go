package cca

import (
	"fmt"
	"strconv"
	"strings"
)

// Host are the realm capabilities of the host (hardware, KVM and RMM
// together), as realm-measurements' host options give them; nil is
// unknown. The VMM's command line can only lower them.
type Host struct {
	IPABits    *int  // --ipa-bits
	NumBPs     *int  // --num-bps: breakpoints, 2-64
	NumWPs     *int  // --num-wps: watchpoints, 2-64
	SVEVL      *int  // --sve-vl: SVE vector length in bits (0: none)
	PMUNumCtrs *int  // --pmu-num-ctrs: 0-31
	PMU        *bool // --pmu
	LPA2       *bool // --lpa2
	Hash       *Hash // --hash-algo (the VMM's choice overrides it)
}

// Check validates the values that are set.
func (h Host) Check() error {
	if h.IPABits != nil {
		if _, err := translationBlockSizes(*h.IPABits); err != nil {
			return err
		}
	}
	if err := checkRange("breakpoints", h.NumBPs, 2, 64); err != nil {
		return err
	}
	if err := checkRange("watchpoints", h.NumWPs, 2, 64); err != nil {
		return err
	}
	if err := checkRange("PMU counters", h.PMUNumCtrs, 0, 31); err != nil {
		return err
	}
	if h.SVEVL != nil {
		return checkSVE(*h.SVEVL)
	}
	return nil
}

func checkRange(what string, v *int, lo, hi int) error {
	if v != nil && (*v < lo || *v > hi) {
		return fmt.Errorf("%d %s: want %d-%d", *v, what, lo, hi)
	}
	return nil
}

func checkSVE(vl int) error {
	if vl != 0 && (vl%128 != 0 || vl < 128 || vl > 2048) {
		return fmt.Errorf("SVE vector length %d bits: want 0 (no SVE) or a multiple of 128 from 128 to 2048", vl)
	}
	return nil
}

// restrict lowers *old to v, or sets it when unknown.
func restrict(old **int, v int) {
	if *old == nil || v <= **old {
		*old = &v
	}
}

// restrictBool turns *old off, or sets it when unknown.
func restrictBool(old **bool, v bool) {
	if *old == nil || !v {
		*old = &v
	}
}

// realmParams are the RMI_REALM_CREATE parameters of the host's
// capabilities.
func (h Host) realmParams() (RealmParams, error) {
	if err := h.Check(); err != nil {
		return RealmParams{}, err
	}
	switch {
	case h.Hash == nil:
		return RealmParams{}, fmt.Errorf("the measurement algorithm is not known: give --hash-algo or the VMM's")
	case h.IPABits == nil:
		return RealmParams{}, fmt.Errorf("the IPA width is not known: give --ipa-bits")
	case h.NumWPs == nil:
		return RealmParams{}, fmt.Errorf("the number of watchpoints is not known: give --num-wps (the host's, 2-64)")
	case h.NumBPs == nil:
		return RealmParams{}, fmt.Errorf("the number of breakpoints is not known: give --num-bps (the host's, 2-64)")
	}
	p := RealmParams{S2SZ: uint8(*h.IPABits), NumBPs: uint8(*h.NumBPs - 1), NumWPs: uint8(*h.NumWPs - 1), Hash: *h.Hash}
	if h.SVEVL != nil && *h.SVEVL > 0 {
		p.Flags |= FlagSVE
		p.SVEVL = uint8(*h.SVEVL/128 - 1)
	}
	if h.LPA2 != nil && *h.LPA2 {
		p.Flags |= FlagLPA2
	}
	if h.PMU != nil && *h.PMU {
		if h.PMUNumCtrs == nil {
			return RealmParams{}, fmt.Errorf("the PMU is on but its number of counters is not known: give --pmu-num-ctrs")
		}
		p.Flags |= FlagPMU
		p.PMUNumCtrs = uint8(*h.PMUNumCtrs)
	}
	return p, nil
}

// Units of memory sizes.
const (
	KiB = uint64(1) << 10
	MiB = uint64(1) << 20
	GiB = uint64(1) << 30
	TiB = uint64(1) << 40
)

// ParseMemorySize parses a memory size as QEMU's -m and kvmtool's -m take
// it: a number with an optional suffix B, K, M, G, T or P (default M).
func ParseMemorySize(s string) (uint64, error) {
	mult := MiB
	if n := len(s); n > 0 {
		if m, ok := map[byte]uint64{'B': 1, 'K': KiB, 'M': MiB, 'G': GiB, 'T': TiB, 'P': TiB << 10}[s[n-1]]; ok {
			mult, s = m, s[:n-1]
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("memory size %q: want a positive number with an optional B, K, M, G, T or P suffix", s)
	}
	if v > (uint64(1)<<52)/mult {
		return 0, fmt.Errorf("memory size %q is larger than a 52-bit IPA space", s)
	}
	return v * mult, nil
}

// parseBool parses QEMU's on/off values; auto leaves *dst.
func parseBool(dst *bool, v string) error {
	switch strings.ToLower(v) {
	case "on", "yes", "true", "y":
		*dst = true
	case "off", "no", "false", "n":
		*dst = false
	case "auto":
	default:
		return fmt.Errorf("expected on/off/auto, got %q", v)
	}
	return nil
}
