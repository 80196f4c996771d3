package sev

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"

	model "github.com/cocobuild/cocobuild/measure/sev"
	"github.com/cocobuild/cocobuild/tee"
)

var _ tee.Checker = TEE{}

// Evidence is a parsed SEV-SNP attestation report, with the certificate
// table that followed it, if any.
type Evidence struct {
	Report *spb.Report
	// Raw are the report's 1184 bytes.
	Raw []byte
	// Certs is the certificate table an extended report carries, or nil.
	Certs *spb.CertificateChain
}

// TEE implements tee.Evidence.
func (*Evidence) TEE() string { return "snp" }

// Describe implements tee.Evidence.
func (e *Evidence) Describe() string {
	s := fmt.Sprintf("SEV-SNP attestation report version %d", e.Report.GetVersion())
	if e.Certs != nil {
		s += " with its certificate table"
	}
	return s
}

// ParseEvidence implements tee.Checker: an SNP attestation report is 1184
// bytes (as snpguest report writes it), or more when a certificate table
// follows it (an extended report), and starts with its version, 2 to 5, as a
// little-endian uint32. A TDX quote starts with version 4 or 5 as a uint16
// followed by attestation key type 2, which never reads as 2 to 5.
func (TEE) ParseEvidence(b []byte) (tee.Evidence, bool, error) {
	if len(b) < abi.ReportSize {
		return nil, false, nil
	}
	if v := binary.LittleEndian.Uint32(b); v < 2 || v > 5 {
		return nil, false, nil
	}
	if len(b) == abi.ReportSize {
		r, err := abi.ReportToProto(b)
		if err != nil {
			return nil, true, fmt.Errorf("SEV-SNP attestation report: %w", err)
		}
		return &Evidence{Report: r, Raw: b}, true, nil
	}
	a, err := reportCertsToProto(b)
	if err != nil {
		return nil, true, fmt.Errorf("SEV-SNP attestation report of %d bytes (a report is %d; more is a report followed by its certificate table): %w", len(b), abi.ReportSize, err)
	}
	return &Evidence{Report: a.GetReport(), Raw: b[:abi.ReportSize], Certs: a.GetCertificateChain()}, true, nil
}

// EvidenceKinds implements tee.Checker.
func (TEE) EvidenceKinds() string {
	return "an AMD SEV-SNP attestation report (the 1184 bytes snpguest report writes, versions 2 to 5, or a report followed by its certificate table)"
}

// ParseEventLog implements tee.Checker: SNP evidence has no event log (a
// report's measurement is the launch digest itself).
func (TEE) ParseEventLog([]byte) error {
	return fmt.Errorf("%w: an SEV-SNP attestation report has none (--eventlog is for a TDX quote's CCEL); its launch measurement is checked by itself", tee.ErrNoEventLog)
}

// reportCertsToProto is go-sev-guest's parser of a report and its
// certificate table, whose panics on a malformed table become errors.
func reportCertsToProto(b []byte) (a *spb.Attestation, err error) {
	defer func() {
		if r := recover(); r != nil {
			a, err = nil, fmt.Errorf("malformed certificate table (go-sev-guest: %v)", r)
		}
	}()
	return abi.ReportCertsToProto(b)
}

// evidenceFields are the report's fields by reference-value name.
func evidenceFields(r *spb.Report) []tee.Field {
	pol := r.GetPolicy()
	f := []tee.Field{
		{Name: "snp_launch_measurement", Got: hex.EncodeToString(r.GetMeasurement())},
		{Name: "snp_policy", Got: fmt.Sprintf("0x%x", pol)},
	}
	for _, s := range policyScalars(pol) {
		f = append(f, s)
	}
	f = append(f,
		tee.Field{Name: "snp_family_id", Got: hex.EncodeToString(r.GetFamilyId())},
		tee.Field{Name: "snp_image_id", Got: hex.EncodeToString(r.GetImageId())},
		tee.Field{Name: "snp_host_data", Got: hex.EncodeToString(r.GetHostData())},
		tee.Field{Name: "snp_id_key_digest", Got: hex.EncodeToString(r.GetIdKeyDigest())},
		tee.Field{Name: "snp_author_key_digest", Got: hex.EncodeToString(r.GetAuthorKeyDigest())},
		tee.Field{Name: "snp_guest_svn", Got: strconv.FormatUint(uint64(r.GetGuestSvn()), 10)},
		tee.Field{Name: "snp_vmpl", Got: strconv.FormatUint(uint64(r.GetVmpl()), 10)},
		tee.Field{Name: "snp_report_data", Got: hex.EncodeToString(r.GetReportData())},
	)
	return f
}

