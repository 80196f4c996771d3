package builder

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/internal/qemuacpi"
	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/measure/ovmf"
	"github.com/cocobuild/cocobuild/measure/pe"
	"github.com/cocobuild/cocobuild/measure/sev"
	"github.com/cocobuild/cocobuild/measure/tdx"
	"github.com/cocobuild/cocobuild/recipes"
)

// MeasureKind implements `measure "NAME" { … }`: the launch measurements of
// the build's firmware (and, for direct boot, kernel, initrd and cmdline)
// for every combination of the parameters given as lists. The TEE is the
// `tee` attribute, or the block name when that is snp, seves, sev or tdx.
type MeasureKind struct{}

// Type implements recipes.Kind.
func (MeasureKind) Type() string { return "measure" }

var measureAttrs = map[string][]string{
	"":    {"tee", "firmware", "kernel", "initrd", "cmdline", "description", "vcpus"},
	"sev": {"vcpu_types", "vmm", "guest_features", "seves_features", "ec2_legacy_rdx", "policy"},
	"tdx": {"memory", "qemu_versions", "page_orders", "tdvf_separators", "acpi_qemu", "virtio_disks", "phys_bits", "assume_rtmr_measurement", "xfam"},
}

// Schema implements recipes.Kind.
func (MeasureKind) Schema() *hcl.BodySchema {
	s := &hcl.BodySchema{}
	for _, group := range []string{"", "sev", "tdx"} {
		for _, a := range measureAttrs[group] {
			s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: a, Required: a == "firmware"})
		}
	}
	return s
}

// OutputType implements recipes.Kind.
func (MeasureKind) OutputType() cty.Type {
	return cty.Object(map[string]cty.Type{"tee": cty.String, "count": cty.Number})
}

// measureNode is a decoded measure block.
type measureNode struct {
	name     string
	tee      string // snp, seves, sev, tdx
	firmware recipes.Artifact
	kernel   *recipes.Artifact
	initrd   *recipes.Artifact
	cmdline  string

	// SEV family
	vcpus         []int
	vcpuTypes     []string
	vmms          []string
	guestFeatures []string
	sevesFeatures []string // SEV_FEATURES of SEV-ES VMSAs (seves only)
	sevesSet      bool     // seves_features was given: entry names say it
	ec2LegacyRDX  bool
	policy        string // the guest policy a launch passes; not part of the digest

	// TDX
	memory     []string
	qemu       []string
	pageOrders []string
	separators []string
	qemuSet    bool // qemu_versions was given
	// acpiQEMU is the QEMU command whose ACPI tables RTMR0 covers (the
	// helper guest boots under it); "" leaves RTMR0 not computed.
	acpiQEMU    string
	virtioDisks int
	physBits    int // the guest-physical address width the TD sees
	// assumeRTMR models RTMRs for a firmware that does not measure into
	// them (no CC measurement driver), recording the assumption.
	assumeRTMR bool
	// xfam is the XFAM the TD is launched with, as the TD quote reports it
	// (8 bytes little-endian, lowercase hex); "" when not declared. It
	// enters no measurement.
	xfam    string
	fwRange hcl.Range // the firmware attribute, for located errors
}

