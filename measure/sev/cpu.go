package sev

import (
	"fmt"
	"strings"
)

// FMS is a CPU family, model and stepping.
type FMS struct {
	Family, Model, Stepping int
}

// Signature returns the CPUID Fn0000_0001_EAX signature of the family, model
// and stepping (AMD CPUID specification #25481): families above 0xF are
// 0xF plus an extended family. Values that do not fit the fields are an error.
func (f FMS) Signature() (uint32, error) {
	if f.Family < 0 || f.Family > 0xf+0xff {
		return 0, fmt.Errorf("vCPU family %d is outside 0..%d", f.Family, 0xf+0xff)
	}
	if f.Model < 0 || f.Model > 0xff {
		return 0, fmt.Errorf("vCPU model %d is outside 0..255", f.Model)
	}
	if f.Stepping < 0 || f.Stepping > 0xf {
		return 0, fmt.Errorf("vCPU stepping %d is outside 0..15", f.Stepping)
	}
	fam, extFam := uint32(f.Family), uint32(0)
	if fam > 0xf {
		fam, extFam = 0xf, fam-0xf
	}
	m := uint32(f.Model)
	return extFam<<20 | (m>>4)<<16 | fam<<8 | (m&0xf)<<4 | uint32(f.Stepping), nil
}

type cpuType struct {
	name string
	fms  FMS
}

// cpuTypes returns the QEMU CPU models sev-snp-measure knows, in its order.
func cpuTypes() []cpuType {
	return []cpuType{
		{"EPYC", FMS{23, 1, 2}},
		{"EPYC-v1", FMS{23, 1, 2}},
		{"EPYC-v2", FMS{23, 1, 2}},
		{"EPYC-IBPB", FMS{23, 1, 2}},
		{"EPYC-v3", FMS{23, 1, 2}},
		{"EPYC-v4", FMS{23, 1, 2}},
		{"EPYC-Rome", FMS{23, 49, 0}},
		{"EPYC-Rome-v1", FMS{23, 49, 0}},
		{"EPYC-Rome-v2", FMS{23, 49, 0}},
		{"EPYC-Rome-v3", FMS{23, 49, 0}},
		{"EPYC-Milan", FMS{25, 1, 1}},
		{"EPYC-Milan-v1", FMS{25, 1, 1}},
		{"EPYC-Milan-v2", FMS{25, 1, 1}},
		{"EPYC-Genoa", FMS{25, 17, 0}},
		{"EPYC-Genoa-v1", FMS{25, 17, 0}},
		{"EPYC-Turin", FMS{26, 0, 0}},
	}
}

// CPUTypes lists the QEMU CPU model names CPUSignature knows.
func CPUTypes() []string {
	types := cpuTypes()
	names := make([]string, len(types))
	for i, c := range types {
		names[i] = c.name
	}
	return names
}

// UnknownCPUTypeError is CPUSignature's error for a name it does not know.
// It names the known types only: callers that take a CPUID signature or a
// family/model/stepping as well say so in their own terms.
type UnknownCPUTypeError struct {
	Name string
	// Suggestion is the known type the name is most likely a typo of
	// (another case, or one or two characters off), or "".
	Suggestion string
}

func (e *UnknownCPUTypeError) Error() string {
	s := fmt.Sprintf("unknown vCPU type %q", e.Name)
	if e.Suggestion != "" {
		s += fmt.Sprintf(" (did you mean %q?)", e.Suggestion)
	}
	return s + ": the known types are " + strings.Join(CPUTypes(), ", ")
}

// CPUSignature returns the CPUID signature of a QEMU CPU model name
// (exact spelling, as QEMU's -cpu takes it). An unknown name is an
// *UnknownCPUTypeError.
func CPUSignature(name string) (uint32, error) {
	for _, c := range cpuTypes() {
		if c.name == name {
			return c.fms.Signature()
		}
	}
	return 0, &UnknownCPUTypeError{Name: name, Suggestion: closestCPUType(name)}
}

// closestCPUType returns the known type that name differs from only in case
// or by at most two edits, preferring the fewest edits, or "".
func closestCPUType(name string) string {
	best, bestDist := "", 3
	for _, t := range CPUTypes() {
		if strings.EqualFold(t, name) {
			return t
		}
		if d := editDistance(strings.ToLower(name), strings.ToLower(t)); d < bestDist {
			best, bestDist = t, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