// policyScalars are the RVPS scalars of a guest policy (as RVPSScalars
// publishes them), and the debug bit.
func policyScalars(p uint64) []tee.Field {
	return []tee.Field{
		{Name: "snp_guest_abi_major", Got: strconv.FormatUint((p>>8)&0xff, 10)},
		{Name: "snp_guest_abi_minor", Got: strconv.FormatUint(p&0xff, 10)},
		{Name: "snp_smt_allowed", Got: strconv.FormatBool(p&(1<<16) != 0)},
		{Name: "snp_single_socket", Got: strconv.FormatBool(p&(1<<20) != 0)},
	}
}

// published returns what entry e publishes for an evidence field, or ""
// when it publishes nothing for it.
func published(e tee.CheckEntry, field string) (string, error) {
	switch field {
	case "snp_launch_measurement":
		return e.Values["launch_measurement"], nil
	case "snp_policy":
		p, ok, err := policyParam(e.Params["policy"])
		if err != nil || !ok {
			return "", err
		}
		return fmt.Sprintf("0x%x", p), nil
	case "snp_guest_abi_major", "snp_guest_abi_minor", "snp_smt_allowed", "snp_single_socket":
		p, ok, err := policyParam(e.Params["policy"])
		if err != nil || !ok {
			return "", err
		}
		for _, s := range policyScalars(p) {
			if s.Name == field {
				return s.Got, nil
			}
		}
	case "snp_report_data":
		return "", nil // a nonce: never a reference value
	}
	key := strings.TrimPrefix(field, "snp_")
	switch v := e.Params[key].(type) {
	case nil:
		return "", nil
	case string:
		return strings.ToLower(strings.TrimPrefix(v, "0x")), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	default:
		return fmt.Sprint(v), nil
	}
}

// Guest policy bits that no guest of a release may have, whether its
// entries publish a policy or not: Trustee's default attestation policy
// (ear_default_policy_cpu.rego) requires debug_allowed and
// migrate_ma_allowed false for any SNP configuration it accepts.
const (
	policyDebug          = 1 << 19
	policyMigrationAgent = 1 << 18
)

// forbiddenPolicy says which forbidden bits policy p has, or "".
func forbiddenPolicy(p uint64) string {
	var d []string
	if p&policyDebug != 0 {
		d = append(d, "bit 19 (debugging allowed) is set: the host can read and change the guest's memory, so its measurement vouches for nothing")
	}
	if p&policyMigrationAgent != 0 {
		d = append(d, "bit 18 (migration agent allowed) is set: a migration agent can export the guest's memory")
	}
	return strings.Join(d, "; ")
}

// unpublishedNote says what a verifier expects of a field that no entry
// publishes, and whether the report's value is one it would question
// (unusual is then true).
func unpublishedNote(f tee.Field) (note string, unusual bool) {
	zero := strings.Trim(f.Got, "0") == ""
	switch f.Name {
	case "snp_report_data":
		return "the verifier's nonce, never a reference value", false
	case "snp_vmpl":
		if zero {
			return "not published; 0, the VMPL a guest without an SVSM (the launches cocobuild models) requests its reports at", false
		}
		return fmt.Sprintf("not published: check cannot vouch for it. The release's launches have no SVSM, so their guest kernel runs at VMPL 0 and requests its reports at VMPL 0; this report was requested for VMPL %s (a guest under an SVSM, or a request with privlevel %s), so its report data may come from software less privileged than the guest kernel. Trustee's default policy does not check the VMPL; require 0 in your verifier's policy if the guest has no SVSM", f.Got, f.Got), true
	case "snp_host_data":
		if zero {
			return "not published; zero: the host set no host data", false
		}
		return "not published: check cannot vouch for it. The host set host data (QEMU's sev-snp-guest host-data); the release does not say what it should be, and Trustee's default policy does not check it", true
	case "snp_id_key_digest", "snp_author_key_digest", "snp_family_id", "snp_image_id":
		if zero {
			return "not published; zero: the VM was launched without an ID block", false
		}
		return fmt.Sprintf("not published: check cannot vouch for it. The VM was launched with an ID block (%s set); the release does not publish one, and Trustee's default policy does not check it", f.Name), true
	case "snp_guest_svn":
		if zero {
			return "not published; 0: no ID block sets it", false
		}
		return "not published: check cannot vouch for it. The guest SVN comes from an ID block the release does not publish", true
	}
	return "not published: check cannot vouch for it", false
}

