// Package sev registers the AMD SEV family (snp, seves, sev) with cocobuild:
// the measure block attributes and step, the RVPS names and CoRIM triples
// of its launch digests, and `cocobuild measure sev`. The model is
// measure/sev.
package sev

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/measure/ovmf"
	model "github.com/cocobuild/cocobuild/measure/sev"
	"github.com/cocobuild/cocobuild/recipes"
	"github.com/cocobuild/cocobuild/tee"
)

var _ tee.TEE = TEE{}

// TEE is the SEV family's registration.
type TEE struct{}

// Names implements tee.TEE.
func (TEE) Names() []string { return []string{"snp", "seves", "sev"} }

// Attributes implements tee.TEE.
func (TEE) Attributes() []string {
	return []string{"vcpu_types", "vmm", "guest_features", "seves_features", "ec2_legacy_rdx", "policy"}
}

// node is a decoded SEV measure block.
type node struct {
	*tee.Block
	vcpuTypes     []string
	vmms          []string
	guestFeatures []string
	sevesFeatures []string // SEV_FEATURES of SEV-ES VMSAs (seves only)
	sevesSet      bool     // seves_features was given: entry names say it
	ec2LegacyRDX  bool
	policy        string // the guest policy a launch passes; not part of the digest
}

// Decode implements tee.TEE.
func (TEE) Decode(b *tee.Block) (recipes.Node, hcl.Diagnostics) {
	n := &node{Block: b}
	var diags hcl.Diagnostics
	strs := func(name string, dst *[]string, def string, check func(string) error) {
		v, d := b.Strings(name, def, check)
		diags = append(diags, d...)
		*dst = v
	}
	strs("vcpu_types", &n.vcpuTypes, "EPYC-v4", checkVCPUType)
	strs("vmm", &n.vmms, "QEMU", func(s string) error { _, err := model.ParseVMM(s); return err })
	strs("guest_features", &n.guestFeatures, "0x1", func(s string) error { _, err := tee.ParseUint(s); return err })
	strs("seves_features", &n.sevesFeatures, "0x0", func(s string) error {
		v, err := tee.ParseUint(s)
		if err == nil && v&1 != 0 {
			err = fmt.Errorf("%q has SNPActive (0x1), which only SEV-SNP VMSAs have", s)
		}
		return err
	})
	if a, ok := b.Attrs["seves_features"]; ok {
		n.sevesSet = true
		if b.TEE != "seves" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Attribute not for this TEE",
				Detail: fmt.Sprintf("seves_features is the SEV_FEATURES of SEV-ES VMSAs and applies to seves measurements, not %s; SNP VMSAs take guest_features.", b.TEE), Subject: a.NameRange.Ptr()})
		}
	}
	if a, ok := b.Attrs["ec2_legacy_rdx"]; ok {
		diags = append(diags, recipes.DecodeExpr(a.Expr, b.Ctx, cty.Bool, &n.ec2LegacyRDX)...)
	}
	n.policy = defaultPolicy[b.TEE]
	if a, ok := b.Attrs["policy"]; ok {
		var s string
		if d := recipes.DecodeExpr(a.Expr, b.Ctx, cty.String, &s); d.HasErrors() {
			diags = append(diags, d...)
		} else if p, err := checkPolicy(b.TEE, s); err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid policy", Detail: err.Error() + ".", Subject: a.Expr.Range().Ptr()})
		} else {
			n.policy = p
		}
	}
	return n, diags
}

// checkVCPUType accepts the QEMU CPU model names that vcpu_types takes. A
// recipe names vCPUs by type only, so the error offers the known types and
// nothing else (no CPUID signature, no family/model/stepping).
func checkVCPUType(s string) error {
	_, err := model.CPUSignature(s)
	var u *model.UnknownCPUTypeError
	if !errors.As(err, &u) {
		return err
	}
	msg := fmt.Sprintf("%q is not a vCPU type", s)
	if u.Suggestion != "" {
		msg += fmt.Sprintf("; did you mean %q?", u.Suggestion)
	} else {
		msg += "."
	}
	return fmt.Errorf("%s vcpu_types takes QEMU CPU model names: %s", msg, strings.Join(model.CPUTypes(), ", "))
}

