package sev

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/google/go-sev-guest/abi"
	"github.com/spf13/cobra"

	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/internal/termsafe"
	"github.com/cocobuild/cocobuild/measure/ovmf"
	model "github.com/cocobuild/cocobuild/measure/sev"
	"github.com/cocobuild/cocobuild/tee"
)

// sevFlags are the flags of `cocobuild measure sev`, named as sev-snp-measure names them.
type sevFlags struct {
	mode, vcpuType, vcpuSig, vmmType string
	vcpus, family, model, stepping   int
	ovmf, kernel, initrd, appendLine string
	guestFeatures, outputFormat      string
	sevesFeatures                    string
	snpOVMFHash                      string
	dumpVMSA, verbose, ec2LegacyVMSA bool
	anyFirmware                      bool
	vmsaGPA                          string
}

// Command implements tee.TEE: `cocobuild measure sev`.
func (TEE) Command(cli *tee.CLI) *cobra.Command {
	var f sevFlags
	c := &cobra.Command{
		Use:   "sev --mode snp|seves|sev|snp:ovmf-hash --ovmf FILE [flags]",
		Short: "Compute an AMD SEV, SEV-ES or SEV-SNP launch digest (sev-snp-measure compatible)",
		Long: `Compute the launch digest the AMD secure processor will report for a guest, from the
OVMF firmware, vCPU count and model, VMM and (for measured direct boot) the kernel, initrd
and command line. Flags and output are those of virtee/sev-snp-measure 0.0.13, so the
command can replace it in scripts; --json adds the parameters and the model used.

Where sev-snp-measure would measure something that cannot launch, this command fails:
snp on a firmware without SEV metadata, or a kernel given to a firmware without a SEV
hashes table. It also fails where sev-snp-measure picks one of several answers without a
word: --vcpu-type, --vcpu-sig and --vcpu-family/--vcpu-model/--vcpu-stepping are
alternatives (give one), and --ovmf must be a firmware image (an OVMF footer table or a
UEFI firmware volume) unless --allow-unknown-firmware says to measure its bytes anyway
(sev mode and snp:ovmf-hash; seves and snp need the firmware's SEV structures).

Input files are read once and must be regular files within the limits in force
(--limit, e.g. firmware 64MiB, kernel 512MiB); /dev/null reads as an empty file.
Notes about what the digest does not cover go to stderr.`,
		Example: `  cocobuild measure sev --mode snp --ovmf OVMF.fd --vcpus 4 --vcpu-type EPYC-Milan
  cocobuild measure sev --mode snp --ovmf OVMF.fd --vcpus 2 --vmm-type ec2
  cocobuild measure sev --mode snp --ovmf OVMF-AmdSev.fd --vcpus 1 --vcpu-sig 0xa10f10 \
      --kernel vmlinuz --initrd initrd.img --append "console=ttyS0" --output-format base64
  cocobuild measure sev --mode snp:ovmf-hash --ovmf OVMF.fd
  cocobuild measure sev --mode seves --ovmf OVMF.fd --vcpus 2 --vcpu-type EPYC-v4 --dump-vmsa
  cocobuild measure sev --mode seves --ovmf OVMF.fd --vcpus 2 --vcpu-type EPYC-v4 --seves-features 0x20`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMeasureSEV(cli, cmd, &f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.mode, "mode", "", "guest mode: sev, seves, snp or snp:ovmf-hash (required)")
	fl.IntVar(&f.vcpus, "vcpus", 0, "number of guest vCPUs (seves, snp)")
	fl.StringVar(&f.vcpuType, "vcpu-type", "", "guest vCPU model ("+strings.Join(model.CPUTypes(), ", ")+")")
	fl.StringVar(&f.vcpuSig, "vcpu-sig", "", "guest vCPU signature (CPUID 1 EAX), e.g. 0xa00f11")
	fl.IntVar(&f.family, "vcpu-family", 0, "guest vCPU family (with --vcpu-model and --vcpu-stepping)")
	fl.IntVar(&f.model, "vcpu-model", 0, "guest vCPU model number")
	fl.IntVar(&f.stepping, "vcpu-stepping", 0, "guest vCPU stepping")
	fl.StringVar(&f.vmmType, "vmm-type", "QEMU", "VMM whose VMSA to model: "+strings.Join(model.VMMNames(), ", ")+" (any case)")
	fl.StringVar(&f.ovmf, "ovmf", "", "OVMF firmware file (required)")
	fl.StringVar(&f.kernel, "kernel", "", "kernel file for measured direct boot")
	fl.StringVar(&f.initrd, "initrd", "", "initrd file (with --kernel)")
	fl.StringVar(&f.appendLine, "append", "", "kernel command line (with --kernel)")
	fl.StringVar(&f.guestFeatures, "guest-features", "0x1", "SNP guest features (SEV_FEATURES of the VMSAs); seves ignores it, as sev-snp-measure does")
	fl.StringVar(&f.sevesFeatures, "seves-features", "0x0", "SEV_FEATURES of SEV-ES VMSAs (seves only; not in sev-snp-measure), e.g. 0x20 (DebugSwap) for KVM hosts that set it")
	fl.StringVar(&f.outputFormat, "output-format", "hex", "digest format: hex or base64")
	fl.StringVar(&f.snpOVMFHash, "snp-ovmf-hash", "", "precomputed SNP hash of the OVMF pages (hex, from --mode snp:ovmf-hash)")
	fl.BoolVar(&f.dumpVMSA, "dump-vmsa", false, "write the measured VMSAs to vmsa<N>.bin in the current directory (seves, snp)")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "print \"Calculated <MODE> guest measurement: <digest>\"")
	fl.BoolVar(&f.ec2LegacyVMSA, "ec2-legacy-vmsa", false, "model EC2 VMSAs as sev-snp-measure < 0.0.13 and sev-snp-measure-go do (RDX 0, not 0x600)")
	fl.StringVar(&f.vmsaGPA, "vmsa-gpa", "", "GPA of SNP VMSA pages, any page-aligned value, 0 included (default 0xFFFFFFFFF000, KVM's)")
	fl.BoolVar(&f.anyFirmware, "allow-unknown-firmware", false, "measure --ovmf even when it is no firmware image cocobuild recognizes (no OVMF footer table, no firmware volume): sev mode and snp:ovmf-hash then hash whatever bytes it holds")
	c.AddCommand(newMeasureSEVIDBlockCmd(cli))
	return c
}

