package tdx

import (
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	cbor "github.com/fxamacker/cbor/v2"
	"github.com/veraison/corim/comid"
	"github.com/veraison/corim/extensions"
	"github.com/veraison/swid"

	"github.com/cocobuild/cocobuild/tee"
)

// policyName maps a value key to the reference-value name of Trustee's
// default attestation policy (attestation-service
// ear_default_policy_cpu.rego).
var policyName = map[string]string{"mrtd": "mr_td", "rtmr0": "rtmr_0", "rtmr1": "rtmr_1", "rtmr2": "rtmr_2", "rtmr3": "rtmr_3", "xfam": "xfam"}

// RVPSName implements tee.TEE.
func (TEE) RVPSName(_, key string) string { return policyName[key] }

// scalars are the values the default policy compares with ==:
// tdx_uefi_event_tdvfkernel_ok / _tdvfkernelparams_ok take the SHA-384
// digest of the kernel's EV_EFI_BOOT_SERVICES_APPLICATION event and of the
// EV_EVENT_TAG "LOADED_IMAGE::LoadOptions", lowercase hex as Trustee's
// event-log claims carry them.
var scalars = []string{"tdvfkernel", "tdvfkernelparams"}

// RVPSScalars implements tee.TEE.
func (TEE) RVPSScalars(_ string, values map[string]string, _ map[string]any) ([]string, map[string]any, error) {
	out := map[string]any{}
	for _, k := range scalars {
		if v, ok := values[k]; ok {
			out[k] = v
		}
	}
	return scalars, out, nil
}

// CoRIM identifiers. TDX follows the Intel profile (OID
// 2.16.840.1.113741.1.16.1, which veraison/corim registers in
// profiles/tdx): MRTD is the tee.mrtee measurement extension (key -83, a
// set of digests), and RTMR0-3, for which the profile has no code point,
// are the base CoRIM integrity registers named "rtmr0" … "rtmr3". The
// environment is the class vendor "Intel Corporation", model "TDX".
const (
	CoRIMProfile = "2.16.840.1.113741.1.16.1"
	Vendor       = "Intel Corporation"
	Model        = "TDX"
	// MrTeeKey is the Intel profile's tee.mrtee measurement-values-map
	// key, under which the CoMID holds MRTD.
	MrTeeKey = -83
)

// CoRIMProfile implements tee.TEE.
func (TEE) CoRIMProfile(string) string { return CoRIMProfile }

// CoRIMKey implements tee.TEE: MRTD and the RTMRs.
func (TEE) CoRIMKey(_, key string) bool { return key == "mrtd" || strings.HasPrefix(key, "rtmr") }

// mvalExt are the measurement-values-map extensions of a TDX measurement:
// the Intel profile's tee.mrtee and the coverage note.
type mvalExt struct {
	MrTee    *comid.Digests    `cbor:"-83,keyasint,omitempty" json:"mrtee,omitempty"`
	Coverage *tee.CoverageNote `cbor:"-70001,keyasint,omitempty" json:"cocobuild-coverage,omitempty"`
}

// CoRIMTriple implements tee.TEE.
func (TEE) CoRIMTriple(_ string, values map[string]string, note *tee.CoverageNote) (*comid.ValueTriple, error) {
	mrtd, err := tee.HexValue(values["mrtd"], 48)
	if err != nil {
		return nil, fmt.Errorf("mrtd: %w", err)
	}
	ext := &mvalExt{MrTee: comid.NewDigests().AddDigest(tee.HashSHA384, mrtd), Coverage: note}
	m := &comid.Measurement{}
	for i := range 4 {
		k := fmt.Sprintf("rtmr%d", i)
		if _, ok := values[k]; !ok {
			continue
		}
		d, err := tee.HexValue(values[k], 48)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		if m.Val.IntegrityRegisters == nil {
			m.Val.IntegrityRegisters = comid.NewIntegrityRegisters()
		}
		if err := m.Val.IntegrityRegisters.AddDigest(k, *comid.NewHashEntry(tee.HashSHA384, d)); err != nil {
			return nil, err
		}
	}
	if err := m.Val.RegisterExtensions(extensions.NewMap().Add(comid.ExtMval, ext)); err != nil {
		return nil, err
	}
	vendor, model := Vendor, Model
	return &comid.ValueTriple{Environment: comid.Environment{Class: &comid.Class{Vendor: &vendor, Model: &model}},
		Measurements: *comid.NewMeasurements().Add(m)}, nil
}

// CoRIMValues implements tee.TEE: MRTD is the one SHA-384 digest of the
// tee.mrtee extension; the RTMRs are integrity registers.
func (TEE) CoRIMValues(_ string, r tee.CoRIMReading) (map[string]string, error) {
	if len(r.Digests) > 0 {
		return nil, errors.New("digests under an unexpected measurement key")
	}
	if len(r.Registers) > 0 {
		return nil, errors.New("integrity registers indexed by number: TDX's are named rtmr0-rtmr3")
	}
	out := map[string]string{}
	if raw, ok := r.Extensions[MrTeeKey]; ok {
		var ds []swid.HashEntry
		if err := cbor.Unmarshal(raw, &ds); err != nil || len(ds) != 1 {
			return nil, errors.New("tee.mrtee is not one digest")
		}
		if ds[0].HashAlgID != tee.HashSHA384 {
			return nil, fmt.Errorf("tee.mrtee algorithm %d, want sha-384", ds[0].HashAlgID)
		}
		out["mrtd"] = hex.EncodeToString(ds[0].HashValue)
	}
	return out, nil
}

// Uncovered implements tee.TEE: an entry's RTMR values rest on an
// assumption, or the RTMRs that would hold the boot cannot be computed.
func (TEE) Uncovered(_ string, params map[string]any) string {
	if params["assumptions"] != nil {
		return fmt.Sprintf("the RTMR values rest on an assumption (%v)", params["assumptions"])
	}
	why := "the RTMRs that would hold them cannot be computed"
	if nc, ok := params["not_computable"].(map[string]any); ok && len(nc) > 0 {
		ks := make([]string, 0, len(nc))
		for k := range nc {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		var rs []string
		for _, k := range ks {
			rs = append(rs, fmt.Sprintf("%s: %v", k, nc[k]))
		}
		why += " (" + strings.Join(rs, "; ") + ")"
	}
	return why
}

// FirmwareNeed implements tee.TEE.
func (TEE) FirmwareNeed(string) string {
	return "with a TDVF that measures the boot into RTMRs (CC measurement)"
}