// compare compares every field of the report with entry e.
func compare(fields []tee.Field, e tee.CheckEntry) ([]tee.Field, bool, error) {
	out := make([]tee.Field, 0, len(fields))
	ok := true
	for _, f := range fields {
		want, err := published(e, f.Name)
		if err != nil {
			return nil, false, fmt.Errorf("entry %s: %w", e.Name, err)
		}
		c := tee.Field{Name: f.Name, Got: f.Got, Status: tee.FieldNotPublished}
		switch {
		case want != "":
			c.Want = []string{want}
			c.Status = tee.FieldMatch
			if want != f.Got {
				c.Status, ok = tee.FieldDiffers, false
			}
		case f.Name == "snp_policy" && forbiddenPolicy(policyOf(f)) != "":
			// Whatever the release publishes, a debuggable guest is
			// none of its guests (as TDX's DEBUG attribute).
			c.Want, c.Status, ok = []string{"bits 18 and 19 clear"}, tee.FieldDiffers, false
			c.Note = forbiddenPolicy(policyOf(f))
		default:
			c.Note, _ = unpublishedNote(f)
		}
		out = append(out, c)
	}
	return out, ok, nil
}

// policyOf is the guest policy of the snp_policy field.
func policyOf(f tee.Field) uint64 {
	p, _ := strconv.ParseUint(strings.TrimPrefix(f.Got, "0x"), 16, 64)
	return p
}

// unvouched lists the fields no entry publishes whose values a verifier
// would question.
func unvouched(fields []tee.Field) []string {
	var out []string
	for _, f := range fields {
		if n, unusual := unpublishedNote(f); unusual && f.Name != "snp_report_data" {
			out = append(out, fmt.Sprintf("%s = %s: %s", f.Name, f.Got, n))
		}
	}
	return out
}

// Check implements tee.Checker.
func (TEE) Check(ctx context.Context, ev tee.Evidence, in tee.CheckInput) (*tee.CheckResult, error) {
	e, ok := ev.(*Evidence)
	if !ok {
		return nil, fmt.Errorf("not SEV-SNP evidence: %T", ev)
	}
	if len(in.Entries) == 0 {
		return nil, errors.New("the reference values hold no SEV-SNP (snp) entries to compare the report with")
	}
	fields := evidenceFields(e.Report)
	res := &tee.CheckResult{Evidence: fields}
	if in.Signature != nil {
		sig, err := checkSignature(ctx, e, in.Signature)
		res.Signature = sig
		if err != nil {
			res.Reasons = append(res.Reasons, "the report's signature does not verify: "+err.Error())
			res.Explained = true
			return res, nil
		}
		res.SignatureChecked = true
	}
	got := fields[0].Got
	// The fields no entry publishes (the measure block models none of
	// VMPL, host data or an ID block) that a verifier would question.
	var unpub []tee.Field
	for _, f := range fields {
		if !slices.ContainsFunc(in.Entries, func(en tee.CheckEntry) bool { w, _ := published(en, f.Name); return w != "" }) {
			unpub = append(unpub, f)
		}
	}
	res.Unvouched = unvouched(unpub)
	var closest []tee.Field
	for _, en := range in.Entries {
		if en.Values["launch_measurement"] != got {
			continue
		}
		cmp, match, err := compare(fields, en)
		if err != nil {
			return nil, err
		}
		if match {
			res.Match, res.Fields = true, cmp
			res.SetEntry(en)
			return res, nil
		}
		if closest == nil {
			closest = cmp
			res.SetEntry(en)
		}
	}
	if closest != nil {
		// The launch measurement is published; another field is not.
		res.Fields = closest
		res.Explained = true
		for _, f := range closest {
			if f.Status == tee.FieldDiffers {
				res.Reasons = append(res.Reasons, fieldReason(f))
			}
		}
		return res, nil
	}
	var all []string
	for _, en := range in.Entries {
		if m := en.Values["launch_measurement"]; m != "" && !slices.Contains(all, m) {
			all = append(all, m)
		}
	}
	res.Fields = []tee.Field{{Name: fields[0].Name, Got: got, Want: all, Status: tee.FieldDiffers}}
	reasons, diffs, explained, err := explainMeasurement(ctx, e.Report.GetMeasurement(), in.Entries, in.Cmdline)
	if err != nil {
		return nil, err
	}
	res.Differences = diffs
	if f := forbiddenPolicy(e.Report.GetPolicy()); f != "" {
		reasons = append(reasons, fmt.Sprintf("the guest policy is %s: %s", fields[1].Got, f))
	}
	res.Reasons, res.Explained = reasons, explained
	return res, nil
}

