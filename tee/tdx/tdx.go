// Package tdx registers Intel TDX with cocobuild: the measure block
// attributes and step (with the ACPI tables read from QEMU and the CC event
// logs it adds as artifacts), the RVPS names and CoRIM triples of MRTD and
// the RTMRs, and `cocobuild measure tdx`. The model is measure/tdx.
package tdx

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/internal/qemuacpi"
	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/measure/ovmf"
	"github.com/cocobuild/cocobuild/measure/pe"
	model "github.com/cocobuild/cocobuild/measure/tdx"
	"github.com/cocobuild/cocobuild/recipes"
	"github.com/cocobuild/cocobuild/tee"
)

var _ tee.TEE = TEE{}

// TEE is the TDX registration.
type TEE struct{}

// Names implements tee.TEE.
func (TEE) Names() []string { return []string{"tdx"} }

// Attributes implements tee.TEE.
func (TEE) Attributes() []string {
	return []string{"memory", "qemu_versions", "page_orders", "tdvf_separators", "acpi_qemu", "virtio_disks", "phys_bits", "assume_rtmr_measurement", "xfam", "uki", "disk", "failed_boot_options"}
}

// node is a decoded TDX measure block.
type node struct {
	*tee.Block
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
	xfam string
	// uki and disk describe a TD that boots a UKI from the disk's ESP
	// (RTMR1 and RTMR2); failed is the number of boot options the
	// firmware tries, and that return, before the disk's.
	uki, disk *recipes.Artifact
	failed    int
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
	ctx := b.Ctx
	strs("memory", &n.memory, "2G", func(s string) error { _, err := model.ParseMemory(s); return err })
	_, n.qemuSet = b.Attrs["qemu_versions"]
	strs("qemu_versions", &n.qemu, "10.2", func(s string) error { _, err := model.ParseQEMUVersion(s); return err })
	strs("page_orders", &n.pageOrders, string(model.PageOrderSinglePass), func(s string) error { _, err := model.ParsePageOrder(s); return err })
	strs("tdvf_separators", &n.separators, string(model.SeparatorCurrent), func(s string) error { _, err := model.ParseSeparator(s); return err })
	if a, ok := b.Attrs["acpi_qemu"]; ok {
		diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.String, &n.acpiQEMU)...)
		if n.acpiQEMU == "" && !diags.HasErrors() {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid acpi_qemu",
				Detail: "acpi_qemu names the QEMU binary (e.g. \"qemu-system-x86_64\") whose ACPI tables RTMR0 covers; leave it out to leave RTMR0 not computed.", Subject: a.Expr.Range().Ptr()})
		}
		if _, ok := b.Attrs["kernel"]; !ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "acpi_qemu without kernel",
				Detail: "The ACPI tables are read by booting the block's kernel (built with the fwcfg fragment, CONFIG_FW_CFG_SYSFS) under QEMU: add kernel = kernel.NAME.", Subject: a.NameRange.Ptr()})
		}
	} else if a, ok := b.Attrs["vcpus"]; ok {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "vcpus without acpi_qemu",
			Detail: "A TD's vCPU count enters its measurement only through QEMU's ACPI tables (RTMR0): add acpi_qemu = \"qemu-system-x86_64\" (or another QEMU) so that they are read, or leave vcpus out.", Subject: a.NameRange.Ptr()})
	}
	if a, ok := b.Attrs["virtio_disks"]; ok {
		diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.Number, &n.virtioDisks)...)
		if n.virtioDisks < 0 || n.virtioDisks > 16 {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid virtio_disks",
				Detail: "virtio_disks is the number of virtio block devices the TD is launched with (0-16).", Subject: a.Expr.Range().Ptr()})
		}
	}
	n.physBits = qemuacpi.DefaultPhysBits
	if a, ok := b.Attrs["phys_bits"]; ok {
		diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.Number, &n.physBits)...)
		if n.physBits != 48 && n.physBits != 52 {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid phys_bits",
				Detail: "phys_bits is the guest-physical address width a TD sees: 52 (GPAW 1, 5-level EPT) or 48. OVMF places the 64-bit PCI window by it, and QEMU describes that window in the DSDT.", Subject: a.Expr.Range().Ptr()})
		}
	}
	if a, ok := b.Attrs["assume_rtmr_measurement"]; ok {
		diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.Bool, &n.assumeRTMR)...)
	}
	if a, ok := b.Attrs["xfam"]; ok {
		var s string
		if d := recipes.DecodeExpr(a.Expr, ctx, cty.String, &s); d.HasErrors() {
			diags = append(diags, d...)
		} else if x, err := checkXFAM(s); err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid xfam", Detail: err.Error() + ".", Subject: a.Expr.Range().Ptr()})
		} else {
			n.xfam = x
		}
	}
	diags = append(diags, n.decodeUKI(b)...)
	return n, diags
}

