package publish

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/cocobuild/cocobuild/tee"
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

// RVPSName returns the reference-value name of a value of a TEE: the
// attestation policy's name where the TEE has one (snp_launch_measurement,
// mr_td, rtmr_1, ...), otherwise TEE_KEY (e.g. seves_launch_measurement).
func RVPSName(tees tee.Set, name, key string) string {
	if t, ok := tees.Lookup(name); ok {
		if n := t.RVPSName(name, key); n != "" {
			return n
		}
	}
	return name + "_" + key
}

// RVPSURI returns the rvps:///NAMESPACE/TEE/NAME:VERSION name of a value,
// following Trustee's reference-value URI convention; NAME is the policy
// name without the TEE prefix (snp/launch_measurement, tdx/mr_td).
func RVPSURI(tees tee.Set, namespace, name, key, version string) string {
	n := strings.TrimPrefix(RVPSName(tees, name, key), name+"_")
	return "rvps:///" + namespace + "/" + name + "/" + n + ":" + version
}

// RVPSPayload returns the reference values of a release as the RVPS payload:
// every value under its policy name (a sorted list of lowercase hex, or of
// the encoding the TEE's policy compares: tee.RVPSEncoder) and
// again under its rvps:/// URI. Scalars the policy compares with == are set
// only when every entry of the TEE agrees on them.
//
// Scalars are, per TEE, the reference values the policy compares with ==
// rather than `in`: a list never equals the evidence, so each is published
// as one value, and only when every entry of the TEE agrees on it
// (otherwise it is left out, and the policy's check of it fails as it would
// for a value the release does not vouch for).
func RVPSPayload(r *Release, tees tee.Set) (map[string]any, error) {
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
		// A TEE no registration answers to has no scalars, and its
		// values take the names TEE_KEY.
		var names []string
		sc := map[string]any{}
		t, known := tees.Lookup(e.TEE)
		if known {
			var err error
			if names, sc, err = t.RVPSScalars(e.TEE, e.Values, e.Params); err != nil {
				return nil, fmt.Errorf("reference value %s/%s: %w", e.TEE, e.Name, err)
			}
		}
		for k, v := range e.Values {
			if enc, ok := t.(tee.RVPSEncoder); ok {
				var err error
				if v, err = enc.RVPSValue(e.TEE, k, v); err != nil {
					return nil, fmt.Errorf("reference value %s/%s: %w", e.TEE, e.Name, err)
				}
			}
			if !slices.Contains(names, k) {
				add(RVPSName(tees, e.TEE, k), v)
			}
			add(RVPSURI(tees, r.Namespace, e.TEE, k, r.Version), v)
		}
		for _, k := range names {
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

// EncodeRVPS returns the RVPS message of a release, deterministic JSON
// with a final newline.
func EncodeRVPS(r *Release, tees tee.Set) ([]byte, error) {
	p, err := RVPSPayload(r, tees)
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