// fieldReason explains one differing field.
func fieldReason(f tee.Field) string {
	want := strings.Join(f.Want, " or ")
	switch f.Name {
	case "snp_policy":
		if f.Note != "" {
			return fmt.Sprintf("the guest policy is %s: %s", f.Got, f.Note)
		}
		g, _ := strconv.ParseUint(strings.TrimPrefix(f.Got, "0x"), 16, 64)
		w, _ := strconv.ParseUint(strings.TrimPrefix(f.Want[0], "0x"), 16, 64)
		return fmt.Sprintf("the guest policy is %s, the release publishes %s: %s", f.Got, want, policyDiff(g, w))
	case "snp_host_data":
		return fmt.Sprintf("the host data (QEMU's sev-snp-guest host-data, set by the host) is %s, the release publishes %s", f.Got, want)
	case "snp_id_key_digest", "snp_author_key_digest":
		return fmt.Sprintf("%s is %s, the release publishes %s: the VM was launched with another ID block (or none)", f.Name, f.Got, want)
	}
	return fmt.Sprintf("%s is %s, the release publishes %s", f.Name, f.Got, want)
}

// policyBits names the SNP guest policy bits (SEV-SNP firmware ABI).
var policyBits = []struct {
	bit  uint
	name string
}{{16, "SMT allowed"}, {17, "reserved, must be one"}, {18, "migration agent allowed"}, {19, "debugging allowed"},
	{20, "single socket only"}, {21, "CXL allowed"}, {22, "AES-256-XTS required"}, {23, "RAPL disabled"},
	{24, "ciphertext hiding required"}, {25, "page swap disabled"}}

// policyDiff says which bits of two guest policies differ.
func policyDiff(got, want uint64) string {
	var d []string
	if got&0xffff != want&0xffff {
		d = append(d, fmt.Sprintf("minimum ABI %d.%d instead of %d.%d", (got>>8)&0xff, got&0xff, (want>>8)&0xff, want&0xff))
	}
	for _, b := range policyBits {
		if (got>>b.bit)&1 != (want>>b.bit)&1 {
			state := "clear"
			if (got>>b.bit)&1 != 0 {
				state = "set"
			}
			d = append(d, fmt.Sprintf("bit %d (%s) is %s", b.bit, b.name, state))
		}
	}
	if len(d) == 0 {
		return "other bits differ"
	}
	return strings.Join(d, "; ")
}

// launch is one published launch's parameters, as the search sees them.
type launch struct {
	vcpus int
	cpu   string
	vmm   string
	gf    uint64
	boot  string // the key of its direct-boot blobs, "" for none
}

