package sev

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/verify/testdata"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/measure/ovmf"
	model "github.com/cocobuild/cocobuild/measure/sev"
	"github.com/cocobuild/cocobuild/recipes"
	"github.com/cocobuild/cocobuild/tee"
)

// checkInputs are the inputs of the built evidence: the full AmdSev
// firmware (Debian's OVMF.amdsev.fd), a tiny kernel and initrd.
type checkInputs struct {
	fw, kernel, initrd []byte
	cmdline            string
}

func loadCheckInputs(t *testing.T) checkInputs {
	t.Helper()
	return checkInputs{
		fw:      testenv.ReadVector(t, "inputs/debian-sid_OVMF.amdsev.fd"),
		kernel:  testenv.ReadVector(t, "inputs/tiny-kernel.bin"),
		initrd:  testenv.ReadVector(t, "inputs/tiny-initrd.cpio"),
		cmdline: "console=ttyS0 panic=-1 root=/dev/dm-0",
	}
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// publishedEntries are the entries a measure block with vcpus [1, 2, 4] and
// vcpu_types [EPYC-Genoa, EPYC-Milan] publishes, made by the measure step's
// own code and read back through JSON as a manifest or release holds them.
func publishedEntries(t *testing.T, in checkInputs) []tee.CheckEntry {
	t.Helper()
	n := &node{Block: &tee.Block{Name: "snp", TEE: "snp", VCPUs: []int{1, 2, 4},
		Kernel: &recipes.Artifact{SHA256: sha(in.kernel)}, Initrd: &recipes.Artifact{SHA256: sha(in.initrd)}, Cmdline: in.cmdline},
		vcpuTypes: []string{"EPYC-Genoa", "EPYC-Milan"}, vmms: []string{"QEMU"}, guestFeatures: []string{"0x1"}, sevesFeatures: []string{"0x0"}, policy: "0x30000"}
	info, ierr := ovmf.Inspect(in.fw)
	read := &tee.Read{Firmware: in.fw, Kernel: in.kernel, Initrd: in.initrd, FirmwareInfo: info, FirmwareErr: ierr,
		Common: map[string]any{"firmware_sha256": sha(in.fw), "kernel_sha256": sha(in.kernel), "initrd_sha256": sha(in.initrd), "cmdline": in.cmdline}}
	entries, err := n.measure(context.Background(), read)
	if err != nil {
		t.Fatal(err)
	}
	var out []tee.CheckEntry
	for _, e := range entries {
		e.Params["policy"] = n.policy // what Finish adds
		b, err := json.Marshal(e.Measurement)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Name   string            `json:"name"`
			Params map[string]any    `json:"params"`
			Values map[string]string `json:"values"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		fwSHA := sha(in.fw)
		out = append(out, tee.CheckEntry{Name: "snp/" + m.Name, Params: m.Params, Values: m.Values,
			Artifact: func(s string) ([]byte, error) {
				if s == fwSHA {
					return in.fw, nil
				}
				return nil, errors.New("not in the build output")
			}})
	}
	if len(out) != 6 {
		t.Fatalf("the measure step made %d entries, want 6", len(out))
	}
	return out
}

// report builds the raw bytes of an (unsigned) SNP report with go-sev-guest's
// abi, as a guest would get it.
func report(t *testing.T, measurement []byte, policy uint64, edit func(*spb.Report)) []byte {
	t.Helper()
	r := &spb.Report{Version: 2, Policy: policy, FamilyId: make([]byte, 16), ImageId: make([]byte, 16), Vmpl: 0,
		SignatureAlgo: 1, ReportData: make([]byte, 64), Measurement: measurement, HostData: make([]byte, 32),
		IdKeyDigest: make([]byte, 48), AuthorKeyDigest: make([]byte, 48), ReportId: make([]byte, 32), ReportIdMa: make([]byte, 32),
		ChipId: make([]byte, 64), Signature: make([]byte, 512)}
	if edit != nil {
		edit(r)
	}
	b, err := abi.ReportToAbiBytes(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func measureSNP(t *testing.T, fw []byte, p model.Params) []byte {
	t.Helper()
	p.Mode, p.Firmware = model.ModeSNP, fw
	r, err := model.Measure(p)
	if err != nil {
		t.Fatal(err)
	}
	return r.Digest
}

func check(t *testing.T, raw []byte, entries []tee.CheckEntry, cmdline *string) *tee.CheckResult {
	t.Helper()
	ev, ok, err := TEE{}.ParseEvidence(raw)
	if err != nil || !ok {
		t.Fatalf("ParseEvidence: ok %v, err %v; want an SNP report", ok, err)
	}
	res, err := TEE{}.Check(context.Background(), ev, tee.CheckInput{Entries: entries, Cmdline: cmdline})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestCheckSNP: a report whose measurement is a published entry matches it;
// one launched with other parameters is explained by the parameter that
// differs; one whose firmware, kernel, initrd or cmdline differ is not
// explained, and the published digests are listed.
func TestCheckSNP(t *testing.T) {
	in := loadCheckInputs(t)
	entries := publishedEntries(t, in)
	boot := &model.DirectBoot{Kernel: in.kernel, Initrd: in.initrd, Cmdline: in.cmdline}
	milan, v4 := "EPYC-Milan", "EPYC-v4"
	other := testenv.ReadVector(t, "inputs/debian-sid_OVMF.fd")
	for _, c := range []struct {
		name      string
		p         model.Params
		fw        []byte
		policy    uint64
		cmdline   string // the guest's, given to check
		match     string
		explained bool
		reasons   []string // each must appear in one reason
	}{
		{name: "published", p: model.Params{VCPUs: 2, VCPUType: milan, GuestFeatures: 1, DirectBoot: boot}, match: "snp/vcpus=2,cpu=EPYC-Milan,vmm=QEMU,gf=0x1"},
		{name: "vcpus", p: model.Params{VCPUs: 3, VCPUType: milan, GuestFeatures: 1, DirectBoot: boot}, explained: true,
			reasons: []string{"this VM ran with 3 vCPUs; the release covers 1, 2 and 4 (the measurement is that of the published firmware"}},
		{name: "vcpus 512", p: model.Params{VCPUs: 512, VCPUType: milan, GuestFeatures: 1, DirectBoot: boot}, explained: true,
			reasons: []string{"this VM ran with 512 vCPUs; the release covers 1, 2 and 4"}},
		{name: "cpu type", p: model.Params{VCPUs: 2, VCPUType: v4, GuestFeatures: 1, DirectBoot: boot}, explained: true,
			reasons: []string{"its vCPU type is EPYC, EPYC-v1, EPYC-v2, EPYC-IBPB, EPYC-v3 or EPYC-v4 (CPUID signature 0x800f12); the release covers EPYC-Genoa and EPYC-Milan"}},
		{name: "vmm", p: model.Params{VCPUs: 4, VMM: model.VMMEC2, GuestFeatures: 1, DirectBoot: boot}, explained: true,
			reasons: []string{"its VMSAs are those of the ec2 VMM; the release covers QEMU"}},
		{name: "vmm gce", p: model.Params{VCPUs: 2, VMM: model.VMMGCE, GuestFeatures: 1, DirectBoot: boot}, explained: true,
			reasons: []string{"its VMSAs are those of the gce VMM; the release covers QEMU (the measurement is that of the published firmware " + sha(in.fw)[:16] + "… with 2 vCPUs, gce VMM"}},
		{name: "guest features", p: model.Params{VCPUs: 1, VCPUType: milan, GuestFeatures: 0x21, DirectBoot: boot}, explained: true,
			reasons: []string{"its guest features (SEV_FEATURES) are 0x21 (SNPActive with DebugSwap, which the host set); the release covers 0x1"}},
		{name: "no direct boot", p: model.Params{VCPUs: 1, VCPUType: milan, GuestFeatures: 1}, explained: true,
			reasons: []string{"it was launched without measured direct boot"}},
		{name: "cmdline", p: model.Params{VCPUs: 1, VCPUType: milan, GuestFeatures: 1, DirectBoot: &model.DirectBoot{Kernel: in.kernel, Initrd: in.initrd, Cmdline: in.cmdline + " debug"}},
			reasons: []string{"must differ from the published ones", `published cmdline: "` + in.cmdline + `"`, "published kernel sha256: " + sha(in.kernel), "published initrd sha256: " + sha(in.initrd), "published firmware sha256: " + sha(in.fw)}},
		{name: "cmdline given", cmdline: in.cmdline + " debug", p: model.Params{VCPUs: 4, VCPUType: milan, GuestFeatures: 1, DirectBoot: &model.DirectBoot{Kernel: in.kernel, Initrd: in.initrd, Cmdline: in.cmdline + " debug"}}, explained: true,
			reasons: []string{`the VM booted with the command line "` + in.cmdline + ` debug"; the release's is "` + in.cmdline + `" (+debug); the measurement is that of the published firmware`}},
		{name: "cmdline given as /proc/cmdline", cmdline: in.cmdline + " debug initrd=initrd\n", p: model.Params{VCPUs: 4, VCPUType: milan, GuestFeatures: 1, DirectBoot: &model.DirectBoot{Kernel: in.kernel, Initrd: in.initrd, Cmdline: in.cmdline + " debug"}}, explained: true,
			reasons: []string{`the VM booted with the command line "` + in.cmdline + ` debug"; the release's is "` + in.cmdline + `" (+debug); the measurement is that of the published firmware`}},
		{name: "cmdline given, another", cmdline: in.cmdline + " quiet initrd=initrd\n", p: model.Params{VCPUs: 1, VCPUType: milan, GuestFeatures: 1, DirectBoot: &model.DirectBoot{Kernel: in.kernel, Initrd: in.initrd, Cmdline: in.cmdline + " debug"}},
			reasons: []string{"must differ from the published ones", `the --cmdline given, "` + in.cmdline + ` quiet initrd=initrd", gives no launch in the neighbourhood`}},
		{name: "cmdline given, published", cmdline: in.cmdline + " initrd=initrd\n", p: model.Params{VCPUs: 3, VCPUType: milan, GuestFeatures: 1, DirectBoot: boot}, explained: true,
			reasons: []string{"this VM ran with 3 vCPUs", `the --cmdline given, "` + in.cmdline + `", is the published command line`}},
		{name: "kernel", p: model.Params{VCPUs: 1, VCPUType: milan, GuestFeatures: 1, DirectBoot: &model.DirectBoot{Kernel: append([]byte{1}, in.kernel...), Initrd: in.initrd, Cmdline: in.cmdline}},
			reasons: []string{"the firmware, kernel, initrd or cmdline must differ"}},
		{name: "initrd", p: model.Params{VCPUs: 1, VCPUType: milan, GuestFeatures: 1, DirectBoot: &model.DirectBoot{Kernel: in.kernel, Cmdline: in.cmdline}},
			reasons: []string{"the firmware, kernel, initrd or cmdline must differ"}},
		{name: "firmware", fw: other, p: model.Params{VCPUs: 1, VCPUType: milan, GuestFeatures: 1, DirectBoot: boot},
			reasons: []string{"the firmware, kernel, initrd or cmdline must differ"}},
		{name: "policy", p: model.Params{VCPUs: 2, VCPUType: milan, GuestFeatures: 1, DirectBoot: boot}, policy: 0xb0000, explained: true,
			reasons: []string{"the guest policy is 0xb0000, the release publishes 0x30000: bit 19 (debugging allowed) is set"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fw := c.fw
			if fw == nil {
				fw = in.fw
			}
			pol := c.policy
			if pol == 0 {
				pol = 0x30000
			}
			var cmdline *string
			if c.cmdline != "" {
				cmdline = &c.cmdline
			}
			res := check(t, report(t, measureSNP(t, fw, c.p), pol, nil), entries, cmdline)
			if got, want := res.Match, c.match != ""; got != want {
				t.Fatalf("match = %v, want %v; reasons %q", got, want, res.Reasons)
			}
			if c.match != "" && res.Entry != c.match {
				t.Errorf("matched entry %q, want %q", res.Entry, c.match)
			}
			if res.Explained != c.explained {
				t.Errorf("explained = %v, want %v; reasons %q", res.Explained, c.explained, res.Reasons)
			}
			all := strings.Join(res.Reasons, "\n")
			for _, r := range c.reasons {
				if !strings.Contains(all, r) {
					t.Errorf("reasons %q: want one with %q", res.Reasons, r)
				}
			}
			if c.match != "" {
				for _, f := range res.Fields {
					if f.Status == tee.FieldDiffers {
						t.Errorf("field %s differs (%s, want %q) in a match", f.Name, f.Got, f.Want)
					}
				}
			}
		})
	}
}

// TestCheckSNPUnpublished: with entries that publish no policy, a guest
// policy with debugging (bit 19) or a migration agent (bit 18) allowed is
// still a mismatch, as Trustee's default policy refuses them; a VMPL other
// than 0, host data and an ID-key digest, which no entry publishes, match
// but are listed as what check cannot vouch for, with what a verifier
// expects.
func TestCheckSNPUnpublished(t *testing.T) {
	in := loadCheckInputs(t)
	entries := publishedEntries(t, in)
	for _, e := range entries {
		delete(e.Params, "policy")
	}
	m := measureSNP(t, in.fw, model.Params{VCPUs: 2, VCPUType: "EPYC-Milan", GuestFeatures: 1, DirectBoot: &model.DirectBoot{Kernel: in.kernel, Initrd: in.initrd, Cmdline: in.cmdline}})
	other := measureSNP(t, in.fw, model.Params{VCPUs: 3, VCPUType: "EPYC-Milan", GuestFeatures: 1, DirectBoot: &model.DirectBoot{Kernel: in.kernel, Initrd: in.initrd, Cmdline: in.cmdline}})
	for _, c := range []struct {
		name      string
		raw       []byte
		match     bool
		reasons   []string
		unvouched []string
	}{
		{"plain", report(t, m, 0x30000, nil), true, nil, nil},
		{"debug", report(t, m, 0xb0000, nil), false, []string{"the guest policy is 0xb0000: bit 19 (debugging allowed) is set"}, nil},
		{"debug, other measurement", report(t, other, 0xb0000, nil), false, []string{"this VM ran with 3 vCPUs", "the guest policy is 0xb0000: bit 19 (debugging allowed) is set"}, nil},
		{"migration agent", report(t, m, 0x70000, nil), false, []string{"bit 18 (migration agent allowed) is set"}, nil},
		{"vmpl 3", report(t, m, 0x30000, func(r *spb.Report) { r.Vmpl = 3 }), true, nil,
			[]string{"snp_vmpl = 3: not published: check cannot vouch for it", "requests its reports at VMPL 0", "Trustee's default policy does not check the VMPL"}},
		{"host data", report(t, m, 0x30000, func(r *spb.Report) { r.HostData[0] = 1 }), true, nil, []string{"snp_host_data = 01", "check cannot vouch for it"}},
		{"id key", report(t, m, 0x30000, func(r *spb.Report) { r.IdKeyDigest[5] = 7 }), true, nil, []string{"snp_id_key_digest = 0000000000", "launched with an ID block"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := check(t, c.raw, entries, nil)
			if res.Match != c.match {
				t.Fatalf("match = %v, want %v; reasons %q", res.Match, c.match, res.Reasons)
			}
			all := strings.Join(res.Reasons, "\n")
			for _, r := range c.reasons {
				if !strings.Contains(all, r) {
					t.Errorf("reasons %q: want one with %q", res.Reasons, r)
				}
			}
			uv := strings.Join(res.Unvouched, "\n")
			for _, u := range c.unvouched {
				if !strings.Contains(uv, u) {
					t.Errorf("unvouched %q: want one with %q", res.Unvouched, u)
				}
			}
			if len(c.unvouched) == 0 && len(res.Unvouched) > 0 {
				t.Errorf("unvouched %q, want none", res.Unvouched)
			}
		})
	}
}

// TestCheckSNPFirmwareNotAtHand: without the firmware bytes (a release
// without its build output) the search cannot run, and check says what to
// give.
func TestCheckSNPFirmwareNotAtHand(t *testing.T) {
	in := loadCheckInputs(t)
	entries := publishedEntries(t, in)
	for i := range entries {
		entries[i].Artifact = func(string) ([]byte, error) {
			return nil, errors.New("the release was checked without its build output")
		}
	}
	res := check(t, report(t, measureSNP(t, in.fw, model.Params{VCPUs: 3, VCPUType: "EPYC-Milan", GuestFeatures: 1}), 0x30000, nil), entries, nil)
	if res.Match || res.Explained {
		t.Fatalf("match %v, explained %v: want neither", res.Match, res.Explained)
	}
	if all := strings.Join(res.Reasons, "\n"); !strings.Contains(all, "could not search the neighbourhood of firmware "+sha(in.fw)) || !strings.Contains(all, "--artifacts DIR") {
		t.Errorf("reasons %q: want that the firmware is missing and --artifacts", res.Reasons)
	}
}

// TestCheckSNPRealReport: the hardware report go-sev-guest ships (Milan,
// no ID block) parses, and its signature verifies offline with its VCEK
// and the Milan ASK/ARK as files; a changed byte or another VCEK fails.
func TestCheckSNPRealReport(t *testing.T) {
	ev, ok, err := TEE{}.ParseEvidence(testdata.AttestationBytes)
	if err != nil || !ok {
		t.Fatalf("ParseEvidence: ok %v, err %v", ok, err)
	}
	e := ev.(*Evidence)
	if got, want := len(e.Report.GetMeasurement()), 48; got != want {
		t.Fatalf("measurement of %d bytes, want %d", got, want)
	}
	fields := evidenceFields(e.Report)
	if fields[0].Name != "snp_launch_measurement" || fields[0].Got != hex.EncodeToString(testdata.AttestationBytes[0x90:0xc0]) {
		t.Errorf("measurement field %+v: want the report's bytes 0x90..0xc0", fields[0])
	}
	files := map[string][]byte{"vcek.der": testdata.VcekBytes, "cert_chain.pem": trust.AskArkMilanVcekBytes}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	notes, err := checkSignature(context.Background(), e, &tee.SignatureCheck{Files: files, Now: now})
	if err != nil {
		t.Fatalf("signature of the real report: %v (notes %q)", err, notes)
	}
	if got := strings.Join(notes, "\n"); !strings.Contains(got, "VCEK certificate") || !strings.Contains(got, "ASK certificate") || !strings.Contains(got, "ARK certificate") {
		t.Errorf("notes %q: want the VCEK, ASK and ARK named", notes)
	}
	bad := append([]byte(nil), testdata.AttestationBytes...)
	bad[0x90] ^= 1 // the measurement
	evBad, _, err := TEE{}.ParseEvidence(bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checkSignature(context.Background(), evBad.(*Evidence), &tee.SignatureCheck{Files: files, Now: now}); err == nil {
		t.Error("a report with a changed measurement verified; want a signature error")
	}
	if _, err := checkSignature(context.Background(), e, &tee.SignatureCheck{Files: map[string][]byte{}, Now: now}); err == nil || !strings.Contains(err.Error(), "--online") {
		t.Errorf("without a VCEK offline: err %v, want one that names --cert and --online", err)
	}
}

// TestParseEvidenceSNP: what is and is not an SNP report.
func TestParseEvidenceSNP(t *testing.T) {
	for _, c := range []struct {
		name   string
		b      []byte
		ok     bool
		hasErr bool
	}{
		{"real report", testdata.AttestationBytes, true, false},
		{"short", testdata.AttestationBytes[:100], false, false},
		{"tdx quote header", append([]byte{4, 0, 2, 0, 0x81, 0, 0, 0}, make([]byte, 2000)...), false, false},
		{"version 1", append([]byte{1, 0, 0, 0}, make([]byte, abi.ReportSize-4)...), false, false},
		{"bad reserved bytes", func() []byte { b := append([]byte(nil), testdata.AttestationBytes...); b[0x4c] = 0xff; return b }(), true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, ok, err := TEE{}.ParseEvidence(c.b)
			if ok != c.ok || (err != nil) != c.hasErr {
				t.Errorf("ParseEvidence: ok %v, err %v; want ok %v, error %v", ok, err, c.ok, c.hasErr)
			}
		})
	}
}

// FuzzParseEvidence: no input makes the SNP parser panic, and what parses
// re-encodes to the same report bytes.
func FuzzParseEvidence(f *testing.F) {
	f.Add(testdata.AttestationBytes)
	f.Add(append(append([]byte(nil), testdata.AttestationBytes...), make([]byte, 64)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, ok, err := TEE{}.ParseEvidence(b)
		if !ok || err != nil {
			return
		}
		e := ev.(*Evidence)
		raw, err := abi.ReportToAbiBytes(e.Report)
		if err != nil {
			t.Fatalf("a parsed report does not re-encode: %v", err)
		}
		if len(raw) != abi.ReportSize {
			t.Fatalf("re-encoded report of %d bytes", len(raw))
		}
	})
}

// TestCheckSNPPublishedFields: the fields a release may publish beside the
// measurement and policy (host data, family and image IDs, the ID-key and
// author-key digests, the guest SVN, the VMPL; entry params named as the
// RVPS names less "snp_") are compared when an entry carries them: equal,
// the report matches; one that differs is named with both values.
func TestCheckSNPPublishedFields(t *testing.T) {
	in := loadCheckInputs(t)
	m := measureSNP(t, in.fw, model.Params{VCPUs: 2, VCPUType: "EPYC-Milan", GuestFeatures: 1, DirectBoot: &model.DirectBoot{Kernel: in.kernel, Initrd: in.initrd, Cmdline: in.cmdline}})
	hostData := strings.Repeat("ab", 32)
	published := map[string]any{"host_data": "0x" + strings.ToUpper(hostData), "family_id": strings.Repeat("01", 16), "image_id": strings.Repeat("02", 16),
		"id_key_digest": strings.Repeat("03", 48), "author_key_digest": strings.Repeat("04", 48), "guest_svn": float64(7), "vmpl": float64(0)}
	entries := publishedEntries(t, in)
	for _, e := range entries {
		for k, v := range published {
			e.Params[k] = v
		}
	}
	launched := func(r *spb.Report) {
		r.HostData, r.FamilyId, r.ImageId = bytes.Repeat([]byte{0xab}, 32), bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 16)
		r.IdKeyDigest, r.AuthorKeyDigest, r.GuestSvn = bytes.Repeat([]byte{3}, 48), bytes.Repeat([]byte{4}, 48), 7
	}
	for _, c := range []struct {
		name   string
		edit   func(*spb.Report)
		field  string // the field that differs, "" for a match
		reason string
	}{
		{"as published", nil, "", ""},
		{"host data", func(r *spb.Report) { r.HostData[31] = 0 }, "snp_host_data",
			"the host data (QEMU's sev-snp-guest host-data, set by the host) is " + hostData[:62] + "00, the release publishes " + hostData},
		{"family id", func(r *spb.Report) { r.FamilyId[0] = 9 }, "snp_family_id", "snp_family_id is 09" + strings.Repeat("01", 15) + ", the release publishes " + strings.Repeat("01", 16)},
		{"image id", func(r *spb.Report) { r.ImageId[0] = 9 }, "snp_image_id", "snp_image_id is 09"},
		{"id key", func(r *spb.Report) { r.IdKeyDigest[0] = 9 }, "snp_id_key_digest", "snp_id_key_digest is 09" + strings.Repeat("03", 47) + ", the release publishes " + strings.Repeat("03", 48) + ": the VM was launched with another ID block (or none)"},
		{"author key", func(r *spb.Report) { r.AuthorKeyDigest[0] = 9 }, "snp_author_key_digest", "snp_author_key_digest is 09"},
		{"guest svn", func(r *spb.Report) { r.GuestSvn = 6 }, "snp_guest_svn", "snp_guest_svn is 6, the release publishes 7"},
		{"vmpl", func(r *spb.Report) { r.Vmpl = 1 }, "snp_vmpl", "snp_vmpl is 1, the release publishes 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := check(t, report(t, m, 0x30000, func(r *spb.Report) {
				launched(r)
				if c.edit != nil {
					c.edit(r)
				}
			}), entries, nil)
			if res.Match != (c.field == "") {
				t.Fatalf("match = %v, want %v; reasons %q", res.Match, c.field == "", res.Reasons)
			}
			for _, f := range res.Fields {
				if _, pub := published[strings.TrimPrefix(f.Name, "snp_")]; pub && f.Status == tee.FieldNotPublished {
					t.Errorf("field %s is not compared, though the entry publishes it", f.Name)
				}
				if want := map[bool]string{true: tee.FieldDiffers, false: tee.FieldMatch}[f.Name == c.field]; f.Status != tee.FieldNotPublished && f.Status != want {
					t.Errorf("field %s: %s, want %s", f.Name, f.Status, want)
				}
			}
			if c.field != "" && !slices.ContainsFunc(res.Reasons, func(r string) bool { return strings.Contains(r, c.reason) }) {
				t.Errorf("reasons %q: want one with %q", res.Reasons, c.reason)
			}
			if len(res.Unvouched) > 0 {
				t.Errorf("unvouched %q: want none, every field is published", res.Unvouched)
			}
		})
	}
}