// ignoredFlags are notes for the flags of names that were given but do
// not apply (why), which sev-snp-measure ignores without a word.
func ignoredFlags(changed func(string) bool, why string, names ...string) []string {
	var given []string
	for _, n := range names {
		if changed(n) {
			given = append(given, "--"+n)
		}
	}
	if len(given) == 0 {
		return []string{}
	}
	return []string{fmt.Sprintf("%s: %s ignored, as sev-snp-measure ignores them", why, strings.Join(given, ", "))}
}

// notFirmware is the error for an --ovmf that is no firmware image.
func notFirmware(path string, err error) error {
	return tee.Escaped(fmt.Errorf("--ovmf %s: %w: if these bytes are what the guest boots, measure them anyway with --allow-unknown-firmware", path, err))
}

// sevModeNames are the names sev-snp-measure's --verbose prints.
var sevModeNames = map[model.Mode]string{model.ModeSEV: "SEV", model.ModeSEVES: "SEV_ES", model.ModeSNP: "SEV_SNP"}

func parseUintFlag(cli *tee.CLI, name, s string, bits int) (uint64, error) {
	v, err := strconv.ParseUint(s, 0, bits)
	if err != nil {
		return 0, cli.Usage(fmt.Errorf("--%s %q: want a number (decimal or 0x hex) of at most %d bits", name, s, bits))
	}
	return v, nil
}

// readInputFile reads the file of a flag within the limit l in force
// (--limit): a pipe, a device or an oversized file is a usage error at once.
func readInputFile(cli *tee.CLI, flag, path string, l limits.Limit) ([]byte, error) {
	b, err := tee.ReadInput(cli.Limits, flag, path, l)
	if err != nil {
		return nil, cli.Usage(err)
	}
	return b, nil
}