// Decode implements recipes.Kind.
func (k MeasureKind) Decode(b *recipes.Block, ctx *hcl.EvalContext) (recipes.Node, hcl.Diagnostics) {
	content, diags := b.Body.Content(k.Schema())
	if diags.HasErrors() {
		return nil, diags
	}
	n := &measureNode{name: b.Name, tee: b.Name}
	if a, ok := content.Attributes["tee"]; ok {
		diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.String, &n.tee)...)
	}
	family := ""
	switch n.tee {
	case "snp", "seves", "sev":
		family = "sev"
	case "tdx":
		family = "tdx"
	default:
		subj := b.LabelRange.Ptr()
		if a, ok := content.Attributes["tee"]; ok {
			subj = a.Expr.Range().Ptr()
		}
		return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown TEE",
			Detail:  fmt.Sprintf("measure %q: the TEE is snp, seves, sev or tdx; set tee = \"…\" or name the block after it.", n.tee),
			Subject: subj})
	}
	for g, attrs := range measureAttrs {
		if g == "" || g == family {
			continue
		}
		for _, a := range attrs {
			if attr, ok := content.Attributes[a]; ok {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Attribute not for this TEE",
					Detail: fmt.Sprintf("%s applies to %s measurements, not %s.", a, map[string]string{"sev": "snp, seves and sev", "tdx": "tdx"}[g], n.tee), Subject: attr.NameRange.Ptr()})
			}
		}
	}
	fw, _, d := recipes.DecodeArtifact(content.Attributes["firmware"].Expr, ctx)
	diags = append(diags, d...)
	n.firmware = fw
	if a, ok := content.Attributes["kernel"]; ok {
		art, known, d := recipes.DecodeArtifact(a.Expr, ctx)
		diags = append(diags, d...)
		if known {
			n.kernel = &art
		}
		// A kernel block brings its cmdline.
		if v, d := a.Expr.Value(ctx); !d.HasErrors() && v.Type().IsObjectType() && v.Type().HasAttribute("cmdline") && v.IsKnown() {
			if c := v.GetAttr("cmdline"); c.IsKnown() && c.Type() == cty.String && !c.IsNull() {
				n.cmdline = c.AsString()
			}
		}
	}
	if a, ok := content.Attributes["initrd"]; ok {
		art, known, d := recipes.DecodeArtifact(a.Expr, ctx)
		diags = append(diags, d...)
		if known {
			n.initrd = &art
		}
	}
	if a, ok := content.Attributes["cmdline"]; ok {
		v, d := a.Expr.Value(ctx)
		diags = append(diags, d...)
		if !d.HasErrors() && v.IsWhollyKnown() {
			if v.Type() == cty.String {
				diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.String, &n.cmdline)...)
			} else {
				var args []string
				diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.List(cty.String), &args)...)
				n.cmdline = strings.Join(args, " ")
			}
		}
		if _, ok := content.Attributes["kernel"]; !ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "cmdline without kernel",
				Detail: "cmdline is measured only with a directly booted kernel: add kernel = kernel.NAME.", Subject: a.NameRange.Ptr()})
		}
	}
	if _, ok := content.Attributes["initrd"]; ok {
		if _, ok := content.Attributes["kernel"]; !ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "initrd without kernel",
				Detail: "An initrd is measured only with a directly booted kernel: add kernel = kernel.NAME.", Subject: content.Attributes["initrd"].NameRange.Ptr()})
		}
	}

	strs := func(name string, dst *[]string, def string, check func(string) error) {
		*dst = []string{def}
		a, ok := content.Attributes[name]
		if !ok {
			return
		}
		vals, d := decodeStrings(a.Expr, ctx)
		diags = append(diags, d...)
		if d.HasErrors() || vals == nil {
			return
		}
		for i, v := range vals {
			if err := check(v); err != nil {
				// Name the element and point at it when the list is written out.
				what, subj := name, a.Expr.Range()
				if len(vals) > 1 || isList(a.Expr, ctx) {
					what = fmt.Sprintf("%s[%d]", name, i)
				}
				if t, ok := a.Expr.(*hclsyntax.TupleConsExpr); ok && len(t.Exprs) == len(vals) {
					subj = t.Exprs[i].Range()
				}
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid " + name,
					Detail: fmt.Sprintf("%s: %s.", what, err), Subject: subj.Ptr()})
			}
		}
		*dst = vals
	}
	n.vcpus = []int{1}
	if a, ok := content.Attributes["vcpus"]; ok {
		vals, d := decodeStrings(a.Expr, ctx)
		diags = append(diags, d...)
		if vals != nil {
			n.vcpus = nil
			for _, v := range vals {
				i, err := strconv.Atoi(v)
				if err != nil || i < 1 || i > 512 {
					diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid vcpus",
						Detail: fmt.Sprintf("%q is not a vCPU count (1-512).", v), Subject: a.Expr.Range().Ptr()})
				}
				n.vcpus = append(n.vcpus, i)
			}
		}
	}
	switch family {
	case "sev":
		strs("vcpu_types", &n.vcpuTypes, "EPYC-v4", checkVCPUType)
		strs("vmm", &n.vmms, "QEMU", func(s string) error { _, err := sev.ParseVMM(s); return err })
		strs("guest_features", &n.guestFeatures, "0x1", func(s string) error { _, err := parseUint(s); return err })
		strs("seves_features", &n.sevesFeatures, "0x0", func(s string) error {
			v, err := parseUint(s)
			if err == nil && v&1 != 0 {
				err = fmt.Errorf("%q has SNPActive (0x1), which only SEV-SNP VMSAs have", s)
			}
			return err
		})
		if a, ok := content.Attributes["seves_features"]; ok {
			n.sevesSet = true
			if n.tee != "seves" {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Attribute not for this TEE",
					Detail: fmt.Sprintf("seves_features is the SEV_FEATURES of SEV-ES VMSAs and applies to seves measurements, not %s; SNP VMSAs take guest_features.", n.tee), Subject: a.NameRange.Ptr()})
			}
		}
		if a, ok := content.Attributes["ec2_legacy_rdx"]; ok {
			diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.Bool, &n.ec2LegacyRDX)...)
		}
		n.policy = defaultPolicy[n.tee]
		if a, ok := content.Attributes["policy"]; ok {
			var s string
			if d := recipes.DecodeExpr(a.Expr, ctx, cty.String, &s); d.HasErrors() {
				diags = append(diags, d...)
			} else if p, err := checkPolicy(n.tee, s); err != nil {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid policy", Detail: err.Error() + ".", Subject: a.Expr.Range().Ptr()})
			} else {
				n.policy = p
			}
		}
	case "tdx":
		strs("memory", &n.memory, "2G", func(s string) error { _, err := tdx.ParseMemory(s); return err })
		_, n.qemuSet = content.Attributes["qemu_versions"]
		strs("qemu_versions", &n.qemu, "10.2", func(s string) error { _, err := tdx.ParseQEMUVersion(s); return err })
		strs("page_orders", &n.pageOrders, string(tdx.PageOrderSinglePass), func(s string) error { _, err := tdx.ParsePageOrder(s); return err })
		strs("tdvf_separators", &n.separators, string(tdx.SeparatorCurrent), func(s string) error { _, err := tdx.ParseSeparator(s); return err })
		n.fwRange = content.Attributes["firmware"].Expr.Range()
		if a, ok := content.Attributes["acpi_qemu"]; ok {
			diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.String, &n.acpiQEMU)...)
			if n.acpiQEMU == "" && !diags.HasErrors() {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid acpi_qemu",
					Detail: "acpi_qemu names the QEMU binary (e.g. \"qemu-system-x86_64\") whose ACPI tables RTMR0 covers; leave it out to leave RTMR0 not computed.", Subject: a.Expr.Range().Ptr()})
			}
			if _, ok := content.Attributes["kernel"]; !ok {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "acpi_qemu without kernel",
					Detail: "The ACPI tables are read by booting the block's kernel (built with the fwcfg fragment, CONFIG_FW_CFG_SYSFS) under QEMU: add kernel = kernel.NAME.", Subject: a.NameRange.Ptr()})
			}
		} else if a, ok := content.Attributes["vcpus"]; ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "vcpus without acpi_qemu",
				Detail: "A TD's vCPU count enters its measurement only through QEMU's ACPI tables (RTMR0): add acpi_qemu = \"qemu-system-x86_64\" (or another QEMU) so that they are read, or leave vcpus out.", Subject: a.NameRange.Ptr()})
		}
		if a, ok := content.Attributes["virtio_disks"]; ok {
			diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.Number, &n.virtioDisks)...)
			if n.virtioDisks < 0 || n.virtioDisks > 16 {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid virtio_disks",
					Detail: "virtio_disks is the number of virtio block devices the TD is launched with (0-16).", Subject: a.Expr.Range().Ptr()})
			}
		}
		n.physBits = qemuacpi.DefaultPhysBits
		if a, ok := content.Attributes["phys_bits"]; ok {
			diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.Number, &n.physBits)...)
			if n.physBits != 48 && n.physBits != 52 {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid phys_bits",
					Detail: "phys_bits is the guest-physical address width a TD sees: 52 (GPAW 1, 5-level EPT) or 48. OVMF places the 64-bit PCI window by it, and QEMU describes that window in the DSDT.", Subject: a.Expr.Range().Ptr()})
			}
		}
		if a, ok := content.Attributes["assume_rtmr_measurement"]; ok {
			diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.Bool, &n.assumeRTMR)...)
		}
		if a, ok := content.Attributes["xfam"]; ok {
			var s string
			if d := recipes.DecodeExpr(a.Expr, ctx, cty.String, &s); d.HasErrors() {
				diags = append(diags, d...)
			} else if x, err := checkXFAM(s); err != nil {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid xfam", Detail: err.Error() + ".", Subject: a.Expr.Range().Ptr()})
			} else {
				n.xfam = x
			}
		}
	}
	if a, ok := content.Attributes["description"]; ok {
		var s string
		diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.String, &s)...)
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return n, diags
}

