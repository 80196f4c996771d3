// Package vtpm registers the TPM PCRs of guests that boot a unified kernel
// image (UKI) with cocobuild: a plain (v)TPM ("tpm") and the vTPMs of
// Azure's SEV-SNP and TDX confidential VMs ("az-snp-vtpm",
// "az-tdx-vtpm"), whose PCR 11 Trustee's default policy compares as
// tpm_pcr11, snp_pcr11 and tdx_pcr11. It gives the measure block's steps
// for PCR 11, the RVPS names, and `cocobuild measure pcr`
// (systemd-measure calculate compatible). The model is measure/pcr.
//
// The hardware's own launch measurement of a vTPM guest (the SNP
// measurement of Azure's paravisor firmware, the TD's MRTD) is the cloud's
// and not modelled here.
package vtpm

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/veraison/corim/comid"
	"github.com/veraison/corim/extensions"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/manifest"
	model "github.com/cocobuild/cocobuild/measure/pcr"
	"github.com/cocobuild/cocobuild/recipes"
	"github.com/cocobuild/cocobuild/tee"
)

var _ tee.TEE = TEE{}

// TEE is the vTPM registration.
type TEE struct{}

// rvpsPrefix is the prefix of the reference-value names of each TEE name
// under Trustee's default attestation policy (ear_default_policy_cpu.rego:
// input.tpm.pcr11 in tpm_pcr11, input.az_snp_vtpm.tpm.pcr11 in snp_pcr11,
// input.az_tdx_vtpm.tpm.pcr11 in tdx_pcr11).
var rvpsPrefix = map[string]string{"tpm": "tpm", "az-snp-vtpm": "snp", "az-tdx-vtpm": "tdx"}

// Names implements tee.TEE.
func (TEE) Names() []string { return []string{"tpm", "az-snp-vtpm", "az-tdx-vtpm"} }

// Attributes implements tee.TEE: uki is the unified kernel image (a uki
// block or a file) whose sections PCR 11 measures, or else osrel is the
// UKI's os-release (its contents) beside the block's kernel, initrd and
// cmdline; phases the systemd-pcrphase phases to compute PCR 11 after
// ("" for none: the value the stub leaves, for a guest without systemd).
func (TEE) Attributes() []string {
	return []string{"uki", "osrel", "phases", "failed_boot_options", "secure_boot"}
}

// node is a decoded vTPM measure block.
type node struct {
	*tee.Block
	uki    *recipes.Artifact
	osrel  string
	phases []string
	// failed is the number of boot options the firmware tries, and
	// that return, before the UKI's (PCR 4).
	failed int
	// secureBoot says the firmware boots with Secure Boot on, its keys
	// the UKI's signer's (the uki block's variable store).
	secureBoot bool
}

// Decode implements tee.TEE. The UKI's .linux, .initrd and .cmdline are
// the block's kernel, initrd and cmdline, its .osrel the osrel attribute.
func (TEE) Decode(b *tee.Block) (recipes.Node, hcl.Diagnostics) {
	n := &node{Block: b}
	var diags hcl.Diagnostics
	if a, ok := b.Attrs["uki"]; ok {
		art, known, d := recipes.DecodeArtifact(a.Expr, b.Ctx)
		diags = append(diags, d...)
		if known {
			n.uki = &art
		}
		for _, other := range []string{"kernel", "initrd", "cmdline", "osrel"} {
			if o, ok := b.Attrs[other]; ok {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: other + " beside uki",
					Detail: fmt.Sprintf("PCR 11 measures the sections of the UKI, which holds the %s: leave %s out.", other, other), Subject: o.NameRange.Ptr()})
			}
		}
	} else if _, ok := b.Attrs["kernel"]; !ok {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "PCR 11 without a UKI",
			Detail: fmt.Sprintf("measure %q: PCR 11 measures a unified kernel image: add uki = uki.NAME (or kernel = kernel.NAME, with initrd, cmdline and osrel, for its sections).", b.Name), Subject: b.FirmwareRange.Ptr()})
	}
	if a, ok := b.Attrs["osrel"]; ok {
		diags = append(diags, recipes.DecodeExpr(a.Expr, b.Ctx, cty.String, &n.osrel)...)
	}
	if _, ok := b.Attrs["vcpus"]; ok {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "vcpus not for this TEE",
			Detail: "The vCPU count enters no PCR that cocobuild computes for a TPM: leave vcpus out.", Subject: b.Attrs["vcpus"].NameRange.Ptr()})
	}
	failed, d := b.FailedBootOptions()
	diags, n.failed = append(diags, d...), failed
	if a, ok := b.Attrs["failed_boot_options"]; ok {
		if _, ok := b.Attrs["uki"]; !ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "failed_boot_options without uki",
				Detail: "PCR 4 is computed from a UKI: add uki = uki.NAME.", Subject: a.NameRange.Ptr()})
		}
	}
	if a, ok := b.Attrs["secure_boot"]; ok {
		diags = append(diags, recipes.DecodeExpr(a.Expr, b.Ctx, cty.Bool, &n.secureBoot)...)
		if _, ok := b.Attrs["uki"]; !ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "secure_boot without uki",
				Detail: "PCR 7 with Secure Boot on is computed from a signed UKI: add uki = uki.NAME (with db_key, db_cert and vars_template).", Subject: a.NameRange.Ptr()})
		}
	}
	ph, d := b.Strings("phases", "", func(s string) error {
		if s != model.NormalizePhase(s) {
			return fmt.Errorf("%q is not a normalized phase: write %q", s, model.NormalizePhase(s))
		}
		return nil
	})
	diags = append(diags, d...)
	n.phases = ph
	return n, diags
}