func runMeasureSEV(cli *tee.CLI, cmd *cobra.Command, f *sevFlags) error {
	changed := cmd.Flags().Changed
	if f.mode == "" {
		return cli.Usage(errors.New("--mode is required: sev, seves, snp or snp:ovmf-hash"))
	}
	if f.ovmf == "" {
		return cli.Usage(errors.New("--ovmf is required: the OVMF firmware file"))
	}
	if f.outputFormat != "hex" && f.outputFormat != "base64" {
		return cli.Usage(fmt.Errorf("--output-format %q: want hex or base64", f.outputFormat))
	}
	// The inputs are mapped, not copied; every goroutine that reads them
	// is done before they are unmapped (the deferred calls run last first).
	var inputs tee.Inputs
	defer inputs.Close()
	fw, err := inputs.Map(cli.Limits, "ovmf", f.ovmf, limits.Firmware)
	if err != nil {
		return cli.Usage(err)
	}
	if f.mode == "snp:ovmf-hash" {
		if !f.anyFirmware {
			if err := ovmf.Recognize(fw); err != nil {
				return cli.Failure(notFirmware(f.ovmf, err))
			}
		}
		h, err := model.SNPFirmwareHash(fw)
		if err != nil {
			return cli.Failure(tee.Escaped(err))
		}
		if err := inputs.Unchanged(); err != nil {
			return cli.Failure(err)
		}
		notes := ignoredFlags(changed, "snp:ovmf-hash hashes the firmware pages alone", "vcpus", "vcpu-type", "vcpu-sig",
			"vcpu-family", "vcpu-model", "vcpu-stepping", "vmm-type", "kernel", "initrd", "append", "guest-features",
			"seves-features", "snp-ovmf-hash", "dump-vmsa", "ec2-legacy-vmsa", "vmsa-gpa")
		if cli.JSON() {
			return cli.PrintJSON(map[string]any{"mode": f.mode, "snp_ovmf_hash": hex.EncodeToString(h),
				"firmware": fileInfo(f.ovmf, fw), "notes": notes})
		}
		for _, n := range notes {
			fmt.Fprintln(cli.Stderr, "note:", n)
		}
		// sev-snp-measure prints this in hex whatever --output-format says.
		fmt.Fprintln(cli.Stdout, hex.EncodeToString(h))
		return nil
	}
	if strings.EqualFold(f.mode, "snp:svsm") {
		return cli.Usage(errors.New("--mode snp:svsm (Coconut-SVSM) is not modelled by cocobuild: use sev-snp-measure for it"))
	}
	mode, err := model.ParseMode(f.mode)
	if err != nil {
		return cli.Usage(fmt.Errorf("--mode: %w (or snp:ovmf-hash)", err))
	}
	if changed("initrd") && f.kernel == "" {
		return cli.Usage(errors.New("--kernel required when using --initrd"))
	}
	if f.appendLine != "" && f.kernel == "" {
		return cli.Usage(errors.New("--kernel required when using --append"))
	}
	if mode != model.ModeSEV && !changed("vcpus") {
		return cli.Usage(fmt.Errorf("missing --vcpus N in guest mode '%s'", f.mode))
	}
	vmm, err := model.ParseVMM(f.vmmType)
	if err != nil {
		return cli.Usage(fmt.Errorf("--vmm-type: %w", err))
	}
	gf, err := parseUintFlag(cli, "guest-features", f.guestFeatures, 64)
	if err != nil {
		return err
	}
	sf, err := parseUintFlag(cli, "seves-features", f.sevesFeatures, 64)
	if err != nil {
		return err
	}
	p := model.Params{Mode: mode, Firmware: fw, VCPUs: f.vcpus, VMM: vmm, GuestFeatures: gf, SEVESFeatures: sf,
		DumpVMSA: f.dumpVMSA, EC2LegacyRDX: f.ec2LegacyVMSA, AnyFirmware: f.anyFirmware}
	if mode != model.ModeSEV {
		if err := setVCPU(cli, &p, f, changed); err != nil {
			return err
		}
	}
	if changed("vmsa-gpa") {
		gpa, err := parseUintFlag(cli, "vmsa-gpa", f.vmsaGPA, 64)
		if err != nil {
			return err
		}
		p.VMSAGPA = &gpa
	}
	if f.snpOVMFHash != "" {
		if p.SNPFirmwareHash, err = hex.DecodeString(f.snpOVMFHash); err != nil {
			return cli.Usage(fmt.Errorf("--snp-ovmf-hash: %w (want the hex that --mode snp:ovmf-hash prints)", err))
		}
	}
	var kernel, initrd []byte
	if f.kernel != "" {
		if kernel, err = inputs.Map(cli.Limits, "kernel", f.kernel, limits.Kernel); err != nil {
			return cli.Usage(err)
		}
		if f.initrd != "" {
			if initrd, err = inputs.Map(cli.Limits, "initrd", f.initrd, limits.Initrd); err != nil {
				return cli.Usage(err)
			}
		}
		p.DirectBoot = &model.DirectBoot{Kernel: kernel, Initrd: initrd, Cmdline: f.appendLine}
	}
	// Whether the firmware checks the blobs is read from its modules while
	// the digest is computed, on another core.
	var coverage chan string
	if p.DirectBoot != nil {
		coverage = make(chan string, 1)
		done := make(chan struct{})
		defer func() { <-done }()
		go func() {
			defer close(done)
			v, err := tee.FirmwareVerdict(fw)
			coverage <- directBootNote(v.VerifiesDirectBoot, v.DirectBootEvidence, err)
		}()
	}

	var ignored []string
	if mode == model.ModeSEV {
		ignored = ignoredFlags(changed, "SEV measures no VMSAs", "vcpus", "vcpu-type", "vcpu-sig",
			"vcpu-family", "vcpu-model", "vcpu-stepping", "vmm-type", "guest-features", "ec2-legacy-vmsa")
	}
	r, err := model.Measure(p)
	if err != nil {
		var pe *model.ParamError
		if errors.As(err, &pe) {
			return cli.Usage(err)
		}
		if errors.Is(err, ovmf.ErrNotFirmware) {
			return cli.Failure(notFirmware(f.ovmf, err))
		}
		return cli.Failure(tee.Escaped(err))
	}
	if err := inputs.Unchanged(); err != nil {
		return cli.Failure(err)
	}
	r.Notes = append(r.Notes, ignored...)
	// The trap of a hashes table that nothing checks: the digest then
	// covers no kernel, initrd or cmdline (the measure block says the same).
	if coverage != nil {
		if why := <-coverage; why != "" {
			r.Covers.Kernel, r.Covers.Initrd, r.Covers.Cmdline = false, false, false
			r.Notes = append(r.Notes, why)
		}
	}
	measurement := hex.EncodeToString(r.Digest)
	if f.outputFormat == "base64" {
		measurement = base64.StdEncoding.EncodeToString(r.Digest)
	}
	var vmsaFiles []string
	for i, v := range r.VMSAs {
		name := fmt.Sprintf("vmsa%d.bin", i)
		if err := os.WriteFile(name, v, 0o644); err != nil {
			return cli.Failure(fmt.Errorf("--dump-vmsa: %w", err))
		}
		vmsaFiles = append(vmsaFiles, name)
	}
	if cli.JSON() {
		return cli.PrintJSON(sevJSON(f, p, r, measurement, kernel, initrd, vmsaFiles))
	}
	for _, n := range r.Notes {
		fmt.Fprintln(cli.Stderr, "note:", termsafe.Escape(n))
	}
	if f.verbose {
		fmt.Fprintf(cli.Stdout, "Calculated %s guest measurement: %s\n", sevModeNames[mode], measurement)
	} else {
		fmt.Fprintln(cli.Stdout, measurement)
	}
	return nil
}