// checkVCPUType accepts the QEMU CPU model names that vcpu_types takes. A
// recipe names vCPUs by type only, so the error offers the known types and
// nothing else (no CPUID signature, no family/model/stepping).
func checkVCPUType(s string) error {
	_, err := sev.CPUSignature(s)
	var u *sev.UnknownCPUTypeError
	if !errors.As(err, &u) {
		return err
	}
	msg := fmt.Sprintf("%q is not a vCPU type", s)
	if u.Suggestion != "" {
		msg += fmt.Sprintf("; did you mean %q?", u.Suggestion)
	} else {
		msg += "."
	}
	return fmt.Errorf("%s vcpu_types takes QEMU CPU model names: %s", msg, strings.Join(sev.CPUTypes(), ", "))
}

// isList says whether expr is a list, tuple or set (rather than one value).
func isList(expr hcl.Expression, ctx *hcl.EvalContext) bool {
	v, diags := expr.Value(ctx)
	if diags.HasErrors() {
		return false
	}
	t := v.Type()
	return t.IsListType() || t.IsTupleType() || t.IsSetType()
}

// decodeStrings accepts one value or a list of values (strings, numbers or
// bools) and returns them as strings; nil while the value is unknown.
func decodeStrings(expr hcl.Expression, ctx *hcl.EvalContext) ([]string, hcl.Diagnostics) {
	v, diags := expr.Value(ctx)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		return nil, diags
	}
	one := func(e cty.Value) (string, bool) {
		switch {
		case e.IsNull():
			return "", false
		case e.Type() == cty.String:
			return e.AsString(), true
		case e.Type() == cty.Number:
			return e.AsBigFloat().Text('f', -1), true
		case e.Type() == cty.Bool:
			return strconv.FormatBool(e.True()), true
		}
		return "", false
	}
	if s, ok := one(v); ok {
		return []string{s}, diags
	}
	if v.CanIterateElements() && (v.Type().IsListType() || v.Type().IsTupleType() || v.Type().IsSetType()) {
		var out []string
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			s, ok := one(e)
			if !ok {
				return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid list element",
					Detail: fmt.Sprintf("Expected strings or numbers, not %s.", e.Type().FriendlyName()), Subject: expr.Range().Ptr()})
			}
			out = append(out, s)
		}
		if len(out) == 0 {
			return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Empty list",
				Detail: "Give at least one value.", Subject: expr.Range().Ptr()})
		}
		return out, diags
	}
	return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Incorrect value type",
		Detail: fmt.Sprintf("Expected a value or a list of values, not %s.", v.Type().FriendlyName()), Subject: expr.Range().Ptr()})
}

// checkXFAM parses a TD's XFAM (a hex number such as 0x61ae7) and returns
// it as the TD quote reports it: 8 bytes little-endian, lowercase hex.
func checkXFAM(s string) (string, error) {
	t := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "0x")
	v, err := strconv.ParseUint(t, 16, 64)
	if err != nil || t == "" {
		return "", fmt.Errorf("xfam %q is not a 64-bit hex number: give the XFAM the TD is launched with, e.g. \"0x61ae7\"", s)
	}
	if v&3 != 3 {
		return "", fmt.Errorf("xfam %s: a TD's XFAM enables x87 and SSE (bits 0 and 1), e.g. 0x61ae7", s)
	}
	return hex.EncodeToString(binary.LittleEndian.AppendUint64(nil, v)), nil
}

// defaultPolicy is QEMU's default guest policy of each SEV mode: what a
// launch passes when the recipe sets none.
var defaultPolicy = map[string]string{"snp": "0x30000", "seves": "0x5", "sev": "0x1"}

// checkPolicy parses a guest policy and returns it in canonical hex. An
// SNP policy must have bit 17 (reserved, must be one) set; SEV-ES needs
// bit 2 (ES required).
func checkPolicy(tee, s string) (string, error) {
	v, err := parseUint(s)
	if err != nil {
		return "", err
	}
	switch {
	case tee == "snp" && v&(1<<17) == 0:
		return "", fmt.Errorf("SNP policy %s: bit 17 (0x20000) is reserved and must be set, e.g. 0x30000", s)
	case tee != "snp" && v > 0xffffffff:
		return "", fmt.Errorf("SEV policy %s: it is 32 bits", s)
	case tee == "seves" && v&0x4 == 0:
		return "", fmt.Errorf("SEV-ES policy %s: bit 2 (0x4, ES required) must be set", s)
	}
	return fmt.Sprintf("0x%x", v), nil
}