// params is what the measure step's key covers beyond its inputs.
type params struct {
	tee.StepParams
	UKI    bool     `json:"uki,omitempty"`
	Failed int      `json:"failed_boot_options,omitempty"`
	SB     bool     `json:"secure_boot,omitempty"`
	Osrel  string   `json:"osrel,omitempty"`
	Phases []string `json:"phases"`
}

func stepVersion() string { return tee.StepVersion("pcr", model.ModelVersion) }

// Steps implements recipes.Node.
func (n *node) Steps() []*recipes.Step {
	inputs, sp := n.Inputs()
	p := params{StepParams: sp, Osrel: n.osrel, Phases: n.phases, Failed: n.failed, SB: n.secureBoot}
	if n.uki != nil {
		inputs, p.UKI = append(inputs, *n.uki), true
	}
	return []*recipes.Step{{ID: tee.StepID, Kind: "measure/" + n.TEE, Version: stepVersion(), Params: p, Inputs: inputs, Run: n.run}}
}

func (n *node) run(_ context.Context, sc *recipes.StepContext) error {
	in, err := n.ReadInputs(sc.OutDir)
	if err != nil {
		return err
	}
	entries, err := n.measure(in)
	if err != nil {
		return err
	}
	return tee.WriteEntries(sc.OutDir, entries)
}

// report is an entry's full model output: the PCR 11 events.
type report struct {
	Events []event `json:"events"`
}

type event struct {
	PCR         int    `json:"pcr"`
	Description string `json:"description"`
	SHA256      string `json:"sha256"`
}

// sections are the UKI sections of the block: the uki's, or its kernel,
// osrel, cmdline and initrd.
func (n *node) sections(in *tee.Read) ([]model.Section, error) {
	if n.uki != nil {
		img, err := n.Limits.ReadFile(n.uki.Path, limits.Kernel)
		if err != nil {
			return nil, fmt.Errorf("uki of measure block %q (%s): %w", n.Name, n.uki.Origin, err)
		}
		return model.UKISections(img)
	}
	s := []model.Section{{Name: ".linux", Data: in.Kernel}}
	if n.osrel != "" {
		s = append(s, model.Section{Name: ".osrel", Data: []byte(n.osrel)})
	}
	if n.Cmdline != "" {
		s = append(s, model.Section{Name: ".cmdline", Data: []byte(n.Cmdline)})
	}
	if in.Initrd != nil {
		s = append(s, model.Section{Name: ".initrd", Data: in.Initrd})
	}
	return s, nil
}

