package publish

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/manifest"
)

// TestRVPSTDXPolicyValues checks the reference values of Trustee's default
// policy (attestation-service ear_default_policy_cpu.rego) beyond the
// registers: tdvfkernel and tdvfkernelparams are compared with ==, so they
// are scalars, set only when every TDX entry agrees; xfam is tested with
// `in`, so it is a list, of the 8 little-endian bytes as hex, the way
// Trustee's TDX claims carry quote.body.xfam.
func TestRVPSTDXPolicyValues(t *testing.T) {
	kernel, params := digest384("kernel-event"), digest384("loadoptions-event")
	tests := []struct {
		name   string
		change func(m *manifest.Manifest)
		want   map[string]any // the names checked; nil: must be absent
	}{
		{"all agree", func(m *manifest.Manifest) {},
			map[string]any{"tdvfkernel": kernel, "tdvfkernelparams": params, "xfam": []any{"e71a060000000000"},
				"tdx_tdvfkernel": nil, "tdx_tdvfkernelparams": nil,
				"rvps:///example.org/coco/tdx/tdvfkernel:1.0.0": []any{kernel}}},
		{"command lines differ", func(m *manifest.Manifest) { m.Measurements[4].Values["tdvfkernelparams"] = digest384("other") },
			map[string]any{"tdvfkernel": kernel, "tdvfkernelparams": nil}},
		{"one entry has no kernel event", func(m *manifest.Manifest) {
			delete(m.Measurements[4].Values, "tdvfkernel")
			delete(m.Measurements[4].Values, "tdvfkernelparams")
		}, map[string]any{"tdvfkernel": nil, "tdvfkernelparams": nil}},
		{"xfam not declared", func(m *manifest.Manifest) {
			delete(m.Measurements[3].Values, "xfam")
			delete(m.Measurements[4].Values, "xfam")
		}, map[string]any{"xfam": nil, "tdvfkernel": kernel}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := testManifest()
			for _, i := range []int{3, 4} {
				m.Measurements[i].Values["tdvfkernel"] = kernel
				m.Measurements[i].Values["tdvfkernelparams"] = params
				m.Measurements[i].Values["xfam"] = "e71a060000000000"
			}
			tc.change(m)
			if diff := cmp.Diff(tc.want, rvpsNames(t, m, tc.want)); diff != "" {
				t.Errorf("RVPS payload (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRVPSSNPPolicyNames checks the SNP guest-policy values against the
// names and JSON types of Trustee's default policy and SNP verifier:
// snp_guest_abi_major/minor (numbers), snp_smt_allowed and
// snp_single_socket (booleans), compared with ==.
func TestRVPSSNPPolicyNames(t *testing.T) {
	for _, c := range []struct {
		policy string
		want   map[string]any
	}{
		{"0x30000", map[string]any{"snp_guest_abi_major": 0.0, "snp_guest_abi_minor": 0.0, "snp_smt_allowed": true, "snp_single_socket": false}},
		{"0x120105", map[string]any{"snp_guest_abi_major": 1.0, "snp_guest_abi_minor": 5.0, "snp_smt_allowed": false, "snp_single_socket": true}},
	} {
		m := testManifest()
		m.Measurements[0].Params["policy"], m.Measurements[1].Params["policy"] = c.policy, c.policy
		if diff := cmp.Diff(c.want, rvpsNames(t, m, c.want)); diff != "" {
			t.Errorf("policy %s (-want +got):\n%s", c.policy, diff)
		}
	}
}

// rvpsNames publishes the manifest's release as an RVPS message, reads it
// back as the RVPS does and returns the payload's values of the names of
// want (nil for a name it lacks).
func rvpsNames(t *testing.T, m *manifest.Manifest, want map[string]any) map[string]any {
	t.Helper()
	r, err := NewRelease(m, Options{TEEs: testTEEs, Name: "s", Version: "1.0.0", Expires: testExpires, Namespace: "example.org/coco"})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := EncodeRVPS(r, testTEEs)
	if err != nil {
		t.Fatal(err)
	}
	p, err := DecodeRVPS(msg)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for k := range want {
		got[k] = p[k]
	}
	return got
}