// explainMeasurement searches the neighbourhood of the published entries
// for the launch measurement and says what differs.
func explainMeasurement(ctx context.Context, want []byte, entries []tee.CheckEntry, cmdline *string) ([]string, []tee.Difference, bool, error) {
	type fwSet struct {
		sha     string
		entries []tee.CheckEntry
	}
	var fws []*fwSet
	for _, e := range entries {
		sha, _ := e.Params["firmware_sha256"].(string)
		i := slices.IndexFunc(fws, func(f *fwSet) bool { return f.sha == sha })
		if i < 0 {
			fws = append(fws, &fwSet{sha: sha})
			i = len(fws) - 1
		}
		fws[i].entries = append(fws[i].entries, e)
	}
	var reasons, missing []string
	var diffs []tee.Difference
	searched, triedCmdline, cmdlineHit, cmdlinePublished := false, false, false, false
	for _, fw := range fws {
		if fw.sha == "" {
			missing = append(missing, "entries without firmware_sha256 (the firmware they were measured with is not recorded)")
			continue
		}
		img, err := fw.entries[0].Artifact(fw.sha)
		if err != nil {
			missing = append(missing, fmt.Sprintf("firmware %s: %v", fw.sha, err))
			continue
		}
		pr, err := model.Prepare(img)
		if err != nil {
			return nil, nil, false, fmt.Errorf("firmware %s: %w", fw.sha, err)
		}
		pub, boots, bootNames, gfs, err := publishedLaunches(fw.entries)
		if err != nil {
			return nil, nil, false, err
		}
		// The guest's own command line, when given, with each published
		// kernel and initrd: the digest holds only its hash.
		alt := make([]string, len(boots))
		if cmdline != nil {
			for i, b := range slices.Clone(boots) {
				for _, c := range tee.GuestCmdlines(*cmdline) {
					t := *b.Table
					t.Cmdline = sha256.Sum256(append([]byte(c), 0))
					if t == *b.Table {
						cmdlinePublished = true
						continue
					}
					boots = append(boots, &model.DirectBoot{Table: &t})
					bootNames = append(bootNames, bootNames[i]+" with the given command line")
					alt = append(alt, c)
					triedCmdline = true
				}
			}
		}
		nb := model.DefaultNeighbourhood(append(boots, nil))
		alt = append(alt, "")
		for _, g := range gfs {
			if !slices.Contains(nb.GuestFeatures, g) {
				nb.GuestFeatures = append(nb.GuestFeatures, g)
			}
		}
		found, err := pr.Search(ctx, nb, want)
		if err != nil {
			return nil, nil, false, fmt.Errorf("searching the launches of firmware %s: %w", fw.sha, err)
		}
		searched = true
		for _, f := range found {
			r, d := explainFound(f, pub, append(bootNames, ""), fw.sha, alt[f.Boot] != "")
			if c := alt[f.Boot]; c != "" {
				cmdlineHit = true
				pubCmd := str(fw.entries[0].Params["cmdline"])
				r = fmt.Sprintf("the VM booted with the command line %q; the release's is %q (%s); %s", c, pubCmd, tee.WordDiff(pubCmd, c), r)
				d = append([]tee.Difference{{Parameter: "cmdline", Got: c, Published: []string{pubCmd}}}, d...)
			}
			reasons = append(reasons, r)
			diffs = append(diffs, d...)
		}
	}
	var cmdlineNote string
	if cmdline != nil && !cmdlineHit {
		c := tee.GuestCmdlines(*cmdline)
		switch {
		case cmdlinePublished:
			cmdlineNote = fmt.Sprintf("the --cmdline given, %q, is the published command line", c[len(c)-1])
		case triedCmdline:
			cmdlineNote = fmt.Sprintf("the --cmdline given, %q, gives no launch in the neighbourhood with the published firmware, kernel and initrd (tried as given and without \" initrd=initrd\"): the VM booted with another command line, or another kernel or initrd", c[0])
		}
	}
	if len(reasons) > 0 {
		if cmdlineNote != "" {
			reasons = append(reasons, cmdlineNote)
		}
		return reasons, diffs, true, nil
	}
	var out []string
	if searched {
		out = append(out, fmt.Sprintf("no launch in the neighbourhood of the release gives this measurement (vCPUs 1-512; VMMs %s; CPU types %s; guest features %s; with the published direct-boot blobs and without): the firmware, kernel, initrd or cmdline must differ from the published ones",
			strings.Join(model.VMMNames(), ", "), strings.Join(model.CPUTypes(), ", "), hexList(model.DefaultGuestFeatures)))
	}
	if cmdlineNote != "" {
		out = append(out, cmdlineNote)
	}
	for _, m := range missing {
		out = append(out, "could not search the neighbourhood of "+m+": give the build output with --artifacts DIR (or check the build's manifest.json)")
	}
	out = append(out, publishedBlobs(entries)...)
	return out, nil, false, nil
}