func (n *node) measure(in *tee.Read) ([]tee.Entry, error) {
	bank, _ := model.ParseBank("sha256")
	secs, err := n.sections(in)
	if err != nil {
		return nil, fmt.Errorf("measure %q: %w", n.Name, err)
	}
	evs, err := model.UKIEvents(bank, secs)
	if err != nil {
		return nil, fmt.Errorf("measure %q: %w", n.Name, err)
	}
	// PCR 11 covers the UKI's kernel, initrd and cmdline; the firmware is
	// measured into other PCRs.
	covers := manifest.Coverage{Kernel: true, Initrd: in.Initrd != nil, Cmdline: true}
	common := in.Common
	if n.uki != nil {
		covers.Initrd = slices.ContainsFunc(secs, func(s model.Section) bool { return s.Name == ".initrd" })
		common = tee.With(common, "uki_sha256", n.uki.SHA256)
	}
	// With a UKI, the boot path's PCRs 4, 7 and 9 too.
	boot := map[string]any{}
	var bootEvents []model.Event
	if n.uki != nil {
		img, err := n.Limits.ReadFile(n.uki.Path, limits.Kernel)
		if err != nil {
			return nil, fmt.Errorf("measure %q: uki %s: %w", n.Name, n.uki.Origin, err)
		}
		opts := model.BootOptions{UKI: img, FailedBootOptions: n.failed}
		pcr7 := "Secure Boot off, no keys enrolled (a variable store such as Debian's OVMF_VARS_4M.fd)"
		if n.secureBoot {
			var cert []byte
			if cert, err = model.SignerCertificate(img); err != nil {
				return nil, fmt.Errorf("measure %q: secure_boot: the UKI %s: %w (sign it: db_key and db_cert)", n.Name, n.uki.Origin, err)
			}
			opts.SecureBoot = model.EnrolledSecureBoot(cert)
			pcr7 = "Secure Boot on, the UKI's signer certificate enrolled as PK, KEK and db (the uki block's variable store, OVMF_CODE_4M.secboot.fd)"
		}
		evs, err := model.BootEvents(bank, opts)
		if err != nil {
			// PCR 11 stands; the boot path's PCRs are left out, and why.
			common = tee.With(common, "not_computable", map[string]any{"pcr4": err.Error(), "pcr7": err.Error(), "pcr9": err.Error()})
		} else {
			for _, p := range []int{model.BootApps, model.SecureBootPolicy, model.KernelData} {
				boot[fmt.Sprintf("pcr%d", p)] = hex.EncodeToString(model.Replay(bank, evs[p]))
				bootEvents = append(bootEvents, evs[p]...)
			}
			common = tee.With(common, "assumptions", map[string]any{
				"pcr7": pcr7,
				"pcr4": fmt.Sprintf("%d boot option(s) fail before the UKI's; the firmware is edk2 (OVMF)", n.failed),
				"pcr9": "Linux 6.1 or later measures its LoadOptions and initrd"})
		}
	}
	var out []tee.Entry
	for _, ph := range n.phases {
		all := append(append([]model.Event(nil), evs...), model.PhaseEvents(bank, ph)...)
		var rep report
		for _, e := range append(slices.Clone(bootEvents), all...) {
			rep.Events = append(rep.Events, event{PCR: e.PCR, Description: e.Description, SHA256: hex.EncodeToString(e.Digest)})
		}
		params := tee.With(common, "boot", "uki", "phase", ph, "covers", covers)
		if n.osrel != "" {
			params["osrel"] = n.osrel
		}
		name := ""
		if len(n.phases) > 1 || ph != "" {
			name = "phase=" + ph
		}
		values := tee.With(boot, "pcr11", hex.EncodeToString(model.Replay(bank, all)))
		out = append(out, tee.Entry{Measurement: manifest.Measurement{TEE: n.TEE, Name: name, Params: params,
			Values: values}, Report: rep})
	}
	return out, nil
}

// Finish implements recipes.Node.
func (n *node) Finish(results map[string]*recipes.Result) (*recipes.Output, error) {
	return n.Block.Finish(results, tee.FinishOptions{})
}

// RVPSName implements tee.TEE: pcrN is PREFIX_pcrN (tpm_pcr11, snp_pcr11,
// tdx_pcr11).
func (TEE) RVPSName(name, key string) string {
	if p, ok := rvpsPrefix[name]; ok && strings.HasPrefix(key, "pcr") {
		return p + "_" + key
	}
	return ""
}

// RVPSScalars implements tee.TEE: the policy compares the PCRs with "in",
// none with ==.
func (TEE) RVPSScalars(string, map[string]string, map[string]any) ([]string, map[string]any, error) {
	return nil, map[string]any{}, nil
}

// CoRIM identifiers. No published CoRIM profile covers TPM PCRs, so each
// name gets a profile URI of cocobuild's own (publish finds a CoRIM's TEE
// name by its profile, which must therefore differ between the names).
// A reference triple holds the PCRs as CoRIM integrity registers indexed
// by the PCR number (a uint, as the CoRIM draft indexes TPM PCRs), one
// SHA-256 digest each (the bank the values are computed in); its
// environment is the class whose model is the TEE name.
const CoRIMProfileBase = "https://github.com/cocobuild/cocobuild/corim/tpm-pcrs/v1#"

