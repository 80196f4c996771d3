package publish

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// The Trustee RVPS message: what `rvps-tool register --path` reads and the
// KBS `POST /kbs/v0/reference-value` endpoint takes. The "sample" extractor
// base64-decodes payload into a JSON object of reference-value names, each
// holding the value the attestation policy compares against.
const (
	RVPSMessageVersion = "0.1.0" // the only version Trustee's RVPS accepts
	RVPSType           = "sample"
)

// RVPSMessage is the envelope the RVPS takes.
type RVPSMessage struct {
	Version string `json:"version"`
	Type    string `json:"type"`
	Payload string `json:"payload"` // base64 of the JSON payload
}

// policyName maps a manifest value key of a TEE to the reference-value name
// of Trustee's default attestation policy (see attestation-service
// ear_default_policy_cpu.rego). The policy tests these names with `in`, so
// each holds a list of every value the release accepts.
var policyName = map[string]map[string]string{
	"snp": {"launch_measurement": "snp_launch_measurement"},
	"tdx": {"mrtd": "mr_td", "rtmr0": "rtmr_0", "rtmr1": "rtmr_1", "rtmr2": "rtmr_2", "rtmr3": "rtmr_3", "xfam": "xfam"},
}

// RVPSName returns the reference-value name of a value of a TEE: the
// default policy's name where it has one (snp_launch_measurement, mr_td,
// rtmr_1, ...), otherwise TEE_KEY (e.g. seves_launch_measurement).
func RVPSName(tee, key string) string {
	if n, ok := policyName[tee][key]; ok {
		return n
	}
	return tee + "_" + key
}

// RVPSURI returns the rvps:///NAMESPACE/TEE/NAME:VERSION name of a value,
// following Trustee's reference-value URI convention; NAME is the policy
// name without the TEE prefix (snp/launch_measurement, tdx/mr_td).
func RVPSURI(namespace, tee, key, version string) string {
	n := strings.TrimPrefix(RVPSName(tee, key), tee+"_")
	return "rvps:///" + namespace + "/" + tee + "/" + n + ":" + version
}

// snpPolicyScalars are the SNP guest-policy fields the default policy
// compares with == (so they are scalars), derived from an entry's "policy"
// parameter when the manifest has one. Trustee's SNP verifier reports them
// as policy_abi_major/minor (numbers) and policy_smt_allowed,
// policy_single_socket (booleans).
func snpPolicyScalars(p uint64) map[string]any {
	return map[string]any{
		"snp_guest_abi_minor": float64(p & 0xff),
		"snp_guest_abi_major": float64((p >> 8) & 0xff),
		"snp_smt_allowed":     p&(1<<16) != 0,
		"snp_single_socket":   p&(1<<20) != 0,
	}
}

// scalarNames are, per TEE, the reference values the default policy
// compares with == rather than `in`: a list never equals the evidence, so
// each is published as one value, and only when every entry of the TEE
// agrees on it (otherwise it is left out, and the policy's check of it
// fails as it would for a value the release does not vouch for).
var scalarNames = map[string][]string{
	"snp": {"snp_guest_abi_minor", "snp_guest_abi_major", "snp_smt_allowed", "snp_single_socket"},
	// tdx_uefi_event_tdvfkernel_ok / _tdvfkernelparams_ok: the SHA-384
	// digest of the kernel's EV_EFI_BOOT_SERVICES_APPLICATION event and
	// of the EV_EVENT_TAG "LOADED_IMAGE::LoadOptions", lowercase hex as
	// Trustee's event-log claims carry them.
	"tdx": {"tdvfkernel", "tdvfkernelparams"},
}

// entryScalars returns the scalar reference values of an entry (see
// scalarNames); a name missing from the map is one the entry has no value
// for.
func entryScalars(e Entry) (map[string]any, error) {
	out := map[string]any{}
	switch e.TEE {
	case "snp":
		p, ok, err := policyParam(e.Params["policy"])
		if err != nil {
			return nil, err
		}
		if ok {
			out = snpPolicyScalars(p)
		}
	case "tdx":
		for _, k := range scalarNames["tdx"] {
			if v, ok := e.Values[k]; ok {
				out[k] = v
			}
		}
	}
	return out, nil
}