// defaultPolicy is QEMU's default guest policy of each SEV mode: what a
// launch passes when the recipe sets none.
var defaultPolicy = map[string]string{"snp": "0x30000", "seves": "0x5", "sev": "0x1"}

// checkPolicy parses a guest policy and returns it in canonical hex. An
// SNP policy must have bit 17 (reserved, must be one) set; SEV-ES needs
// bit 2 (ES required).
func checkPolicy(mode, s string) (string, error) {
	v, err := tee.ParseUint(s)
	if err != nil {
		return "", err
	}
	switch {
	case mode == "snp" && v&(1<<17) == 0:
		return "", fmt.Errorf("SNP policy %s: bit 17 (0x20000) is reserved and must be set, e.g. 0x30000", s)
	case mode != "snp" && v > 0xffffffff:
		return "", fmt.Errorf("SEV policy %s: it is 32 bits", s)
	case mode == "seves" && v&0x4 == 0:
		return "", fmt.Errorf("SEV-ES policy %s: bit 2 (0x4, ES required) must be set", s)
	}
	return fmt.Sprintf("0x%x", v), nil
}

// params is what the measure step's key covers beyond its inputs.
type params struct {
	tee.StepParams
	VCPUs         []int    `json:"vcpus,omitempty"`
	VCPUTypes     []string `json:"vcpu_types,omitempty"`
	VMMs          []string `json:"vmms,omitempty"`
	GuestFeatures []string `json:"guest_features,omitempty"`
	SEVESFeatures []string `json:"seves_features,omitempty"`
	EC2LegacyRDX  bool     `json:"ec2_legacy_rdx,omitempty"`
}

// models are the versions of the measure packages the step depends on.
type models struct{ SEV, OVMF string }

// currentModels are the versions the measure packages declare.
var currentModels = models{SEV: model.ModelVersion, OVMF: ovmf.ModelVersion}

func stepVersion(m models) string { return tee.StepVersion("sev", m.SEV, "ovmf", m.OVMF) }

// Steps implements recipes.Node.
func (n *node) Steps() []*recipes.Step {
	inputs, sp := n.Inputs()
	p := params{StepParams: sp, VCPUs: n.VCPUs, VCPUTypes: n.vcpuTypes, VMMs: n.vmms, GuestFeatures: n.guestFeatures,
		SEVESFeatures: n.sevesFeatures, EC2LegacyRDX: n.ec2LegacyRDX}
	return []*recipes.Step{{ID: tee.StepID, Kind: "measure/" + n.TEE, Version: stepVersion(currentModels), Params: p, Inputs: inputs, Run: n.run}}
}

func (n *node) run(ctx context.Context, sc *recipes.StepContext) error {
	in, err := n.ReadInputs(sc.OutDir)
	if err != nil {
		return err
	}
	entries, err := n.measure(ctx, in)
	if err != nil {
		return err
	}
	return tee.WriteEntries(sc.OutDir, entries)
}