// CoRIMProfile implements tee.TEE: CoRIMProfileBase + name.
func (TEE) CoRIMProfile(name string) string {
	if _, ok := rvpsPrefix[name]; !ok {
		return ""
	}
	return CoRIMProfileBase + name
}

// pcrKey returns the PCR number of a value key pcrN (N in 0-23).
func pcrKey(key string) (uint64, bool) {
	n, err := strconv.ParseUint(strings.TrimPrefix(key, "pcr"), 10, 8)
	if err != nil || !strings.HasPrefix(key, "pcr") || n > 23 || "pcr"+strconv.FormatUint(n, 10) != key {
		return 0, false
	}
	return n, true
}

// mvalExt is the measurement-values-map extension of a PCR measurement:
// the coverage note.
type mvalExt struct {
	Coverage *tee.CoverageNote `cbor:"-70001,keyasint,omitempty" json:"cocobuild-coverage,omitempty"`
}

// CoRIMTriple implements tee.TEE: the entry's PCRs, in PCR order.
func (TEE) CoRIMTriple(name string, values map[string]string, note *tee.CoverageNote) (*comid.ValueTriple, error) {
	var pcrs []uint64
	for k := range values {
		if n, ok := pcrKey(k); ok {
			pcrs = append(pcrs, n)
		}
	}
	if len(pcrs) == 0 {
		return nil, errors.New("no PCR values")
	}
	slices.Sort(pcrs)
	m := &comid.Measurement{}
	m.Val.IntegrityRegisters = comid.NewIntegrityRegisters()
	for _, n := range pcrs {
		k := fmt.Sprintf("pcr%d", n)
		d, err := tee.HexValue(values[k], 32)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		if err := m.Val.IntegrityRegisters.AddDigest(n, *comid.NewHashEntry(tee.HashSHA256, d)); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	if err := m.Val.RegisterExtensions(extensions.NewMap().Add(comid.ExtMval, &mvalExt{Coverage: note})); err != nil {
		return nil, err
	}
	model := name
	return &comid.ValueTriple{Environment: comid.Environment{Class: &comid.Class{Model: &model}},
		Measurements: *comid.NewMeasurements().Add(m)}, nil
}

// CoRIMKey implements tee.TEE: the PCRs.
func (TEE) CoRIMKey(_ string, key string) bool {
	_, ok := pcrKey(key)
	return ok
}

// CoRIMValues implements tee.TEE: each PCR is an integrity register
// indexed by its number holding one SHA-256 digest.
func (TEE) CoRIMValues(_ string, r tee.CoRIMReading) (map[string]string, error) {
	if len(r.Digests) > 0 {
		return nil, errors.New("digests under a measurement key: the PCRs are integrity registers")
	}
	out := map[string]string{}
	for n, ds := range r.Registers {
		if n > 23 {
			return nil, fmt.Errorf("integrity register %d is no PCR (0-23)", n)
		}
		if len(ds) != 1 || ds[0].HashAlgID != tee.HashSHA256 || len(ds[0].HashValue) != 32 {
			return nil, fmt.Errorf("PCR %d: want one sha-256 digest", n)
		}
		out[fmt.Sprintf("pcr%d", n)] = hex.EncodeToString(ds[0].HashValue)
	}
	return out, nil
}

// FirmwareOptional implements tee.FirmwareOptional: no PCR computed here
// reads the firmware image (PCR 4, 7 and 9 assume edk2's behaviour, named
// in the entries' assumptions), so a block may leave firmware out.
func (TEE) FirmwareOptional(string) bool { return true }

// Uncovered implements tee.TEE.
func (TEE) Uncovered(string, map[string]any) string {
	return "PCR 11 holds the unified kernel image (kernel, initrd, cmdline, os-release), not the firmware, which the firmware measures into PCR 0"
}

// FirmwareNeed implements tee.TEE.
func (TEE) FirmwareNeed(name string) string {
	if name == "tpm" {
		return "publish the firmware's PCR 0 (not modelled yet) or accept partial coverage"
	}
	return "verify the firmware through the hardware's launch measurement of the paravisor (the cloud's, not modelled) or accept partial coverage"
}