// RVPSPayload returns the reference values of a release as the RVPS payload:
// every value under its policy name (a sorted list of lowercase hex) and
// again under its rvps:/// URI. Scalars the policy compares with == are set
// only when every entry of the TEE agrees on them.
func RVPSPayload(r *Release) (map[string]any, error) {
	lists := map[string]map[string]bool{}
	add := func(name, v string) {
		if lists[name] == nil {
			lists[name] = map[string]bool{}
		}
		lists[name][v] = true
	}
	scalars := map[string]any{}
	conflict := map[string]bool{}
	for _, e := range r.Entries {
		for k, v := range e.Values {
			if !slices.Contains(scalarNames[e.TEE], k) {
				add(RVPSName(e.TEE, k), v)
			}
			add(RVPSURI(r.Namespace, e.TEE, k, r.Version), v)
		}
		sc, err := entryScalars(e)
		if err != nil {
			return nil, fmt.Errorf("reference value %s/%s: %w", e.TEE, e.Name, err)
		}
		for _, k := range scalarNames[e.TEE] {
			v, have := sc[k]
			prev, seen := scalars[k]
			switch {
			case !have:
				conflict[k] = true
			case seen && !reflect.DeepEqual(prev, v):
				conflict[k] = true
			default:
				scalars[k] = v
			}
		}
	}
	out := map[string]any{}
	for name, set := range lists {
		vals := make([]string, 0, len(set))
		for v := range set {
			vals = append(vals, v)
		}
		sort.Strings(vals)
		out[name] = vals
	}
	for k, v := range scalars {
		if !conflict[k] {
			out[k] = v
		}
	}
	if r.PartialCoverage {
		out[RVPSPartialCoverageName] = rvpsPartialCoverage(r)
	}
	return out, nil
}

// RVPSPartialCoverageName is the name under which the RVPS payload of a
// release with partial coverage lists the entries that do not vouch for the
// whole guest. The RVPS stores it as one more reference value (any JSON
// value); no policy queries it, so it changes no verdict, but whoever
// registers the message can see what the values accept.
const RVPSPartialCoverageName = "cocobuild_partial_coverage"

// rvpsPartialCoverage lists the partial entries: name, TEE, what they cover
// and lack, and their values under the manifest's keys.
func rvpsPartialCoverage(r *Release) []map[string]any {
	out := []map[string]any{}
	for _, e := range r.PartialEntries() {
		out = append(out, map[string]any{"name": e.Name, "tee": e.TEE, "covers": e.Coverage.Covers,
			"lacks": e.Coverage.Lacks, "values": e.Values})
	}
	return out
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

// EncodeRVPS returns the RVPS message of a release, deterministic JSON
// with a final newline.
func EncodeRVPS(r *Release) ([]byte, error) {
	p, err := RVPSPayload(r)
	if err != nil {
		return nil, err
	}
	pb, err := json.Marshal(p) // map keys sorted: deterministic
	if err != nil {
		return nil, err
	}
	m := RVPSMessage{Version: RVPSMessageVersion, Type: RVPSType, Payload: base64.StdEncoding.EncodeToString(pb)}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// DecodeRVPS reads an RVPS message and returns its payload, checking what
// the RVPS checks: version 0.1.0, a known type, a base64 JSON object.
func DecodeRVPS(b []byte) (map[string]any, error) {
	var m RVPSMessage
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("RVPS message: %w", err)
	}
	if m.Version != RVPSMessageVersion {
		return nil, fmt.Errorf("RVPS message version %q: the RVPS accepts only %q", m.Version, RVPSMessageVersion)
	}
	if m.Type != RVPSType {
		return nil, fmt.Errorf("RVPS message type %q: want %q", m.Type, RVPSType)
	}
	pb, err := base64.StdEncoding.DecodeString(m.Payload)
	if err != nil {
		return nil, fmt.Errorf("RVPS payload is not base64: %w", err)
	}
	var p map[string]any
	if err := json.Unmarshal(pb, &p); err != nil {
		return nil, fmt.Errorf("RVPS payload is not a JSON object: %w", err)
	}
	if len(p) == 0 {
		return nil, errors.New("RVPS payload holds no reference values")
	}
	return p, nil
}
