// Package cca registers Arm CCA realms with cocobuild: the measure block
// attributes and step (the VMM, its arguments, the host's realm
// capabilities and the VMM's DTB), the reference value Trustee's CCA
// policy compares (the RIM, base64), and `cocobuild measure cca`
// (realm-measurements compatible). The model is measure/cca.
package cca

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/veraison/corim/comid"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/internal/decompress"
	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/manifest"
	model "github.com/cocobuild/cocobuild/measure/cca"
	"github.com/cocobuild/cocobuild/recipes"
	"github.com/cocobuild/cocobuild/tee"
)

var (
	_ tee.TEE              = TEE{}
	_ tee.FirmwareOptional = TEE{}
	_ tee.RVPSEncoder      = TEE{}
)

// TEE is the Arm CCA registration.
type TEE struct{}

// Names implements tee.TEE.
func (TEE) Names() []string { return []string{"cca"} }

// hostAttrs are the host capability attributes, as realm-measurements'
// options name them (with underscores).
var hostAttrs = []string{"ipa_bits", "num_bps", "num_wps", "sve_vl", "pmu_num_ctrs", "pmu", "lpa2"}

// Attributes implements tee.TEE: vmm ("qemu" or "kvmtool"), vmm_args
// (the VMM's own arguments, which load the block's firmware, kernel and
// initrd), dtb (the device tree the VMM generates for them; generated when
// left out) and the host's realm capabilities.
func (TEE) Attributes() []string {
	return append([]string{"vmm", "vmm_args", "dtb"}, hostAttrs...)
}

// node is a decoded CCA measure block.
type node struct {
	*tee.Block
	vmm     string
	vmmArgs []string
	dtb     *recipes.Artifact // nil: generated
	host    hostParams
}

// hostParams are the host capabilities a block declares (nil: unknown).
type hostParams struct {
	IPABits    *int  `json:"ipa_bits,omitempty"`
	NumBPs     *int  `json:"num_bps,omitempty"`
	NumWPs     *int  `json:"num_wps,omitempty"`
	SVEVL      *int  `json:"sve_vl,omitempty"`
	PMUNumCtrs *int  `json:"pmu_num_ctrs,omitempty"`
	PMU        *bool `json:"pmu,omitempty"`
	LPA2       *bool `json:"lpa2,omitempty"`
}

func (h hostParams) model() model.Host {
	return model.Host{IPABits: h.IPABits, NumBPs: h.NumBPs, NumWPs: h.NumWPs, SVEVL: h.SVEVL, PMUNumCtrs: h.PMUNumCtrs, PMU: h.PMU, LPA2: h.LPA2}
}

// Decode implements tee.TEE.
func (TEE) Decode(b *tee.Block) (recipes.Node, hcl.Diagnostics) {
	n := &node{Block: b}
	var diags hcl.Diagnostics
	missing := func(name, detail string) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing required argument",
			Detail: fmt.Sprintf("measure %q: %s", b.Name, detail), Subject: b.FirmwareRange.Ptr()})
	}
	if a, ok := b.Attrs["vmm"]; ok {
		diags = append(diags, recipes.DecodeExpr(a.Expr, b.Ctx, cty.String, &n.vmm)...)
		if n.vmm != model.QEMU && n.vmm != model.Kvmtool && !diags.HasErrors() {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid vmm",
				Detail: "vmm is the VMM that builds the realm: \"qemu\" or \"kvmtool\".", Subject: a.Expr.Range().Ptr()})
		}
	} else {
		missing("vmm", "vmm = \"qemu\" or \"kvmtool\" names the VMM whose realm layout is measured.")
	}
	if a, ok := b.Attrs["vmm_args"]; ok {
		diags = append(diags, recipes.DecodeExpr(a.Expr, b.Ctx, cty.List(cty.String), &n.vmmArgs)...)
	} else {
		missing("vmm_args", "vmm_args are the VMM's own arguments (memory, vCPUs, the images it loads), e.g. [\"--realm\", \"-c\", \"2\", \"-m\", \"1G\", \"-k\", \"Image\"] for kvmtool.")
	}
	if a, ok := b.Attrs["dtb"]; ok {
		art, known, d := recipes.DecodeArtifact(a.Expr, b.Ctx)
		diags = append(diags, d...)
		if known {
			n.dtb = &art
		}
	}
	if a, ok := b.Attrs["vcpus"]; ok {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "vcpus not for this TEE",
			Detail: "A realm's vCPUs are set in vmm_args (qemu -smp, kvmtool -c) and the DTB: leave vcpus out.", Subject: a.NameRange.Ptr()})
	}
	for _, name := range hostAttrs {
		a, ok := b.Attrs[name]
		if !ok {
			continue
		}
		if name == "pmu" || name == "lpa2" {
			var v bool
			diags = append(diags, recipes.DecodeExpr(a.Expr, b.Ctx, cty.Bool, &v)...)
			*map[string]**bool{"pmu": &n.host.PMU, "lpa2": &n.host.LPA2}[name] = &v
			continue
		}
		var v int
		diags = append(diags, recipes.DecodeExpr(a.Expr, b.Ctx, cty.Number, &v)...)
		*map[string]**int{"ipa_bits": &n.host.IPABits, "num_bps": &n.host.NumBPs, "num_wps": &n.host.NumWPs,
			"sve_vl": &n.host.SVEVL, "pmu_num_ctrs": &n.host.PMUNumCtrs}[name] = &v
	}
	if !diags.HasErrors() {
		if err := n.host.model().Check(); err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid host capabilities",
				Detail: fmt.Sprintf("measure %q: %v.", b.Name, err), Subject: b.FirmwareRange.Ptr()})
		}
	}
	return n, diags
}