// setVCPU passes the vCPU flags on. --vcpu-type, --vcpu-sig and
// --vcpu-family/--vcpu-model/--vcpu-stepping are three ways to say one
// thing: more than one is a usage error naming them, even when they agree
// (sev-snp-measure silently takes family/model/stepping, then the
// signature, then the type).
func setVCPU(cli *tee.CLI, p *model.Params, f *sevFlags, changed func(string) bool) error {
	fms := []string{"vcpu-family", "vcpu-model", "vcpu-stepping"}
	n := 0
	for _, name := range fms {
		if changed(name) {
			n++
		}
	}
	var given []string
	if changed("vcpu-type") {
		given = append(given, fmt.Sprintf("--vcpu-type %s", termsafe.Escape(f.vcpuType)))
	}
	if changed("vcpu-sig") {
		given = append(given, fmt.Sprintf("--vcpu-sig %s", termsafe.Escape(f.vcpuSig)))
	}
	if n > 0 {
		given = append(given, "--vcpu-family/--vcpu-model/--vcpu-stepping")
	}
	if len(given) > 1 {
		return cli.Usage(fmt.Errorf("%s conflict: they are alternative ways to give the vCPU signature; give one", strings.Join(given, " and ")))
	}
	switch {
	case n == 3:
		p.VCPUFMS = &model.FMS{Family: f.family, Model: f.model, Stepping: f.stepping}
	case n > 0:
		return cli.Usage(errors.New("--vcpu-family, --vcpu-model and --vcpu-stepping go together: give all three"))
	}
	if changed("vcpu-sig") {
		s, err := parseUintFlag(cli, "vcpu-sig", f.vcpuSig, 32)
		if err != nil {
			return err
		}
		sig := uint32(s)
		p.VCPUSig = &sig
	}
	if changed("vcpu-type") {
		if _, err := model.CPUSignature(f.vcpuType); err != nil {
			return cli.Usage(fmt.Errorf("--vcpu-type: %w; or give --vcpu-sig, or --vcpu-family, --vcpu-model and --vcpu-stepping", err))
		}
		p.VCPUType = f.vcpuType
	}
	return nil
}