// publishedLaunches reads the launches of entries of one firmware: their
// parameters, the distinct direct-boot hashes tables (and their
// descriptions), and the guest features.
func publishedLaunches(entries []tee.CheckEntry) ([]launch, []*model.DirectBoot, []string, []uint64, error) {
	var out []launch
	var boots []*model.DirectBoot
	var bootKeys []string
	var gfs []uint64
	for _, e := range entries {
		l := launch{cpu: str(e.Params["vcpu_type"]), vmm: str(e.Params["vmm"])}
		if v, ok := e.Params["vcpus"].(float64); ok {
			l.vcpus = int(v)
		} else if v, ok := e.Params["vcpus"].(int); ok {
			l.vcpus = v
		}
		gf, err := tee.ParseUint(str(e.Params["guest_features"]))
		if err != nil {
			gf = 1
		}
		l.gf = gf
		if !slices.Contains(gfs, gf) {
			gfs = append(gfs, gf)
		}
		if k := str(e.Params["kernel_sha256"]); k != "" {
			t, key, err := hashTable(k, str(e.Params["initrd_sha256"]), str(e.Params["cmdline"]))
			if err != nil {
				return nil, nil, nil, nil, fmt.Errorf("entry %s: %w", e.Name, err)
			}
			if !slices.Contains(bootKeys, key) {
				bootKeys = append(bootKeys, key)
				boots = append(boots, &model.DirectBoot{Table: t})
			}
			l.boot = key
		}
		out = append(out, l)
	}
	return out, boots, bootKeys, gfs, nil
}

// hashTable is the SEV hashes table of blobs published by digest.
func hashTable(kernel, initrd, cmdline string) (*model.HashTable, string, error) {
	var t model.HashTable
	k, err := hex.DecodeString(kernel)
	if err != nil || len(k) != sha256.Size {
		return nil, "", fmt.Errorf("kernel_sha256 %q is not a SHA-256 digest", kernel)
	}
	copy(t.Kernel[:], k)
	if initrd == "" {
		t.Initrd = sha256.Sum256(nil)
	} else {
		i, err := hex.DecodeString(initrd)
		if err != nil || len(i) != sha256.Size {
			return nil, "", fmt.Errorf("initrd_sha256 %q is not a SHA-256 digest", initrd)
		}
		copy(t.Initrd[:], i)
	}
	t.Cmdline = sha256.Sum256(append([]byte(cmdline), 0))
	key := fmt.Sprintf("kernel %s, initrd %s, cmdline %q", short(kernel), short(initrd), cmdline)
	return &t, key, nil
}

// explainFound says how a launch the search found differs from the
// published ones.
func explainFound(f model.Found, pub []launch, bootNames []string, fwSHA string, givenCmdline bool) (string, []tee.Difference) {
	var d []tee.Difference
	got := launch{vcpus: f.VCPUs, vmm: f.VMM.String(), gf: f.GuestFeatures, boot: bootNames[f.Boot]}
	var diffs []string
	var vcpus []int
	var cpus, vmms, boots []string
	var gfs []uint64
	for _, l := range pub {
		if !slices.Contains(vcpus, l.vcpus) {
			vcpus = append(vcpus, l.vcpus)
		}
		if l.cpu != "" && !slices.Contains(cpus, l.cpu) {
			cpus = append(cpus, l.cpu)
		}
		if !slices.Contains(vmms, l.vmm) {
			vmms = append(vmms, l.vmm)
		}
		if !slices.Contains(gfs, l.gf) {
			gfs = append(gfs, l.gf)
		}
		if !slices.Contains(boots, l.boot) {
			boots = append(boots, l.boot)
		}
	}
	sort.Ints(vcpus)
	if !slices.Contains(vcpus, got.vcpus) {
		diffs = append(diffs, fmt.Sprintf("this VM ran with %s; the release covers %s", plural(got.vcpus, "vCPU"), intList(vcpus)))
		d = append(d, tee.Difference{Parameter: "vcpus", Got: strconv.Itoa(got.vcpus), Published: intStrings(vcpus)})
	}
	if !slices.ContainsFunc(vmms, func(v string) bool { return strings.EqualFold(v, got.vmm) }) {
		diffs = append(diffs, fmt.Sprintf("its VMSAs are those of the %s VMM; the release covers %s", got.vmm, andList(vmms)))
		d = append(d, tee.Difference{Parameter: "vmm", Got: got.vmm, Published: vmms})
	}
	if f.VMM == model.VMMQEMU && !slices.ContainsFunc(f.CPUTypes, func(c string) bool { return slices.Contains(cpus, c) }) && len(cpus) > 0 {
		diffs = append(diffs, fmt.Sprintf("its vCPU type is %s (CPUID signature %#x); the release covers %s", orList(f.CPUTypes), f.CPUSig, andList(cpus)))
		d = append(d, tee.Difference{Parameter: "vcpu_type", Got: strings.Join(f.CPUTypes, " or "), Published: cpus})
	}
	if !slices.Contains(gfs, got.gf) {
		diffs = append(diffs, fmt.Sprintf("its guest features (SEV_FEATURES) are %#x%s; the release covers %s", got.gf, featureNote(got.gf), hexList(gfs)))
		d = append(d, tee.Difference{Parameter: "guest_features", Got: fmt.Sprintf("%#x", got.gf), Published: strings.Split(hexList(gfs), ", ")})
	}
	if !slices.Contains(boots, got.boot) && !givenCmdline {
		if got.boot == "" {
			diffs = append(diffs, "it was launched without measured direct boot (no -kernel/-initrd/-append in the SEV hashes table, e.g. kernel-hashes=off); the release covers a direct boot of "+andList(boots))
			d = append(d, tee.Difference{Parameter: "direct_boot", Got: "none", Published: boots})
		} else {
			diffs = append(diffs, "it was launched with a direct boot of "+got.boot+"; the release covers "+andList(boots))
			d = append(d, tee.Difference{Parameter: "direct_boot", Got: got.boot, Published: boots})
		}
	}
	what := fmt.Sprintf("%s, %s VMM", plural(got.vcpus, "vCPU"), got.vmm)
	if f.VMM == model.VMMQEMU {
		what += ", vCPU type " + orList(f.CPUTypes)
	}
	what += fmt.Sprintf(", guest features %#x", got.gf)
	if got.boot == "" {
		what += ", no direct boot"
	}
	if len(diffs) == 0 && givenCmdline {
		return fmt.Sprintf("the measurement is that of the published firmware %s with %s", short(fwSHA), what), d
	}
	if len(diffs) == 0 {
		return fmt.Sprintf("the measurement is that of the published firmware %s with %s: each parameter is one the release covers, but not this combination of them", short(fwSHA), what), d
	}
	return strings.Join(diffs, "; ") + fmt.Sprintf(" (the measurement is that of the published firmware %s with %s)", short(fwSHA), what), d
}