// params is what the measure step's key covers beyond its inputs.
type params struct {
	tee.StepParams
	VMM     string     `json:"vmm"`
	VMMArgs []string   `json:"vmm_args"`
	Host    hostParams `json:"host"`
	DTB     bool       `json:"dtb"`
}

func stepVersion() string { return tee.StepVersion("cca", model.ModelVersion) }

// Steps implements recipes.Node.
func (n *node) Steps() []*recipes.Step {
	inputs, sp := n.Inputs()
	p := params{StepParams: sp, VMM: n.vmm, VMMArgs: n.vmmArgs, Host: n.host}
	if n.dtb != nil {
		inputs, p.DTB = append(inputs, *n.dtb), true
	}
	return []*recipes.Step{{ID: tee.StepID, Kind: "measure/" + n.TEE, Version: stepVersion(), Params: p, Inputs: inputs, Run: n.run}}
}

func (n *node) run(_ context.Context, sc *recipes.StepContext) error {
	in, err := n.ReadInputs(sc.OutDir)
	if err != nil {
		return err
	}
	var dtb []byte
	if n.dtb != nil {
		if dtb, err = n.Limits.ReadFile(n.dtb.Path, limits.File); err != nil {
			return fmt.Errorf("dtb of measure block %q (%s): %w", n.Name, n.dtb.Origin, err)
		}
	}
	e, res, err := n.measure(in, dtb)
	if err != nil {
		return err
	}
	if res.DTBGenerated {
		// The realm boots with this DTB: it is an output.
		if err := os.WriteFile(filepath.Join(sc.OutDir, generatedDTB), res.DTB, 0o644); err != nil {
			return err
		}
	}
	return tee.WriteEntries(sc.OutDir, []tee.Entry{e})
}

// report is an entry's full model output.
type report struct {
	*model.Result
	RIM  string    `json:"rim"`
	REMs [4]string `json:"rems_at_launch"`
	Hash string    `json:"measurement_algorithm"`
}

func newReport(r *model.Result) report {
	rep := report{Result: r, RIM: hex.EncodeToString(r.RIM), Hash: r.Hash.String()}
	for i, m := range r.REMs {
		rep.REMs[i] = hex.EncodeToString(m)
	}
	return rep
}

// generatedDTB is the step's file of a generated DTB.
const generatedDTB = "realm.dtb"

func (n *node) measure(in *tee.Read, dtb []byte) (tee.Entry, *model.Result, error) {
	kernel, err := Kernel(in.Kernel, n.Limits)
	if err != nil {
		return tee.Entry{}, nil, fmt.Errorf("measure %q: kernel: %w", n.Name, err)
	}
	res, err := model.Measure(n.host.model(), n.vmm, n.vmmArgs, model.Inputs{Kernel: kernel, Initrd: in.Initrd, Firmware: in.Firmware, DTB: dtb})
	if err != nil {
		return tee.Entry{}, nil, fmt.Errorf("measure %q: %w", n.Name, err)
	}
	if len(res.Unused) > 0 {
		return tee.Entry{}, nil, fmt.Errorf("measure %q: the block's %s not loaded by vmm_args %q: add the VMM's option that loads it (qemu -kernel, -initrd, -bios; kvmtool -k, -i, -f)",
			n.Name, strings.Join(res.Unused, " and "), n.vmmArgs)
	}
	if n.Cmdline != "" && !strings.Contains(res.Chosen.Bootargs, n.Cmdline) {
		return tee.Entry{}, nil, fmt.Errorf("measure %q: the DTB's bootargs %q do not hold the kernel's cmdline %q: give the DTB generated with it (qemu -append, kvmtool -p)",
			n.Name, res.Chosen.Bootargs, n.Cmdline)
	}
	measured := func(what string) bool { return slices.Contains(res.Measured, what) }
	// With no firmware nothing runs before the kernel; the DTB, measured,
	// holds the command line.
	covers := manifest.Coverage{Firmware: !n.FirmwareGiven || measured("firmware"), Kernel: measured("kernel"),
		Initrd: measured("initrd"), Cmdline: measured("kernel")}
	params := tee.With(in.Common, "vmm", n.vmm, "vmm_args", n.vmmArgs, "measurement_algorithm", res.Hash.String(),
		"dtb_sha256", sha256Hex(res.DTB), "dtb_generated", res.DTBGenerated, "cmdline", res.Chosen.Bootargs, "vcpus", res.VCPUs, "covers", covers)
	if len(res.Notes) > 0 {
		params["notes"] = res.Notes
	}
	return tee.Entry{Measurement: manifest.Measurement{TEE: n.TEE, Params: params,
		Values: map[string]any{"rim": hex.EncodeToString(res.RIM)}}, Report: newReport(res)}, res, nil
}