type fileJSON struct {
	Path   string `json:"path"`
	Size   int    `json:"size"`
	SHA256 string `json:"sha256"`
}

func fileInfo(path string, b []byte) *fileJSON {
	s := sha256.Sum256(b)
	return &fileJSON{Path: path, Size: len(b), SHA256: hex.EncodeToString(s[:])}
}

// sevJSON is the --json output: the digest, the parameters and the model.
func sevJSON(f *sevFlags, p model.Params, r *model.Result, measurement string, kernel, initrd []byte, vmsaFiles []string) map[string]any {
	out := map[string]any{
		"mode":          r.Mode.String(),
		"measurement":   measurement,
		"digest":        hex.EncodeToString(r.Digest),
		"output_format": f.outputFormat,
		"firmware":      fileInfo(f.ovmf, p.Firmware),
		"variant":       r.Variant,
		"covers":        r.Covers,
		"notes":         append([]string{}, r.Notes...),
	}
	if r.Mode != model.ModeSEV {
		out["vcpus"] = p.VCPUs
		out["vmm_type"] = p.VMM.String()
		if p.VCPUType != "" && r.HasVCPUSig {
			out["vcpu_type"] = p.VCPUType // the signature came from it
		}
		if r.HasVCPUSig {
			out["vcpu_sig"] = fmt.Sprintf("%#x", r.VCPUSig)
		}
	}
	if r.Mode == model.ModeSEVES {
		out["seves_features"] = fmt.Sprintf("%#x", p.SEVESFeatures)
	}
	if r.Mode == model.ModeSNP {
		out["guest_features"] = fmt.Sprintf("%#x", p.GuestFeatures)
		out["vmsa_gpa"] = fmt.Sprintf("%#x", r.VMSAGPA)
		if p.SNPFirmwareHash != nil {
			out["snp_ovmf_hash"] = hex.EncodeToString(p.SNPFirmwareHash)
		}
	}
	if p.DirectBoot != nil {
		// The hashes table holds the SHA-256 of the kernel and initrd files.
		out["kernel"] = &fileJSON{Path: f.kernel, Size: len(kernel), SHA256: hex.EncodeToString(r.HashTable.Kernel[:])}
		if f.initrd != "" {
			out["initrd"] = &fileJSON{Path: f.initrd, Size: len(initrd), SHA256: hex.EncodeToString(r.HashTable.Initrd[:])}
		}
		out["append"] = p.DirectBoot.Cmdline
		out["hashes_table"] = map[string]string{
			"cmdline": hex.EncodeToString(r.HashTable.Cmdline[:]),
			"initrd":  hex.EncodeToString(r.HashTable.Initrd[:]),
			"kernel":  hex.EncodeToString(r.HashTable.Kernel[:]),
		}
	}
	if vmsaFiles != nil {
		out["vmsa_files"] = vmsaFiles
	}
	return out
}

