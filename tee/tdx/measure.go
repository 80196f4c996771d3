package tdx

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	"github.com/hashicorp/hcl/v2"

	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/internal/qemuacpi"
	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/measure/ovmf"
	model "github.com/cocobuild/cocobuild/measure/tdx"
	"github.com/cocobuild/cocobuild/recipes"
	"github.com/cocobuild/cocobuild/tee"
)

// unsafeName is compiled on first use, not at every process start.
var unsafeName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[^A-Za-z0-9._-]+`) })

// measure computes the block's entries: one per combination of vCPUs,
// memory, QEMU release, page order and separator; each writes its CC event
// log, and with acpi_qemu the ACPI tables read from QEMU go into acpi/.
func (n *node) measure(ctx context.Context, sc *recipes.StepContext, in *tee.Read) ([]tee.Entry, error) {
	fw, kernel, initrd, common, fwInfo, fwErr := in.Firmware, in.Kernel, in.Initrd, in.Common, in.FirmwareInfo, in.FirmwareErr
	var assumptions []string
	lacks := rtmrGap(fwInfo, fwErr)
	if lacks != "" {
		if !n.assumeRTMR {
			return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Firmware does not measure into RTMRs",
				Detail: fmt.Sprintf("measure %q: firmware %s %s, so a TD booted with it reports other RTMR values than the ones modelled here. "+
					"Use a TDVF build with TdTcg2Dxe (e.g. Debian's ovmf-generic 2026.08 OVMF.fd), or set assume_rtmr_measurement = true to model them anyway "+
					"(the entries then record the assumption and cover nothing past MRTD, so publishing them needs allow_partial_coverage).", n.Name, n.Firmware.Origin, lacks),
				Subject: n.FirmwareRange.Ptr()}}
		}
		assumptions = append(assumptions, fmt.Sprintf("firmware %s %s: RTMR values assume a TDVF that measures into RTMRs (assume_rtmr_measurement)", n.Firmware.Origin, lacks))
	}
	sb := secureBootVariables(fwInfo)
	var uki *model.UKIBoot
	if n.uki != nil && n.disk != nil {
		var err error
		if uki, err = n.readUKI(); err != nil {
			return nil, err
		}
		common = tee.With(common, "uki_sha256", n.uki.SHA256, "disk_sha256", n.disk.SHA256, "failed_boot_options", n.failed)
	}
	qemuVersions := n.qemu
	vcpus := []int{0} // not part of the measurement without ACPI tables
	type acpiKey struct {
		vcpus int
		mem   string
	}
	tables := map[acpiKey]*model.ACPITables{}
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
		vcpus = n.VCPUs
	}
	// Boot the helper only when an entry models the QEMU it runs.
	useful := false
	for _, qv := range qemuVersions {
		q, _ := model.ParseQEMUVersion(qv)
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
				memBytes, _ := model.ParseMemory(mem)
				fmt.Fprintf(sc.Log, "ACPI tables: booting the helper guest with QEMU %s (%s), %d vCPUs, %s\n", dumpQEMU.Full, machine, nv, mem)
				r, err := qemuacpi.Dump(ctx, qemuacpi.Config{QEMU: n.acpiQEMU, Firmware: n.Firmware.Path, Kernel: n.Kernel.Path,
					VCPUs: nv, Memory: memBytes, Disks: n.virtioDisks, PhysBits: n.physBits, Helper: helper, WorkDir: tmp, Log: sc.Log})
				if err != nil {
					return nil, fmt.Errorf("measure %q: ACPI tables for %d vCPUs, %s: %w", n.Name, nv, mem, err)
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
	var out []tee.Entry
	for _, nv := range vcpus {
		for _, mem := range n.memory {
			memBytes, _ := model.ParseMemory(mem)
			for _, qv := range qemuVersions {
				q, _ := model.ParseQEMUVersion(qv)
				for _, po := range n.pageOrders {
					order, _ := model.ParsePageOrder(po)
					for _, sp := range n.separators {
						if err := ctx.Err(); err != nil {
							return nil, err
						}
						sep, _ := model.ParseSeparator(sp)
						opts := model.Options{PageOrder: order, Memory: memBytes, QEMU: q, Separator: sep, SecureBoot: sb, UKI: uki}
						if n.Kernel != nil {
							opts.Kernel, opts.Cmdline = kernel, n.Cmdline
							if n.Initrd != nil {
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
						r, err := model.Measure(fw, opts)
						if err != nil {
							return nil, err
						}
						rep := r.Report()
						name := fmt.Sprintf("memory=%s,qemu=%s,order=%s,separator=%s", mem, qv, po, sp)
						if nv > 0 {
							name = fmt.Sprintf("vcpus=%d,", nv) + name
						}
						values := map[string]any{"mrtd": rep.MRTD.String()}
						for i, d := range []*model.Digest{rep.RTMR0, rep.RTMR1, rep.RTMR2, rep.RTMR3} {
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
						params := tee.With(common, "memory", mem, "qemu_version", qv, "page_order", po, "tdvf_separator", sp, "variant", rep.Variant)
						params["covers"] = coverage(rep, n.Kernel != nil || uki != nil, lacks == "")
						if nv > 0 {
							params = tee.With(params, "vcpus", nv, "virtio_disks", n.virtioDisks)
						}
						if opts.ACPI != nil {
							params = tee.With(params, "acpi_qemu", dumpQEMU.Full, "acpi_machine", machine, "acpi_phys_bits", n.physBits,
								"acpi_tables", fmt.Sprintf("acpi/vcpus=%d,memory=%s", nv, mem))
						}
						if len(rep.NotComputable) > 0 {
							params["not_computable"] = rep.NotComputable
						}
						if len(assumptions) > 0 {
							params["assumptions"] = assumptions
						}
						logName := fmt.Sprintf("%d-%s.ccel", len(out), unsafeName().ReplaceAllString(name, "_"))
						if err := os.WriteFile(filepath.Join(sc.OutDir, logName), r.EventLog(), 0o644); err != nil {
							return nil, err
						}
						out = append(out, tee.Entry{Measurement: manifest.Measurement{TEE: n.TEE, Name: name, Params: params, Values: values},
							EventLog: logName, Report: rep})
					}
				}
			}
		}
	}
	return out, nil
}

// readUKI reads the UKI and the first MiB of the disk (its GPT) for a
// TD that boots the UKI from the disk.
func (n *node) readUKI() (*model.UKIBoot, error) {
	img, err := n.Limits.ReadFile(n.uki.Path, limits.Kernel)
	if err != nil {
		return nil, fmt.Errorf("uki of measure block %q (%s): %w", n.Name, n.uki.Origin, err)
	}
	head, err := limits.ReadHead(n.disk.Path, model.GPTHeadSize)
	if err != nil {
		return nil, fmt.Errorf("disk of measure block %q (%s): %w", n.Name, n.disk.Origin, err)
	}
	if _, err := model.GPTEventData(head); err != nil {
		return nil, fmt.Errorf("disk of measure block %q (%s): %w: give the raw image (disk.NAME.raw, or a disk block whose first format is raw)", n.Name, n.disk.Origin, err)
	}
	// The kernel's EFI stub is assumed to be Linux 6.9 or later (as for
	// direct boot): it measures the UKI's .cmdline and .initrd into RTMR2.
	return &model.UKIBoot{UKI: img, Disk: head, FailedBootOptions: n.failed, LinuxCC: true}, nil
}

// secureBootVariables are the Secure Boot variables a TD booted with the
// firmware measures into RTMR0, from the image's own variable store: nil
// (all empty) when it enrolls no keys; otherwise PK, KEK, db and dbx as
// stored, and SecureBoot as the variable driver sets it at boot (1 when a
// PK is enrolled and SecureBootEnable does not turn it off).
func secureBootVariables(info *ovmf.Info) *model.SecureBootVariables {
	if info == nil || len(info.SecureBoot.Enrolled) == 0 {
		return nil
	}
	sb := &model.SecureBootVariables{SecureBoot: []byte{0}}
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
func coverage(rep model.Report, boots, measuresRTMR bool) manifest.Coverage {
	return manifest.Coverage{Firmware: measuresRTMR && rep.RTMR0 != nil, Kernel: measuresRTMR && boots && rep.RTMR1 != nil,
		Initrd: measuresRTMR && boots && rep.RTMR2 != nil, Cmdline: measuresRTMR && boots && rep.RTMR2 != nil}
}
