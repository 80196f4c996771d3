package sev

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/veraison/corim/comid"
	"github.com/veraison/corim/extensions"

	"github.com/cocobuild/cocobuild/tee"
)

// RVPSName implements tee.TEE: Trustee's default attestation policy
// (attestation-service ear_default_policy_cpu.rego) names the SNP launch
// digest snp_launch_measurement; SEV and SEV-ES digests take the default
// name (seves_launch_measurement).
func (TEE) RVPSName(name, key string) string {
	if name == "snp" && key == "launch_measurement" {
		return "snp_launch_measurement"
	}
	return ""
}

// snpPolicyScalars are the SNP guest-policy fields the default policy
// compares with ==, derived from an entry's "policy" parameter when the
// manifest has one. Trustee's SNP verifier reports them as
// policy_abi_major/minor (numbers) and policy_smt_allowed,
// policy_single_socket (booleans).
var snpPolicyScalars = []string{"snp_guest_abi_minor", "snp_guest_abi_major", "snp_smt_allowed", "snp_single_socket"}

// RVPSScalars implements tee.TEE.
func (TEE) RVPSScalars(name string, _ map[string]string, params map[string]any) ([]string, map[string]any, error) {
	if name != "snp" {
		return nil, map[string]any{}, nil
	}
	p, ok, err := policyParam(params["policy"])
	if err != nil || !ok {
		return snpPolicyScalars, map[string]any{}, err
	}
	return snpPolicyScalars, map[string]any{
		"snp_guest_abi_minor": float64(p & 0xff),
		"snp_guest_abi_major": float64((p >> 8) & 0xff),
		"snp_smt_allowed":     p&(1<<16) != 0,
		"snp_single_socket":   p&(1<<20) != 0,
	}, nil
}

// policyParam reads an SNP guest policy given as a number or a hex string.
func policyParam(v any) (uint64, bool, error) {
	switch p := v.(type) {
	case nil:
		return 0, false, nil
	case float64:
		if p < 0 || p != float64(uint64(p)) {
			return 0, false, fmt.Errorf("policy %v is not a 64-bit unsigned integer", p)
		}
		return uint64(p), true, nil
	case string:
		n, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(p), "0x"), 16, 64)
		if err != nil {
			return 0, false, fmt.Errorf("policy %q is not a hex number", p)
		}
		return n, true, nil
	}
	return 0, false, fmt.Errorf("policy %v is neither a number nor a hex string", v)
}

// CoRIM identifiers. SNP follows Veraison's SEV-SNP scheme (services
// scheme/sevsnp), which registers the profile
// tag:amd.com,2024:snp-corim-profile and wants a reference environment whose
// class-id is the OID 1.3.6.1.4.1.3704.3.1 and whose instance is the launch
// measurement as bytes (the scheme looks reference values up by it), with
// measurements under uint mkeys: MEASUREMENT is mkey 641 with a SHA-384
// digest. SEV and SEV-ES get no CoRIM.
const (
	CoRIMProfile  = "tag:amd.com,2024:snp-corim-profile"
	ClassOID      = "1.3.6.1.4.1.3704.3.1"
	MeasurementMk = 641
)

// CoRIMProfile implements tee.TEE.
func (TEE) CoRIMProfile(name string) string {
	if name == "snp" {
		return CoRIMProfile
	}
	return ""
}

// CoRIMKey implements tee.TEE.
func (TEE) CoRIMKey(name, key string) bool { return name == "snp" && key == "launch_measurement" }

// CoRIMValues implements tee.TEE: the launch measurement is the SHA-384
// digest under mkey 641.
func (TEE) CoRIMValues(_ string, r tee.CoRIMReading) (map[string]string, error) {
	out := map[string]string{}
	for k, ds := range r.Digests {
		if k != MeasurementMk {
			return nil, errors.New("digests under an unexpected measurement key")
		}
		for _, d := range ds {
			if d.HashAlgID != tee.HashSHA384 {
				return nil, fmt.Errorf("digest algorithm %d, want sha-384", d.HashAlgID)
			}
			out["launch_measurement"] = hex.EncodeToString(d.HashValue)
		}
	}
	return out, nil
}

// mvalExt is the measurement-values-map extension of an SNP measurement:
// the coverage note.
type mvalExt struct {
	Coverage *tee.CoverageNote `cbor:"-70001,keyasint,omitempty" json:"cocobuild-coverage,omitempty"`
}

// CoRIMTriple implements tee.TEE.
func (TEE) CoRIMTriple(name string, values map[string]string, note *tee.CoverageNote) (*comid.ValueTriple, error) {
	if name != "snp" {
		return nil, fmt.Errorf("no CoRIM mapping for TEE %q", name)
	}
	d, err := tee.HexValue(values["launch_measurement"], 48)
	if err != nil {
		return nil, fmt.Errorf("launch_measurement: %w", err)
	}
	m, err := comid.NewUintMeasurement(uint64(MeasurementMk))
	if err != nil {
		return nil, err
	}
	m.AddDigest(tee.HashSHA384, d)
	if err := m.Val.RegisterExtensions(extensions.NewMap().Add(comid.ExtMval, &mvalExt{Coverage: note})); err != nil {
		return nil, err
	}
	class := comid.NewClassOID(ClassOID)
	if class == nil {
		return nil, errors.New("SNP class OID rejected")
	}
	inst, err := comid.NewBytesInstance(d)
	if err != nil {
		return nil, err
	}
	return &comid.ValueTriple{Environment: comid.Environment{Class: class, Instance: inst},
		Measurements: *comid.NewMeasurements().Add(m)}, nil
}

// Uncovered implements tee.TEE.
func (TEE) Uncovered(name string, _ map[string]any) string {
	return "the firmware does not make the launch digest commit to them"
}

// FirmwareNeed implements tee.TEE.
func (TEE) FirmwareNeed(string) string {
	return "with a firmware that checks the direct-boot kernel, initrd and cmdline against its SEV hashes table (the OvmfPkg/AmdSev build, such as Debian's OVMF.amdsev.fd)"
}