// decodeUKI decodes uki, disk and failed_boot_options: a TD that boots a
// UKI from its disk instead of a kernel given to QEMU.
func (n *node) decodeUKI(b *tee.Block) hcl.Diagnostics {
	var diags hcl.Diagnostics
	art := func(name string) *recipes.Artifact {
		a, ok := b.Attrs[name]
		if !ok {
			return nil
		}
		v, known, d := recipes.DecodeArtifact(a.Expr, b.Ctx)
		diags = append(diags, d...)
		if !known {
			return nil
		}
		return &v
	}
	n.uki, n.disk = art("uki"), art("disk")
	failed, d := b.FailedBootOptions()
	diags, n.failed = append(diags, d...), failed
	_, hasUKI := b.Attrs["uki"]
	_, hasDisk := b.Attrs["disk"]
	switch a, hasFailed := b.Attrs["failed_boot_options"]; {
	case hasUKI != hasDisk:
		which, other := "uki", "disk"
		if hasDisk {
			which, other = "disk", "uki"
		}
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: which + " without " + other,
			Detail:  "A TD that boots a UKI from its disk measures the UKI and the disk's GPT into RTMR1: give both, uki = uki.NAME and disk = disk.NAME (the raw image whose ESP holds the UKI at \\EFI\\BOOT\\BOOTX64.EFI).",
			Subject: b.Attrs[which].NameRange.Ptr()})
	case hasUKI && b.Kernel != nil:
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "kernel beside uki",
			Detail:  "A TD boots either a kernel directly (QEMU -kernel: kernel, initrd, cmdline) or a UKI from its disk (uki, disk), not both: leave one out.",
			Subject: b.Attrs["uki"].NameRange.Ptr()})
	case hasFailed && !hasUKI:
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "failed_boot_options without uki",
			Detail: "failed_boot_options counts the boot options tried before a disk's UKI: add uki = uki.NAME and disk = disk.NAME, or leave it out.", Subject: a.NameRange.Ptr()})
	}
	for _, name := range []string{"initrd", "cmdline"} {
		if a, ok := b.Attrs[name]; ok && hasUKI {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: name + " beside uki",
				Detail: fmt.Sprintf("The UKI holds the %s it boots: leave %s out.", name, name), Subject: a.NameRange.Ptr()})
		}
	}
	return diags
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

// params is what the measure step's key covers beyond its inputs.
type params struct {
	tee.StepParams
	VCPUs       []int    `json:"vcpus,omitempty"`
	Memory      []string `json:"memory,omitempty"`
	QEMU        []string `json:"qemu_versions,omitempty"`
	PageOrders  []string `json:"page_orders,omitempty"`
	Separators  []string `json:"tdvf_separators,omitempty"`
	ACPIQEMU    bool     `json:"acpi_qemu,omitempty"` // the probe holds its version
	VirtioDisks int      `json:"virtio_disks,omitempty"`
	PhysBits    int      `json:"phys_bits,omitempty"`
	AssumeRTMR  bool     `json:"assume_rtmr_measurement,omitempty"`
	UKI         bool     `json:"uki,omitempty"`
	Failed      int      `json:"failed_boot_options,omitempty"`
}

// models are the versions of the measure packages the step depends on.
type models struct{ TDX, OVMF, PE string }