func parseUint(s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number (decimal, or hex with 0x)", s)
	}
	return v, nil
}

// measureParams is what the measure step's key covers beyond its inputs.
type measureParams struct {
	TEE           string   `json:"tee"`
	Kernel        bool     `json:"kernel"`
	Initrd        bool     `json:"initrd"`
	Cmdline       string   `json:"cmdline"`
	VCPUs         []int    `json:"vcpus,omitempty"`
	VCPUTypes     []string `json:"vcpu_types,omitempty"`
	VMMs          []string `json:"vmms,omitempty"`
	GuestFeatures []string `json:"guest_features,omitempty"`
	SEVESFeatures []string `json:"seves_features,omitempty"`
	EC2LegacyRDX  bool     `json:"ec2_legacy_rdx,omitempty"`
	Memory        []string `json:"memory,omitempty"`
	QEMU          []string `json:"qemu_versions,omitempty"`
	PageOrders    []string `json:"page_orders,omitempty"`
	Separators    []string `json:"tdvf_separators,omitempty"`
	ACPIQEMU      bool     `json:"acpi_qemu,omitempty"` // the probe holds its version
	VirtioDisks   int      `json:"virtio_disks,omitempty"`
	PhysBits      int      `json:"phys_bits,omitempty"`
	AssumeRTMR    bool     `json:"assume_rtmr_measurement,omitempty"`
}

// measuredEntry is one combination's result as the step stores it. Its
// Name is the combination only: the block name is added by Finish, so that
// two blocks with the same parameters share one cached result.
type measuredEntry struct {
	manifest.Measurement
	EventLog string `json:"eventlog,omitempty"` // file name of the CC event log (TDX)
	Report   any    `json:"report,omitempty"`   // the full model output
}

// Steps implements recipes.Node.
func (n *measureNode) Steps() []*recipes.Step {
	inputs := []recipes.Artifact{n.firmware}
	p := measureParams{TEE: n.tee, Cmdline: n.cmdline, VCPUs: n.vcpus, VCPUTypes: n.vcpuTypes, VMMs: n.vmms,
		GuestFeatures: n.guestFeatures, SEVESFeatures: n.sevesFeatures, EC2LegacyRDX: n.ec2LegacyRDX, Memory: n.memory, QEMU: n.qemu,
		PageOrders: n.pageOrders, Separators: n.separators, ACPIQEMU: n.acpiQEMU != "", VirtioDisks: n.virtioDisks, AssumeRTMR: n.assumeRTMR}
	if n.acpiQEMU != "" {
		p.PhysBits = n.physBits
	}
	if n.tee == "tdx" && n.acpiQEMU == "" {
		p.VCPUs = nil // not part of a TDX measurement without ACPI tables
	}
	if n.kernel != nil {
		inputs, p.Kernel = append(inputs, *n.kernel), true
	}
	if n.initrd != nil {
		inputs, p.Initrd = append(inputs, *n.initrd), true
	}
	st := &recipes.Step{ID: "measure", Kind: "measure/" + n.tee, Version: measureStepVersion(n.tee, currentModels), Params: p, Inputs: inputs, Run: n.run}
	if n.acpiQEMU != "" {
		// The tables are QEMU's output: its release and q35 machine type
		// are part of the key.
		// Memoized by the binary's metadata: a rebuild with nothing
		// changed runs no QEMU.
		st.Probe = func(ctx context.Context) (string, error) {
			bin, err := exec.LookPath(n.acpiQEMU)
			if err != nil {
				return "", fmt.Errorf("measure %q: acpi_qemu: %w: install QEMU or name a QEMU binary (scripts/tdx-qemu fetches the one the sample models)", n.name, err)
			}
			if bin, err = filepath.Abs(bin); err != nil {
				return "", err
			}
			return recipes.Memoize(ctx, "qemu-probe "+bin, func() (string, []string, error) {
				v, machine, err := qemuacpi.Probe(ctx, bin)
				if err != nil {
					return "", nil, fmt.Errorf("measure %q: acpi_qemu: %w", n.name, err)
				}
				return "qemu " + v.Full + " " + machine + " " + qemuacpi.MachineOptions + " helper " + qemuacpi.HelperVersion, []string{bin}, nil
			})
		}
	}
	return []*recipes.Step{st}
}

// measureStepFormat is the version of what the measure step itself writes
// (measurements.json, entry names and params, event log file names). Bump it
// when that changes; the models' own changes are their ModelVersions.
//
// 4: firmware.json (the firmware inspection), SEV coverage that depends on
// it, and TDX entries' params.covers. 5: TDX ACPI tables read from QEMU
// (acpi/), vcpus in TDX entry names, params.assumptions. 6: TDX values
// tdvfkernel and tdvfkernelparams.
const measureStepFormat = "6"

// modelVersions are the versions of the measure packages a step depends on.
type modelVersions struct{ SEV, TDX, OVMF, PE string }

// currentModels are the versions the measure packages declare.
var currentModels = modelVersions{SEV: sev.ModelVersion, TDX: tdx.ModelVersion, OVMF: ovmf.ModelVersion, PE: pe.ModelVersion}

// measureStepVersion is the measure step's version for a TEE: the step's
// format and the version of every model its result depends on, so that a
// model change invalidates cached measurements.
func measureStepVersion(tee string, m modelVersions) string {
	if tee == "tdx" {
		return fmt.Sprintf("step=%s,tdx=%s,ovmf=%s,pe=%s", measureStepFormat, m.TDX, m.OVMF, m.PE)
	}
	return fmt.Sprintf("step=%s,sev=%s,ovmf=%s", measureStepFormat, m.SEV, m.OVMF)
}

