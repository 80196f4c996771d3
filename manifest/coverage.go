package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Coverage says which parts of a guest a launch measurement commits to:
// the value a TEE reports differs when one of them changes. It is what a
// measure block records as each entry's params["covers"], for every TEE
// (the SEV model's own Coverage has the same JSON form), and what publish
// reads to decide whether the values vouch for the guest.
type Coverage struct {
	Firmware bool `json:"firmware"`
	Kernel   bool `json:"kernel"`
	Initrd   bool `json:"initrd"`
	Cmdline  bool `json:"cmdline"`
}

// Guest parts, in the order they are listed.
const (
	PartFirmware = "firmware"
	PartKernel   = "kernel"
	PartInitrd   = "initrd"
	PartCmdline  = "cmdline"
)

// Covered lists the parts c covers.
func (c Coverage) Covered() []string {
	var out []string
	for _, p := range []struct {
		name string
		ok   bool
	}{{PartFirmware, c.Firmware}, {PartKernel, c.Kernel}, {PartInitrd, c.Initrd}, {PartCmdline, c.Cmdline}} {
		if p.ok {
			out = append(out, p.name)
		}
	}
	return out
}

// Lacks lists the parts a measurement must cover to vouch for the guest
// but c does not: firmware, kernel and cmdline always, the initrd when the
// guest has one (its measure block was given an initrd).
func (c Coverage) Lacks(hasInitrd bool) []string {
	var out []string
	if !c.Firmware {
		out = append(out, PartFirmware)
	}
	if !c.Kernel {
		out = append(out, PartKernel)
	}
	if hasInitrd && !c.Initrd {
		out = append(out, PartInitrd)
	}
	if !c.Cmdline {
		out = append(out, PartCmdline)
	}
	return out
}

// ErrNoCoverage says a measurement does not state what it covers.
var ErrNoCoverage = errors.New("the measurement does not say what it covers (no params.covers)")

// CoverageParam reads the coverage of a measurement from its params as
// manifest.json holds them (a JSON object, or a Coverage or any struct of
// the same JSON form).
func CoverageParam(params map[string]any) (Coverage, error) {
	v, ok := params["covers"]
	if !ok || v == nil {
		return Coverage{}, ErrNoCoverage
	}
	b, err := json.Marshal(v)
	if err != nil {
		return Coverage{}, fmt.Errorf("params.covers: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return Coverage{}, fmt.Errorf("params.covers is not an object: %s", b)
	}
	for _, k := range []string{PartFirmware, PartKernel, PartInitrd, PartCmdline} {
		if _, ok := raw[k]; !ok {
			return Coverage{}, fmt.Errorf("params.covers %s does not say whether it covers the %s", b, k)
		}
	}
	var c Coverage
	if err := json.Unmarshal(b, &c); err != nil {
		return Coverage{}, fmt.Errorf("params.covers %s: %w", b, err)
	}
	return c, nil
}