func (n *node) measure(ctx context.Context, in *tee.Read) ([]tee.Entry, error) {
	mode, err := model.ParseMode(n.TEE)
	if err != nil {
		return nil, err
	}
	prep, err := model.Prepare(in.Firmware)
	if err != nil {
		return nil, fmt.Errorf("firmware %s: %w", n.Firmware.Origin, err)
	}
	var db *model.DirectBoot
	if n.Kernel != nil {
		db = &model.DirectBoot{Kernel: in.Kernel, Initrd: in.Initrd, Cmdline: n.Cmdline}
	}
	vcpus, types, vmms, features, sevesFeatures := n.VCPUs, n.vcpuTypes, n.vmms, n.guestFeatures, n.sevesFeatures
	if mode == model.ModeSEV { // SEV has no VMSAs: one digest
		vcpus, types, vmms, features = []int{1}, []string{""}, []string{"QEMU"}, []string{"0"}
	}
	if mode != model.ModeSEVES || len(sevesFeatures) == 0 {
		sevesFeatures = []string{"0x0"}
	}
	var out []tee.Entry
	for _, vmmName := range vmms {
		vmm, _ := model.ParseVMM(vmmName)
		for _, cpu := range types {
			for _, nv := range vcpus {
				for _, gf := range features {
					for _, sf := range sevesFeatures {
						if err := ctx.Err(); err != nil {
							return nil, err
						}
						feat, _ := tee.ParseUint(gf)
						sevesFeat, _ := tee.ParseUint(sf)
						p := model.Params{Mode: mode, VCPUs: nv, VCPUType: cpu, VMM: vmm, GuestFeatures: feat, SEVESFeatures: sevesFeat, DirectBoot: db, EC2LegacyRDX: n.ec2LegacyRDX}
						r, err := prep.Measure(p)
						if err != nil {
							return nil, err
						}
						name := ""
						covers, notes := r.Covers, r.Notes
						if db != nil {
							if why := DirectBootUnchecked(in.FirmwareInfo, in.FirmwareErr); why != "" {
								covers.Kernel, covers.Initrd, covers.Cmdline = false, false, false
								notes = append(slices.Clone(notes), why)
							}
						}
						params := tee.With(in.Common, "mode", n.TEE, "variant", r.Variant, "covers", covers)
						if mode != model.ModeSEV {
							name = fmt.Sprintf("vcpus=%d,cpu=%s,vmm=%s,gf=%s", nv, cpu, vmm, gf)
							params = tee.With(params, "vcpus", nv, "vcpu_type", cpu, "vmm", vmm.String(), "guest_features", gf)
							if mode == model.ModeSEVES {
								params["seves_features"] = sf
								if n.sevesSet {
									name += ",seves_features=" + sf
								}
							}
							if r.HasVCPUSig {
								params["vcpu_sig"] = fmt.Sprintf("0x%x", r.VCPUSig)
							}
						}
						if len(notes) > 0 {
							params["notes"] = notes
						}
						out = append(out, tee.Entry{Measurement: manifest.Measurement{TEE: n.TEE, Name: name, Params: params,
							Values: map[string]any{"launch_measurement": hex.EncodeToString(r.Digest)}}})
					}
				}
			}
		}
	}
	return out, nil
}

// Finish implements recipes.Node: every entry states the guest policy a
// launch passes.
func (n *node) Finish(results map[string]*recipes.Result) (*recipes.Output, error) {
	return n.Block.Finish(results, tee.FinishOptions{Entry: func(m *manifest.Measurement) {
		if n.policy != "" {
			m.Params = tee.With(m.Params, "policy", n.policy)
		}
	}})
}

// DirectBootUnchecked says why a SEV digest taken with a kernel, initrd and
// cmdline does not cover them, or "" when the firmware checks them against
// the SEV hashes table. Without that check the VMM measures a table that
// nothing reads, and the guest runs whatever kernel it is given.
func DirectBootUnchecked(info *ovmf.Info, err error) string {
	if err != nil {
		return directBootNote(false, "", err)
	}
	return directBootNote(info.VerifiesDirectBoot, info.DirectBootEvidence, nil)
}

// directBootNote is DirectBootUnchecked for an ovmf.Verdict's answer.
func directBootNote(verifies bool, evidence string, err error) string {
	switch {
	case err != nil:
		return fmt.Sprintf("kernel, initrd and cmdline not covered: the firmware could not be inspected (%v), so nothing shows that it checks them against the SEV hashes table", err)
	case !verifies:
		return "kernel, initrd and cmdline not covered: the firmware does not check them against the SEV hashes table (" + evidence + "); use a firmware built from OvmfPkg/AmdSev (e.g. Debian's OVMF.amdsev.fd)"
	}
	return ""
}