func readArtifact(a *recipes.Artifact) ([]byte, error) {
	if a == nil {
		return nil, nil
	}
	return os.ReadFile(a.Path)
}

func (n *measureNode) run(ctx context.Context, sc *recipes.StepContext) error {
	fw, err := os.ReadFile(n.firmware.Path)
	if err != nil {
		return err
	}
	kernel, err := readArtifact(n.kernel)
	if err != nil {
		return err
	}
	initrd, err := readArtifact(n.initrd)
	if err != nil {
		return err
	}
	fwInfo, fwErr := ovmf.Inspect(fw)
	if err := writeFirmwareRecord(sc.OutDir, fwInfo, fwErr); err != nil {
		return err
	}
	common := map[string]any{"firmware_sha256": n.firmware.SHA256}
	if n.kernel != nil {
		common["kernel_sha256"], common["cmdline"] = n.kernel.SHA256, n.cmdline
	}
	if n.initrd != nil {
		common["initrd_sha256"] = n.initrd.SHA256
	}
	var entries []measuredEntry
	if n.tee == "tdx" {
		entries, err = n.measureTDX(ctx, sc, fw, kernel, initrd, common, fwInfo, fwErr)
	} else {
		entries, err = n.measureSEV(ctx, fw, kernel, initrd, common, fwInfo, fwErr)
	}
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(sc.OutDir, "measurements.json"), append(b, '\n'), 0o644)
}