// currentModels are the versions the measure packages declare.
var currentModels = models{TDX: model.ModelVersion, OVMF: ovmf.ModelVersion, PE: pe.ModelVersion}

func stepVersion(m models) string {
	return tee.StepVersion("tdx", m.TDX, "ovmf", m.OVMF, "pe", m.PE)
}

// Steps implements recipes.Node.
func (n *node) Steps() []*recipes.Step {
	inputs, sp := n.Inputs()
	p := params{StepParams: sp, Memory: n.memory, QEMU: n.qemu, PageOrders: n.pageOrders, Separators: n.separators,
		ACPIQEMU: n.acpiQEMU != "", VirtioDisks: n.virtioDisks, AssumeRTMR: n.assumeRTMR, Failed: n.failed}
	if n.uki != nil && n.disk != nil {
		inputs, p.UKI = append(inputs, *n.uki, *n.disk), true
	}
	if n.acpiQEMU != "" {
		// Without ACPI tables the vCPU count is not part of a TD's measurement.
		p.VCPUs, p.PhysBits = n.VCPUs, n.physBits
	}
	st := &recipes.Step{ID: tee.StepID, Kind: "measure/" + n.TEE, Version: stepVersion(currentModels), Params: p, Inputs: inputs, Run: n.run}
	if n.acpiQEMU != "" {
		// The tables are QEMU's output: its release and q35 machine type
		// are part of the key.
		// Memoized by the binary's metadata: a rebuild with nothing
		// changed runs no QEMU.
		st.Probe = func(ctx context.Context) (string, error) {
			bin, err := exec.LookPath(n.acpiQEMU)
			if err != nil {
				return "", fmt.Errorf("measure %q: acpi_qemu: %w: install QEMU or name a QEMU binary (scripts/tdx-qemu fetches the one the sample models)", n.Name, err)
			}
			if bin, err = filepath.Abs(bin); err != nil {
				return "", err
			}
			return recipes.Memoize(ctx, "qemu-probe "+bin, func() (string, []string, error) {
				v, machine, err := qemuacpi.Probe(ctx, bin)
				if err != nil {
					return "", nil, fmt.Errorf("measure %q: acpi_qemu: %w", n.Name, err)
				}
				return "qemu " + v.Full + " " + machine + " " + qemuacpi.MachineOptions + " helper " + qemuacpi.HelperVersion, []string{bin}, nil
			})
		}
	}
	return []*recipes.Step{st}
}

func (n *node) run(ctx context.Context, sc *recipes.StepContext) error {
	in, err := n.ReadInputs(sc.OutDir)
	if err != nil {
		return err
	}
	entries, err := n.measure(ctx, sc, in)
	if err != nil {
		return err
	}
	return tee.WriteEntries(sc.OutDir, entries)
}

// Finish implements recipes.Node: every entry states the declared XFAM,
// and the ACPI blobs read from QEMU (what RTMR0 covers) are kept for audit
// and for replaying the event log.
func (n *node) Finish(results map[string]*recipes.Result) (*recipes.Output, error) {
	return n.Block.Finish(results, tee.FinishOptions{
		Entry: func(m *manifest.Measurement) {
			if n.xfam != "" {
				m.Values = tee.With(m.Values, "xfam", n.xfam)
			}
		},
		Artifacts: func(res *recipes.Result) ([]recipes.OutputArtifact, error) {
			var out []recipes.OutputArtifact
			for _, rf := range res.Files {
				if !strings.HasPrefix(rf.Path, "acpi/") {
					continue
				}
				a, err := res.File(rf.Path)
				if err != nil {
					return nil, err
				}
				out = append(out, recipes.OutputArtifact{Name: "measure." + n.Name + "/" + rf.Path, Kind: "acpi-blob",
					Path: "measure/" + n.Name + "/" + rf.Path, File: a, Extra: map[string]any{"qemu_fw_cfg": "etc/" + map[string]string{"table-loader": "table-loader", "rsdp": "acpi/rsdp", "tables": "acpi/tables"}[path.Base(rf.Path)]}})
			}
			return out, nil
		},
		EventLogFormat: "tcg2-crypto-agile-sha384",
	})
}