// Finish implements recipes.Node: the DTB, generated or from an input, is
// exported beside the firmware, kernel and initrd (a launch needs it).
func (n *node) Finish(results map[string]*recipes.Result) (*recipes.Output, error) {
	return n.Block.Finish(results, tee.FinishOptions{
		Artifacts: func(res *recipes.Result) ([]recipes.OutputArtifact, error) {
			a := recipes.OutputArtifact{Name: "measure." + n.Name + "/dtb", Kind: "dtb", Path: "measure/" + n.Name + "/dtb"}
			switch {
			case n.dtb == nil:
				f, err := res.File(generatedDTB)
				if err != nil {
					return nil, err
				}
				a.File, a.Extra = f, map[string]any{"generated": "as realm-measurements generates the VMM's"}
			case strings.HasPrefix(n.dtb.Origin, "input."):
				a.File, a.Extra = *n.dtb, map[string]any{"from": n.dtb.Origin}
			default:
				return nil, nil
			}
			return []recipes.OutputArtifact{a}, nil
		},
	})
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Kernel returns the arm64 Image of a kernel file: as it is, or
// decompressed when gzip-compressed (QEMU loads an Image.gz so), within
// the kernel limit and the decompression limits (a bomb stops at its
// expansion ratio). nil stays nil.
func Kernel(b []byte, lim *limits.Values) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	if _, err := model.ParseImageHeader(b); err == nil || decompress.Sniff(b) != decompress.Gzip {
		return b, nil
	}
	out, _, err := decompress.ReadAllLimited(b, "the kernel", lim, limits.Kernel)
	if err != nil {
		return nil, fmt.Errorf("decompressing a gzip kernel: %w", err)
	}
	return out, nil
}

// RVPSPolicyName is the reference-value name under which Trustee's CCA
// policy looks the realm's RIM up: the realm token claim
// cca-realm-initial-measurement of the verifier's cca.realm claims.
const RVPSPolicyName = "cca.realm.cca-realm-initial-measurement"

// RVPSName implements tee.TEE.
func (TEE) RVPSName(_, key string) string {
	if key == "rim" {
		return RVPSPolicyName
	}
	return ""
}

// RVPSValue implements tee.RVPSEncoder: the CCA verifier gives the realm
// token's measurements as base64 (standard, padded), so the RIM is
// published so.
func (TEE) RVPSValue(_, key, value string) (string, error) {
	b, err := hex.DecodeString(value)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// RVPSScalars implements tee.TEE: the policy compares the RIM with "in".
func (TEE) RVPSScalars(string, map[string]string, map[string]any) ([]string, map[string]any, error) {
	return nil, map[string]any{}, nil
}

// CoRIMProfile implements tee.TEE: none yet. Veraison's CCA realm profile
// (http://arm.com/cca/realm/1) holds the RIM as an integrity register
// with its own hash algorithm, which publish's CoRIM reader (SHA-384
// registers named by text) does not carry.
func (TEE) CoRIMProfile(string) string { return "" }

// CoRIMTriple implements tee.TEE.
func (TEE) CoRIMTriple(string, map[string]string, *tee.CoverageNote) (*comid.ValueTriple, error) {
	return nil, fmt.Errorf("cca: no CoRIM profile")
}

// CoRIMKey implements tee.TEE.
func (TEE) CoRIMKey(string, string) bool { return false }

// CoRIMValues implements tee.TEE.
func (TEE) CoRIMValues(string, tee.CoRIMReading) (map[string]string, error) {
	return nil, fmt.Errorf("cca: no CoRIM profile")
}

// FirmwareOptional implements tee.FirmwareOptional: a realm may boot its
// kernel directly, with no firmware.
func (TEE) FirmwareOptional(string) bool { return true }

// Uncovered implements tee.TEE.
func (TEE) Uncovered(_ string, params map[string]any) string {
	if _, ok := params["kernel_sha256"]; ok {
		return "the firmware loads the kernel and initrd itself (QEMU -bios with -kernel: fw_cfg), outside the RIM; what it extends into the REMs at run time is not modelled"
	}
	return "the realm image holds no kernel: what the firmware boots is not in the RIM"
}

// FirmwareNeed implements tee.TEE.
func (TEE) FirmwareNeed(string) string {
	return "boot the kernel directly (qemu -kernel without -bios, kvmtool -k) so that the RIM holds it, or accept partial coverage"
}