func with(common map[string]any, kv ...any) map[string]any {
	m := map[string]any{}
	for k, v := range common {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func (n *measureNode) measureSEV(ctx context.Context, fw, kernel, initrd []byte, common map[string]any, fwInfo *ovmf.Info, fwErr error) ([]measuredEntry, error) {
	mode, err := sev.ParseMode(n.tee)
	if err != nil {
		return nil, err
	}
	prep, err := sev.Prepare(fw)
	if err != nil {
		return nil, fmt.Errorf("firmware %s: %w", n.firmware.Origin, err)
	}
	var db *sev.DirectBoot
	if n.kernel != nil {
		db = &sev.DirectBoot{Kernel: kernel, Initrd: initrd, Cmdline: n.cmdline}
	}
	vcpus, types, vmms, features, sevesFeatures := n.vcpus, n.vcpuTypes, n.vmms, n.guestFeatures, n.sevesFeatures
	if mode == sev.ModeSEV { // SEV has no VMSAs: one digest
		vcpus, types, vmms, features = []int{1}, []string{""}, []string{"QEMU"}, []string{"0"}
	}
	if mode != sev.ModeSEVES || len(sevesFeatures) == 0 {
		sevesFeatures = []string{"0x0"}
	}
	var out []measuredEntry
	for _, vmmName := range vmms {
		vmm, _ := sev.ParseVMM(vmmName)
		for _, cpu := range types {
			for _, nv := range vcpus {
				for _, gf := range features {
					for _, sf := range sevesFeatures {
						if err := ctx.Err(); err != nil {
							return nil, err
						}
						feat, _ := parseUint(gf)
						sevesFeat, _ := parseUint(sf)
						p := sev.Params{Mode: mode, VCPUs: nv, VCPUType: cpu, VMM: vmm, GuestFeatures: feat, SEVESFeatures: sevesFeat, DirectBoot: db, EC2LegacyRDX: n.ec2LegacyRDX}
						r, err := prep.Measure(p)
						if err != nil {
							return nil, err
						}
						name := ""
						covers, notes := r.Covers, r.Notes
						if db != nil {
							if why := DirectBootUnchecked(fwInfo, fwErr); why != "" {
								covers.Kernel, covers.Initrd, covers.Cmdline = false, false, false
								notes = append(slices.Clone(notes), why)
							}
						}
						params := with(common, "mode", n.tee, "variant", r.Variant, "covers", covers)
						if mode != sev.ModeSEV {
							name = fmt.Sprintf("vcpus=%d,cpu=%s,vmm=%s,gf=%s", nv, cpu, vmm, gf)
							params = with(params, "vcpus", nv, "vcpu_type", cpu, "vmm", vmm.String(), "guest_features", gf)
							if mode == sev.ModeSEVES {
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
						out = append(out, measuredEntry{Measurement: manifest.Measurement{TEE: n.tee, Name: name, Params: params,
							Values: map[string]any{"launch_measurement": hex.EncodeToString(r.Digest)}}})
					}
				}
			}
		}
	}
	return out, nil
}

// DirectBootUnchecked says why a SEV digest taken with a kernel, initrd and
// cmdline does not cover them, or "" when the firmware checks them against
// the SEV hashes table. Without that check the VMM measures a table that
// nothing reads, and the guest runs whatever kernel it is given.
func DirectBootUnchecked(info *ovmf.Info, err error) string {
	switch {
	case err != nil:
		return fmt.Sprintf("kernel, initrd and cmdline not covered: the firmware could not be inspected (%v), so nothing shows that it checks them against the SEV hashes table", err)
	case !info.VerifiesDirectBoot:
		return "kernel, initrd and cmdline not covered: the firmware does not check them against the SEV hashes table (" + info.DirectBootEvidence + "); use a firmware built from OvmfPkg/AmdSev (e.g. Debian's OVMF.amdsev.fd)"
	}
	return ""
}

// firmwareRecord is what the manifest's firmware artifact says the firmware
// can vouch for (from ovmf.Inspect).
type firmwareRecord struct {
	Edk2Version        string       `json:"edk2_version,omitempty"`
	SEVSections        []string     `json:"sev_sections,omitempty"`
	HashesTable        *ovmf.Area   `json:"hashes_table,omitempty"`
	VerifiesDirectBoot bool         `json:"verifies_direct_boot"`
	DirectBootEvidence string       `json:"direct_boot_evidence,omitempty"`
	TDX                bool         `json:"tdx_metadata"`
	MeasuresRTMR       bool         `json:"measures_rtmr"`
	RTMREvidence       string       `json:"rtmr_evidence,omitempty"`
	SecureBoot         bool         `json:"secure_boot"`
	Enrolled           []string     `json:"secure_boot_enrolled,omitempty"`
	Vouches            ovmf.Vouches `json:"vouches"`
	Error              string       `json:"error,omitempty"` // the image could not be inspected
}

const firmwareRecordFile = "firmware.json"

func writeFirmwareRecord(dir string, info *ovmf.Info, err error) error {
	var rec firmwareRecord
	if err != nil {
		rec.Error = err.Error()
	} else {
		rec = firmwareRecord{Edk2Version: info.Edk2Version, HashesTable: info.HashesTable,
			VerifiesDirectBoot: info.VerifiesDirectBoot, DirectBootEvidence: info.DirectBootEvidence,
			TDX: info.TDX != nil, MeasuresRTMR: info.MeasuresRTMR, RTMREvidence: info.RTMREvidence,
			SecureBoot: info.SecureBoot.Enabled, Enrolled: info.SecureBoot.Enrolled, Vouches: info.Vouches}
		for _, s := range info.SEVSections {
			rec.SEVSections = append(rec.SEVSections, s.Type)
		}
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, firmwareRecordFile), append(b, '\n'), 0o644)
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func (n *measureNode) measureTDX(ctx context.Context, sc *recipes.StepContext, fw, kernel, initrd []byte, common map[string]any, fwInfo *ovmf.Info, fwErr error) ([]measuredEntry, error) {
	var assumptions []string
	lacks := rtmrGap(fwInfo, fwErr)
	if lacks != "" {
		if !n.assumeRTMR {
			return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Firmware does not measure into RTMRs",
				Detail: fmt.Sprintf("measure %q: firmware %s %s, so a TD booted with it reports other RTMR values than the ones modelled here. "+
					"Use a TDVF build with TdTcg2Dxe (e.g. Debian's ovmf-generic 2026.08 OVMF.fd), or set assume_rtmr_measurement = true to model them anyway "+
					"(the entries then record the assumption and cover nothing past MRTD, so publishing them needs allow_partial_coverage).", n.name, n.firmware.Origin, lacks),
				Subject: n.fwRange.Ptr()}}
		}
		assumptions = append(assumptions, fmt.Sprintf("firmware %s %s: RTMR values assume a TDVF that measures into RTMRs (assume_rtmr_measurement)", n.firmware.Origin, lacks))
	}
	sb := secureBootVariables(fwInfo)
	qemuVersions := n.qemu
	vcpus := []int{0} // not part of the measurement without ACPI tables
	type acpiKey struct {
		vcpus int
		mem   string
	}
	tables := map[acpiKey]*tdx.ACPITables{}
	var dumpQEMU qemuacpi.Version
	var machine string
	if n.acpiQEMU != "" {
		var err error
		if dumpQEMU, machine, err = qemuacpi.Probe(ctx, n.acpiQEMU); err != nil {
			return nil, err
		}
		if !n.qemuSet && !dumpQEMU.Less(qemuacpi.TDXMinVersion()) {
			qemuVersions = []string{fmt.Sprintf("%d.%d", dumpQEMU.Major, dumpQEMU.Minor)}
		}
		vcpus = n.vcpus
	}
	// Boot the helper only when an entry models the QEMU it runs.
	useful := false
	for _, qv := range qemuVersions {
		q, _ := tdx.ParseQEMUVersion(qv)
		useful = useful || (n.acpiQEMU != "" && q.Major == dumpQEMU.Major && q.Minor == dumpQEMU.Minor)
	}
	if useful {
		tmp, err := os.MkdirTemp("", "cocobuild-acpi-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		helper := filepath.Join(tmp, "helper.cpio")
		sc.Stage("build the ACPI helper guest", "")
		if err := qemuacpi.BuildHelper(ctx, tmp, helper); err != nil {
			return nil, err
		}
		done := 0
		sc.Stage(fmt.Sprintf("read ACPI tables from QEMU %s", dumpQEMU), "helper boots")
		for _, nv := range vcpus {
			for _, mem := range n.memory {
				memBytes, _ := tdx.ParseMemory(mem)
				fmt.Fprintf(sc.Log, "ACPI tables: booting the helper guest with QEMU %s (%s), %d vCPUs, %s\n", dumpQEMU.Full, machine, nv, mem)
				r, err := qemuacpi.Dump(ctx, qemuacpi.Config{QEMU: n.acpiQEMU, Firmware: n.firmware.Path, Kernel: n.kernel.Path,
					VCPUs: nv, Memory: memBytes, Disks: n.virtioDisks, PhysBits: n.physBits, Helper: helper, WorkDir: tmp, Log: sc.Log})
				if err != nil {
					return nil, fmt.Errorf("measure %q: ACPI tables for %d vCPUs, %s: %w", n.name, nv, mem, err)
				}
				dir := filepath.Join(sc.OutDir, "acpi", fmt.Sprintf("vcpus=%d,memory=%s", nv, mem))
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return nil, err
				}
				for name, b := range map[string][]byte{"table-loader": r.Tables.TableLoader, "rsdp": r.Tables.RSDP, "tables": r.Tables.Tables} {
					if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
						return nil, err
					}
				}
				t := r.Tables
				tables[acpiKey{nv, mem}] = &t
				done++
				sc.Progress(int64(done), int64(len(vcpus)*len(n.memory)))
			}
		}
	}
	var out []measuredEntry
	for _, nv := range vcpus {
		for _, mem := range n.memory {
			memBytes, _ := tdx.ParseMemory(mem)
			for _, qv := range qemuVersions {
				q, _ := tdx.ParseQEMUVersion(qv)
				for _, po := range n.pageOrders {
					order, _ := tdx.ParsePageOrder(po)
					for _, sp := range n.separators {
						if err := ctx.Err(); err != nil {
							return nil, err
						}
						sep, _ := tdx.ParseSeparator(sp)
						opts := tdx.Options{PageOrder: order, Memory: memBytes, QEMU: q, Separator: sep, SecureBoot: sb}
						if n.kernel != nil {
							opts.Kernel, opts.Cmdline = kernel, n.cmdline
							if n.initrd != nil {
								opts.Initrd = initrd
							}
						}
						if t := tables[acpiKey{nv, mem}]; t != nil {
							if q.Major == dumpQEMU.Major && q.Minor == dumpQEMU.Minor {
								opts.ACPI = t
								opts.ACPISource = fmt.Sprintf("generated by QEMU %s (%s, -machine %s, %d vCPUs, %s, %d virtio disks, %d-bit guest physical addresses), read by booting the guest's kernel under TCG",
									dumpQEMU.Full, machine, qemuacpi.MachineOptions, nv, mem, n.virtioDisks, n.physBits)
							} else {
								opts.ACPISource = fmt.Sprintf("the ACPI tables were read from QEMU %s, but this entry models QEMU %s: set acpi_qemu to a QEMU %s", dumpQEMU, qv, qv)
							}
						} else if n.acpiQEMU != "" {
							opts.ACPISource = fmt.Sprintf("acpi_qemu is QEMU %s, which cannot launch TDs (QEMU %d.%d or newer can), so its ACPI tables are no TD's; this entry models QEMU %s: set acpi_qemu to a QEMU %s (scripts/tdx-qemu fetches one)",
								dumpQEMU, qemuacpi.TDXMinVersion().Major, qemuacpi.TDXMinVersion().Minor, qv, qv)
							if !dumpQEMU.Less(qemuacpi.TDXMinVersion()) {
								opts.ACPISource = fmt.Sprintf("the ACPI tables were read from QEMU %s, but this entry models QEMU %s: set acpi_qemu to a QEMU %s", dumpQEMU, qv, qv)
							}
						} else {
							opts.ACPISource = "the QEMU ACPI fw_cfg blobs (etc/table-loader, etc/acpi/rsdp, etc/acpi/tables) were not read: set acpi_qemu (and build the kernel with the fwcfg fragment) to read them"
						}
						r, err := tdx.Measure(fw, opts)
						if err != nil {
							return nil, err
						}
						rep := r.Report()
						name := fmt.Sprintf("memory=%s,qemu=%s,order=%s,separator=%s", mem, qv, po, sp)
						if nv > 0 {
							name = fmt.Sprintf("vcpus=%d,", nv) + name
						}
						values := map[string]any{"mrtd": rep.MRTD.String()}
						for i, d := range []*tdx.Digest{rep.RTMR0, rep.RTMR1, rep.RTMR2, rep.RTMR3} {
							if d != nil {
								values[fmt.Sprintf("rtmr%d", i)] = d.String()
							}
						}
						// The digests of the kernel and LoadOptions events,
						// which verifiers match in the event log one by one.
						if k, lo := r.DirectBootDigests(); k != nil && rep.RTMR1 != nil {
							values["tdvfkernel"] = k.String()
							if lo != nil && rep.RTMR2 != nil {
								values["tdvfkernelparams"] = lo.String()
							}
						}
						params := with(common, "memory", mem, "qemu_version", qv, "page_order", po, "tdvf_separator", sp, "variant", rep.Variant)
						params["covers"] = tdxCoverage(rep, n.kernel != nil, lacks == "")
						if nv > 0 {
							params = with(params, "vcpus", nv, "virtio_disks", n.virtioDisks)
						}
						if opts.ACPI != nil {
							params = with(params, "acpi_qemu", dumpQEMU.Full, "acpi_machine", machine, "acpi_phys_bits", n.physBits,
								"acpi_tables", fmt.Sprintf("acpi/vcpus=%d,memory=%s", nv, mem))
						}
						if len(rep.NotComputable) > 0 {
							params["not_computable"] = rep.NotComputable
						}
						if len(assumptions) > 0 {
							params["assumptions"] = assumptions
						}
						logName := fmt.Sprintf("%d-%s.ccel", len(out), unsafeName.ReplaceAllString(name, "_"))
						if err := os.WriteFile(filepath.Join(sc.OutDir, logName), r.EventLog(), 0o644); err != nil {
							return nil, err
						}
						out = append(out, measuredEntry{Measurement: manifest.Measurement{TEE: "tdx", Name: name, Params: params, Values: values},
							EventLog: logName, Report: rep})
					}
				}
			}
		}
	}
	return out, nil
}

// secureBootVariables are the Secure Boot variables a TD booted with the
// firmware measures into RTMR0, from the image's own variable store: nil
// (all empty) when it enrolls no keys; otherwise PK, KEK, db and dbx as
// stored, and SecureBoot as the variable driver sets it at boot (1 when a
// PK is enrolled and SecureBootEnable does not turn it off).
func secureBootVariables(info *ovmf.Info) *tdx.SecureBootVariables {
	if info == nil || len(info.SecureBoot.Enrolled) == 0 {
		return nil
	}
	sb := &tdx.SecureBootVariables{SecureBoot: []byte{0}}
	if info.SecureBoot.Enabled {
		sb.SecureBoot = []byte{1}
	}
	for _, v := range info.Variables {
		switch {
		case v.GUID == ovmf.GlobalVariableGUID && v.Name == "PK":
			sb.PK = v.Data
		case v.GUID == ovmf.GlobalVariableGUID && v.Name == "KEK":
			sb.KEK = v.Data
		case v.GUID == ovmf.ImageSecurityDatabaseGUID && v.Name == "db":
			sb.DB = v.Data
		case v.GUID == ovmf.ImageSecurityDatabaseGUID && v.Name == "dbx":
			sb.DBX = v.Data
		}
	}
	return sb
}

// rtmrGap says what a TDX firmware lacks to measure a TD's boot into RTMRs
// ("" when it has it).
func rtmrGap(info *ovmf.Info, err error) string {
	if err != nil {
		return fmt.Sprintf("could not be inspected (%v)", err)
	}
	if !info.MeasuresRTMR {
		return "has no CC measurement driver (TdTcg2Dxe: no RTMR measurements, no CCEL)"
	}
	return ""
}

// tdxCoverage is what a TDX entry's values commit to: the firmware through
// MRTD (its code) and RTMR0 (its configuration: the variable store, Secure
// Boot keys and QEMU's ACPI tables, which run in the guest); with direct
// boot, the kernel through RTMR1 and the cmdline and initrd (or that there
// is none) through RTMR2 — each only when that register could be computed
// and the firmware measures into RTMRs at all (with
// assume_rtmr_measurement it does not, and the RTMR values vouch for
// nothing). Without a kernel no register vouches for what the firmware
// boots.
func tdxCoverage(rep tdx.Report, directBoot, measuresRTMR bool) manifest.Coverage {
	return manifest.Coverage{Firmware: measuresRTMR && rep.RTMR0 != nil, Kernel: measuresRTMR && directBoot && rep.RTMR1 != nil,
		Initrd: measuresRTMR && directBoot && rep.RTMR2 != nil, Cmdline: measuresRTMR && directBoot && rep.RTMR2 != nil}
}

// Finish implements recipes.Node: the entries go into the manifest, the
// full reports and event logs into OUT/measure/NAME/.
func (n *measureNode) Finish(results map[string]*recipes.Result) (*recipes.Output, error) {
	res := results["measure"]
	f, err := res.File("measurements.json")
	if err != nil {
		return nil, err
	}
	// The measurements are read from the cache: their bytes must be what
	// the step's record states, or tampered values would be signed.
	b, err := readVerified(f)
	if err != nil {
		return nil, err
	}
	var entries []measuredEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		return nil, fmt.Errorf("reading cached measurements: %w", err)
	}
	var fwRec firmwareRecord
	if rf, err := res.File(firmwareRecordFile); err != nil {
		return nil, err
	} else if b, err := readVerified(rf); err != nil {
		return nil, err
	} else if err := json.Unmarshal(b, &fwRec); err != nil {
		return nil, fmt.Errorf("reading the cached firmware inspection: %w", err)
	}
	out := &recipes.Output{
		Value: cty.ObjectVal(map[string]cty.Value{"tee": cty.StringVal(n.tee), "count": cty.NumberIntVal(int64(len(entries)))}),
		Artifacts: []recipes.OutputArtifact{{Name: "measure." + n.name, Kind: "measurements", Path: "measure/" + n.name + "/measurements.json", File: f,
			Extra: map[string]any{"tee": n.tee, "entries": len(entries)}}},
	}
	// What the firmware can vouch for goes on its artifact, or on the
	// measurements when the firmware is another block's output.
	if !strings.HasPrefix(n.firmware.Origin, "input.") {
		out.Artifacts[0].Extra["firmware"] = fwRec
	}
	// Firmware, kernel and initrd that come straight from inputs are not in
	// the output directory otherwise; a launch needs them (cocobuild run
	// finds every file an entry names by its sha256).
	for _, f := range []struct {
		a    *recipes.Artifact
		name string
	}{{&n.firmware, "firmware"}, {n.kernel, "kernel"}, {n.initrd, "initrd"}} {
		if f.a != nil && strings.HasPrefix(f.a.Origin, "input.") {
			extra := map[string]any{"from": f.a.Origin}
			if f.name == "firmware" {
				extra["firmware"] = fwRec
			}
			out.Artifacts = append(out.Artifacts, recipes.OutputArtifact{Name: "measure." + n.name + "/" + f.name, Kind: f.name,
				Path: "measure/" + n.name + "/" + f.name, File: *f.a, Extra: extra})
		}
	}
	// The ACPI blobs read from QEMU (TDX with acpi_qemu): what RTMR0
	// covers, kept for audit and for replaying the event log.
	for _, rf := range res.Files {
		if !strings.HasPrefix(rf.Path, "acpi/") {
			continue
		}
		a, err := res.File(rf.Path)
		if err != nil {
			return nil, err
		}
		out.Artifacts = append(out.Artifacts, recipes.OutputArtifact{Name: "measure." + n.name + "/" + rf.Path, Kind: "acpi-blob",
			Path: "measure/" + n.name + "/" + rf.Path, File: a, Extra: map[string]any{"qemu_fw_cfg": "etc/" + map[string]string{"table-loader": "table-loader", "rsdp": "acpi/rsdp", "tables": "acpi/tables"}[path.Base(rf.Path)]}})
	}
	for _, e := range entries {
		m := e.Measurement
		if n.policy != "" {
			m.Params = with(m.Params, "policy", n.policy)
		}
		if n.xfam != "" {
			m.Values = with(m.Values, "xfam", n.xfam)
		}
		if m.Name == "" {
			m.Name = n.name
		} else {
			m.Name = n.name + "/" + m.Name
		}
		if e.EventLog != "" {
			log, err := res.File(e.EventLog)
			if err != nil {
				return nil, err
			}
			path := "measure/" + n.name + "/" + e.EventLog
			out.Artifacts = append(out.Artifacts, recipes.OutputArtifact{Name: "measure." + n.name + "/" + strings.TrimSuffix(e.EventLog, ".ccel"),
				Kind: "eventlog", Path: path, File: log, Extra: map[string]any{"format": "tcg2-crypto-agile-sha384", "measurement": m.Name}})
			m.Params = with(m.Params, "eventlog", path)
		}
		out.Measurements = append(out.Measurements, m)
	}
	return out, nil
}