func newMeasureSEVIDBlockCmd(cli *tee.CLI) *cobra.Command {
	var measurement, idKey, authorKey, policy, familyID, imageID string
	var svn uint32
	c := &cobra.Command{
		Use:   "id-block --measurement DIGEST --idkey PEM [--authorkey PEM] [flags]",
		Short: "Make a signed SNP ID block and ID auth info (snp-create-id-block compatible)",
		Long: `Build the SNP ID block for an expected launch digest and sign it with an ECDSA P-384
ID key (and the ID key with an author key, if given). The output is that of
sev-snp-measure's snp-create-id-block: the id-block=…,id-auth=… line that QEMU's
sev-snp-guest object takes, and the key digests attestation reports carry.`,
		Example: `  openssl ecparam -name secp384r1 -genkey -noout -out id_key.pem
  cocobuild measure sev id-block --measurement "$(cocobuild measure sev --mode snp --ovmf OVMF.fd \
      --vcpus 4 --vcpu-type EPYC-Milan --output-format base64)" --idkey id_key.pem --authorkey author_key.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if measurement == "" || idKey == "" {
				return cli.Usage(errors.New("--measurement and --idkey are required"))
			}
			ld, err := decodeDigest(measurement)
			if err != nil {
				return cli.Usage(fmt.Errorf("--measurement: %w", err))
			}
			pol, err := parseUintFlag(cli, "policy", policy, 64)
			if err != nil {
				return err
			}
			p := model.IDBlockParams{LaunchDigest: ld, GuestSVN: svn}
			if p.Policy, err = abi.ParseSnpPolicy(pol); err != nil {
				return cli.Usage(fmt.Errorf("--policy %s: %w", policy, err))
			}
			for _, id := range []struct {
				flag, val string
				dst       *[16]byte
			}{{"family-id", familyID, &p.FamilyID}, {"image-id", imageID, &p.ImageID}} {
				if id.val == "" {
					continue
				}
				b, err := hex.DecodeString(id.val)
				if err != nil || len(b) != 16 {
					return cli.Usage(fmt.Errorf("--%s %q: want 16 bytes in hex (32 digits)", id.flag, id.val))
				}
				copy(id.dst[:], b)
			}
			if p.IDKey, err = readKey(cli, "idkey", idKey); err != nil {
				return err
			}
			if authorKey != "" {
				if p.AuthorKey, err = readKey(cli, "authorkey", authorKey); err != nil {
					return err
				}
			}
			blk, err := model.NewIDBlock(p)
			if err != nil {
				return cli.Failure(err)
			}
			enc := base64.StdEncoding.EncodeToString
			if cli.JSON() {
				out := map[string]any{"id_block": enc(blk.Block), "id_auth": enc(blk.Auth),
					"id_key_digest": hex.EncodeToString(blk.IDKeyDigest), "measurement": hex.EncodeToString(ld),
					"policy": fmt.Sprintf("%#x", pol), "guest_svn": svn, "family_id": hex.EncodeToString(p.FamilyID[:]),
					"image_id": hex.EncodeToString(p.ImageID[:]), "author_key_enabled": blk.AuthorKeyDigest != nil}
				if blk.AuthorKeyDigest != nil {
					out["author_key_digest"] = hex.EncodeToString(blk.AuthorKeyDigest)
				}
				return cli.PrintJSON(out)
			}
			fmt.Fprintf(cli.Stdout, "id-block=%s,id-auth=%s\n", enc(blk.Block), enc(blk.Auth))
			fmt.Fprintf(cli.Stdout, "id_key_hash: %s\n", enc(blk.IDKeyDigest))
			if blk.AuthorKeyDigest != nil {
				fmt.Fprintf(cli.Stdout, "author_key: %s\n", enc(blk.AuthorKeyDigest))
			} else {
				fmt.Fprintln(cli.Stderr, "note: no author key: launch with author-key-enabled=off")
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&measurement, "measurement", "", "expected SNP launch digest, base64 (as snp-create-id-block takes it) or hex")
	fl.StringVar(&idKey, "idkey", "", "ID private key, ECDSA P-384 PEM (required)")
	fl.StringVar(&authorKey, "authorkey", "", "author private key, ECDSA P-384 PEM (optional)")
	fl.StringVar(&policy, "policy", fmt.Sprintf("%#x", model.DefaultIDPolicy), "guest policy the launch must use")
	fl.StringVar(&familyID, "family-id", "", "family ID, 16 bytes in hex (default zeros)")
	fl.StringVar(&imageID, "image-id", "", "image ID, 16 bytes in hex (default zeros)")
	fl.Uint32Var(&svn, "guest-svn", 0, "guest security version number")
	return c
}

// decodeDigest takes an SNP digest in hex (96 digits) or base64 (64 characters).
func decodeDigest(s string) ([]byte, error) {
	var b []byte
	var err error
	if len(s) == 2*model.DigestSize {
		b, err = hex.DecodeString(s)
	} else {
		b, err = base64.StdEncoding.DecodeString(s)
	}
	if err != nil {
		return nil, fmt.Errorf("want a 48-byte SNP digest in base64 or hex: %w", err)
	}
	if len(b) != model.DigestSize {
		return nil, fmt.Errorf("digest is %d bytes, want 48 (an SNP measurement)", len(b))
	}
	return b, nil
}

func readKey(cli *tee.CLI, flag, path string) (*ecdsa.PrivateKey, error) {
	b, err := readInputFile(cli, flag, path, limits.Document)
	if err != nil {
		return nil, err
	}
	k, err := model.ParseIDKeyPEM(b)
	if err != nil {
		return nil, cli.Usage(fmt.Errorf("--%s %s: %w", flag, termsafe.Escape(path), err))
	}
	return k, nil
}