// featureNote names the SEV_FEATURES bits beyond SNPActive that hosts set.
func featureNote(gf uint64) string {
	var n []string
	for _, b := range []struct {
		bit  uint64
		name string
	}{{0x20, "DebugSwap"}, {0x200, "SecureTSC"}, {0x8, "RestrictedInjection"}, {0x4, "ReflectVC"}, {0x2, "vTOM"}} {
		if gf&b.bit != 0 {
			n = append(n, b.name)
		}
	}
	if len(n) == 0 {
		return ""
	}
	return " (SNPActive with " + strings.Join(n, ", ") + ", which the host set)"
}

// publishedBlobs lists the digests of the published firmware, kernel,
// initrd and cmdline.
func publishedBlobs(entries []tee.CheckEntry) []string {
	var out []string
	for _, p := range []struct{ key, what string }{{"firmware_sha256", "firmware sha256"}, {"kernel_sha256", "kernel sha256"}, {"initrd_sha256", "initrd sha256"}, {"cmdline", "cmdline"}} {
		var vals []string
		for _, e := range entries {
			if v := str(e.Params[p.key]); v != "" && !slices.Contains(vals, v) {
				vals = append(vals, v)
			}
		}
		if len(vals) == 0 {
			continue
		}
		if p.key == "cmdline" {
			for i, v := range vals {
				vals[i] = strconv.Quote(v)
			}
		}
		out = append(out, "published "+p.what+": "+strings.Join(vals, ", "))
	}
	return out
}

func str(v any) string { s, _ := v.(string); return s }

func short(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func intList(n []int) string { return andList(intStrings(n)) }

func intStrings(n []int) []string {
	s := make([]string, len(n))
	for i, v := range n {
		s[i] = strconv.Itoa(v)
	}
	return s
}

func hexList(n []uint64) string {
	s := make([]string, len(n))
	for i, v := range n {
		s[i] = fmt.Sprintf("%#x", v)
	}
	return andList(s)
}

func andList(s []string) string { return joinList(s, "and") }

func orList(s []string) string { return joinList(s, "or") }

func joinList(s []string, conj string) string {
	switch len(s) {
	case 0:
		return "none"
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " " + conj + " " + s[len(s)-1]
}
