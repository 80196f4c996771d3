package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	sevtestdata "github.com/google/go-sev-guest/verify/testdata"
	tdxabi "github.com/google/go-tdx-guest/abi"
	tdxpb "github.com/google/go-tdx-guest/proto/tdx"
	tdxtest "github.com/google/go-tdx-guest/testing"
	tdxtestdata "github.com/google/go-tdx-guest/testing/testdata"

	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/manifest"
	sevmodel "github.com/cocobuild/cocobuild/measure/sev"
	tdxmodel "github.com/cocobuild/cocobuild/measure/tdx"
	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/publish/feed"
	"github.com/cocobuild/cocobuild/publish/sign"
)

// snpCheckBuild is a build output OUT whose manifest.json holds SNP
// measurements of Debian's OVMF.amdsev.fd with a tiny kernel and initrd
// for 1, 2 and 4 vCPUs of EPYC-Genoa, the firmware beside it as the
// measure step leaves it, and its release, signed with a new key, in
// OUT/publish/sample.
type snpCheckBuild struct {
	out, release, pub  string
	fw, kernel, initrd []byte
	cmdline            string
}

func newSNPCheckBuild(t *testing.T) *snpCheckBuild {
	t.Helper()
	b := &snpCheckBuild{out: t.TempDir(), fw: testenv.ReadVector(t, "inputs/debian-sid_OVMF.amdsev.fd"),
		kernel: testenv.ReadVector(t, "inputs/tiny-kernel.bin"), initrd: testenv.ReadVector(t, "inputs/tiny-initrd.cpio"),
		cmdline: "console=ttyS0 panic=-1"}
	fwPath := "measure/snp/firmware"
	if err := os.MkdirAll(filepath.Join(b.out, "measure", "snp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.out, filepath.FromSlash(fwPath)), b.fw, 0o644); err != nil {
		t.Fatal(err)
	}
	m := &manifest.Manifest{Cocobuild: "0.1.0-test", Recipe: manifest.Recipe{Name: "sample", SHA256: hexSHA([]byte("recipe"))}, Epoch: 1700000000,
		Artifacts: []manifest.Artifact{{Name: "measure.snp/firmware", Kind: "firmware", Path: fwPath, SHA256: hexSHA(b.fw), Size: int64(len(b.fw))}}}
	for _, n := range []int{1, 2, 4} {
		m.Measurements = append(m.Measurements, manifest.Measurement{TEE: "snp", Name: fmt.Sprintf("snp/vcpus=%d,cpu=EPYC-Genoa,vmm=QEMU,gf=0x1", n),
			Params: map[string]any{"vcpus": float64(n), "vcpu_type": "EPYC-Genoa", "vmm": "QEMU", "guest_features": "0x1", "policy": "0x30000", "mode": "snp",
				"firmware_sha256": hexSHA(b.fw), "kernel_sha256": hexSHA(b.kernel), "initrd_sha256": hexSHA(b.initrd), "cmdline": b.cmdline,
				"covers": map[string]any{"firmware": true, "kernel": true, "initrd": true, "cmdline": true}},
			Values: map[string]any{"launch_measurement": hex.EncodeToString(b.measure(t, n, "EPYC-Genoa", b.cmdline))}})
	}
	enc, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.out, "manifest.json"), enc, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := publish.NewRelease(m, publish.Options{TEEs: testTEEs, Name: "sample", Version: "1.0.0", Expires: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := sign.Generate(sign.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := publish.Sign(t.Context(), r, s, publish.AllFormats, testTEEs)
	if err != nil {
		t.Fatal(err)
	}
	b.release = filepath.Join(b.out, "publish", "sample")
	if err := os.MkdirAll(b.release, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		if err := os.WriteFile(filepath.Join(b.release, d.Name), d.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b.pub = filepath.Join(b.out, "publisher.pub")
	if err := os.WriteFile(b.pub, s.Public().PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *snpCheckBuild) measure(t *testing.T, vcpus int, cpu, cmdline string) []byte {
	t.Helper()
	r, err := sevmodel.Measure(sevmodel.Params{Mode: sevmodel.ModeSNP, Firmware: b.fw, VCPUs: vcpus, VCPUType: cpu, GuestFeatures: 1,
		DirectBoot: &sevmodel.DirectBoot{Kernel: b.kernel, Initrd: b.initrd, Cmdline: cmdline}})
	if err != nil {
		t.Fatal(err)
	}
	return r.Digest
}

// report writes an unsigned SNP report with this measurement, built with
// go-sev-guest's abi, and returns its path.
func (b *snpCheckBuild) report(t *testing.T, measurement []byte) string {
	t.Helper()
	r := &spb.Report{Version: 2, Policy: 0x30000, FamilyId: make([]byte, 16), ImageId: make([]byte, 16), SignatureAlgo: 1,
		ReportData: make([]byte, 64), Measurement: measurement, HostData: make([]byte, 32), IdKeyDigest: make([]byte, 48),
		AuthorKeyDigest: make([]byte, 48), ReportId: make([]byte, 32), ReportIdMa: make([]byte, 32), ChipId: make([]byte, 64), Signature: make([]byte, 512)}
	raw, err := abi.ReportToAbiBytes(r)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "report.bin")
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCheckSNPCLI: check against a build's manifest.json and against its
// verified release: a report of a published launch passes (exit 0), one of
// 3 vCPUs fails (exit 1) saying so, a release without its build output
// says what to give, and what is not evidence (or a TPM quote's
// attestation key with SNP evidence) is exit 2.
func TestCheckSNPCLI(t *testing.T) {
	b := newSNPCheckBuild(t)
	ok := b.report(t, b.measure(t, 2, "EPYC-Genoa", b.cmdline))
	three := b.report(t, b.measure(t, 3, "EPYC-Genoa", b.cmdline))
	edited := b.report(t, b.measure(t, 1, "EPYC-Genoa", b.cmdline+" debug"))
	manifestPath := filepath.Join(b.out, "manifest.json")
	copied := filepath.Join(t.TempDir(), "sample")
	if err := os.CopyFS(copied, os.DirFS(b.release)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []checkCase{
		{"manifest match", []string{"--evidence", ok, manifestPath}, 0, []string{"MATCH: the evidence matches snp/vcpus=2,cpu=EPYC-Genoa,vmm=QEMU,gf=0x1", "snp_launch_measurement", "snp_policy", "evidence signature not checked"}},
		{"manifest 3 vcpus", []string{"--evidence", three, manifestPath}, 1, []string{"this VM ran with 3 vCPUs; the release covers 1, 2 and 4"}},
		{"release match", []string{"--evidence", ok, "--key", b.pub, b.release}, 0, []string{"statement.sigstore.json: in-toto statement signed by", "MATCH"}},
		{"release 3 vcpus", []string{"--evidence", three, "--key", b.pub, b.release}, 1, []string{"this VM ran with 3 vCPUs; the release covers 1, 2 and 4"}},
		{"release cmdline", []string{"--evidence", edited, "--key", b.pub, b.release}, 1, []string{"the firmware, kernel, initrd or cmdline must differ", `published cmdline: "console=ttyS0 panic=-1"`, "not explained"}},
		{"release without build output", []string{"--evidence", three, "--key", b.pub, copied}, 1, []string{"could not search", "--artifacts DIR"}},
		{"release with --artifacts", []string{"--evidence", three, "--key", b.pub, "--artifacts", b.out, copied}, 1, []string{"this VM ran with 3 vCPUs"}},
		{"release without key", []string{"--evidence", ok, b.release}, 2, []string{"--key is required"}},
		{"not evidence", []string{"--evidence", manifestPath, manifestPath}, 2, []string{"is no attestation evidence", "want an AMD SEV-SNP attestation report (the 1184 bytes", "; or an Intel TDX quote (version 4; version 5 is refused by name"}},
		{"no evidence file", []string{"--evidence", filepath.Join(b.out, "nothing"), manifestPath}, 2, []string{"--evidence"}},
		{"event log with SNP evidence", []string{"--evidence", ok, "--eventlog", ok, manifestPath}, 2, []string{"no event log: an SEV-SNP attestation report has none"}},
		{"attestation key with SNP evidence", []string{"--evidence", ok, "--ak", ok, "--signature", ok, manifestPath}, 2, []string{"--signature, --ak and --nonce are for a TPM quote, not SEV-SNP attestation report"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			runCheckCase(t, c)
		})
	}
	code, so, se := runCLI(t, "check", "--json", "--evidence", three, manifestPath)
	var res struct {
		OK          bool  `json:"ok"`
		DevKey      *bool `json:"dev_key"`
		SigChecked  *bool `json:"signature_checked"`
		Differences []struct {
			Parameter, Got string
			Published      []string
		} `json:"differences"`
		Release *struct{ Name, Version string } `json:"release"`
		Result  struct {
			Match     bool     `json:"match"`
			Explained bool     `json:"explained"`
			Reasons   []string `json:"reasons"`
			Fields    []struct {
				Name, Status string
			} `json:"fields"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(so), &res); err != nil {
		t.Fatalf("--json: %v\n%s%s", err, so, se)
	}
	if code != 1 || res.OK || res.Result.Match || !res.Result.Explained || len(res.Result.Fields) != 1 || res.Result.Fields[0].Status != "differs" {
		t.Errorf("--json of a 3-vCPU report: exit %d, %+v; want exit 1, an explained mismatch of the measurement", code, res)
	}
	if res.DevKey == nil || *res.DevKey || res.SigChecked == nil || *res.SigChecked || res.Release != nil {
		t.Errorf("--json of a manifest check: dev_key %v, signature_checked %v, release %v; want false, false and none", res.DevKey, res.SigChecked, res.Release)
	}
	var params []string
	for _, d := range res.Differences {
		params = append(params, d.Parameter)
		if d.Parameter == "vcpus" && (d.Got != "3" || strings.Join(d.Published, ",") != "1,2,4") {
			t.Errorf("difference %+v: want vcpus got 3, published 1, 2, 4", d)
		}
	}
	if strings.Join(params, ",") != "snp_launch_measurement,vcpus" {
		t.Errorf("--json differences %q: want snp_launch_measurement, then vcpus", params)
	}
	// A release: its name and version, and the development key said.
	code, so, se = runCLI(t, "check", "--json", "--evidence", ok, "--key", b.pub, b.release)
	res.Release = nil
	if err := json.Unmarshal([]byte(so), &res); err != nil {
		t.Fatalf("--json: %v\n%s%s", err, so, se)
	}
	if code != 0 || res.Release == nil || res.Release.Name != "sample" || res.Release.Version != "1.0.0" || *res.DevKey {
		t.Errorf("--json of a matching report against release sample 1.0.0: exit %d, release %+v, dev_key %v", code, res.Release, *res.DevKey)
	}
}

// TestCheckEvidenceLimit: evidence and event logs are read within the
// evidence limit (16MiB): a 3 GB sparse file is refused at once, before a
// byte of it is read, naming the limit.
func TestCheckEvidenceLimit(t *testing.T) {
	b := newSNPCheckBuild(t)
	huge := filepath.Join(t.TempDir(), "huge.bin")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(3 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ok := b.report(t, b.measure(t, 2, "EPYC-Genoa", b.cmdline))
	for _, args := range [][]string{{"--evidence", huge}, {"--evidence", ok, "--eventlog", huge}} {
		start := time.Now()
		code, so, se := runCLI(t, append(append([]string{"check"}, args...), filepath.Join(b.out, "manifest.json"))...)
		if d := time.Since(start); d > time.Second {
			t.Errorf("check %q took %v, want under 1s", args, d)
		}
		if code != 2 || !strings.Contains(se, "--limit evidence=") {
			t.Errorf("check %q: exit %d, want 2 naming the evidence limit\n%s%s", args, code, so, se)
		}
	}
}

// tdxLaunch is what a TD with the vectors' TDVF, kernel and initrd ran.
func tdxLaunch(t *testing.T, fw []byte, cmdline string) *tdxmodel.Result {
	t.Helper()
	loader := make([]byte, 2*128)
	for i, name := range []string{"etc/acpi/tables", "etc/acpi/rsdp"} {
		binary.LittleEndian.PutUint32(loader[i*128:], 1)
		copy(loader[i*128+4:], name)
	}
	r, err := tdxmodel.Measure(fw, tdxmodel.Options{Kernel: testenv.ReadVector(t, "inputs/vmlinuz-6.1.0-56-cloud-amd64"),
		Initrd: testenv.ReadVector(t, "inputs/initrd-a.cpio"), Cmdline: cmdline, QEMU: tdxmodel.QEMUVersion{Major: 11, Minor: 1},
		ACPI: &tdxmodel.ACPITables{TableLoader: loader, RSDP: []byte("RSD PTR test"), Tables: bytes.Repeat([]byte("DSDT"), 64)}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tdQuote is go-tdx-guest's real v4 quote with r's MRTD and RTMRs.
func tdQuote(t *testing.T, r *tdxmodel.Result) []byte {
	t.Helper()
	q, err := tdxabi.QuoteToProto(tdxtestdata.RawQuote)
	if err != nil {
		t.Fatal(err)
	}
	q4 := q.(*tdxpb.QuoteV4)
	q4.TdQuoteBody.MrTd = append([]byte(nil), r.MRTD[:]...)
	q4.TdQuoteBody.Rtmrs = nil
	for _, reg := range r.RTMR {
		q4.TdQuoteBody.Rtmrs = append(q4.TdQuoteBody.Rtmrs, append([]byte(nil), reg.Value[:]...))
	}
	raw, err := tdxabi.QuoteToAbiBytes(q4)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// tdxCheckBuild is a build output whose manifest.json holds one TDX entry
// (the vectors' TDVF, kernel and initrd, 1 vCPU, 2G) and, beside it, the
// firmware and the expected event log.
type tdxCheckBuild struct {
	manifest, cmdline string
	fw                []byte
	pub               *tdxmodel.Result
}

func newTDXCheckBuild(t *testing.T) *tdxCheckBuild {
	t.Helper()
	out := t.TempDir()
	fw := testenv.ReadVector(t, "inputs/debian-sid_OVMF.fd")
	cmdline := "console=ttyS0 root=/dev/vda1 ro"
	pub := tdxLaunch(t, fw, cmdline)
	rep := pub.Report()
	files := map[string][]byte{"measure/tdx/firmware": fw, "measure/tdx/0.ccel": pub.EventLog()}
	m := &manifest.Manifest{Cocobuild: "0.1.0-test", Recipe: manifest.Recipe{Name: "sample", SHA256: hexSHA([]byte("recipe"))}, Epoch: 1700000000}
	for p, b := range files {
		if err := os.MkdirAll(filepath.Join(out, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
		m.Artifacts = append(m.Artifacts, manifest.Artifact{Name: p, Kind: "eventlog", Path: p, SHA256: hexSHA(b), Size: int64(len(b))})
	}
	m.Measurements = []manifest.Measurement{{TEE: "tdx", Name: "tdx/vcpus=1,memory=2G",
		Params: map[string]any{"firmware_sha256": hexSHA(fw), "cmdline": cmdline, "initrd_sha256": hexSHA(testenv.ReadVector(t, "inputs/initrd-a.cpio")),
			"memory": "2G", "page_order": "single-pass", "tdvf_separator": "current", "eventlog": "measure/tdx/0.ccel"},
		Values: map[string]any{"mrtd": rep.MRTD.String(), "rtmr0": rep.RTMR0.String(), "rtmr1": rep.RTMR1.String(), "rtmr2": rep.RTMR2.String(), "rtmr3": rep.RTMR3.String()}}}
	enc, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	man := filepath.Join(out, "manifest.json")
	if err := os.WriteFile(man, enc, 0o644); err != nil {
		t.Fatal(err)
	}
	return &tdxCheckBuild{manifest: man, cmdline: cmdline, fw: fw, pub: pub}
}

// TestCheckTDXCLI: a build whose manifest.json holds a TDX entry and its
// expected event log beside it; a TD booted with an edited command line
// is explained from its quote and CCEL (exit 1), with both command lines
// given --cmdline; the published launch passes; a log that does not parse
// is exit 2.
func TestCheckTDXCLI(t *testing.T) {
	b := newTDXCheckBuild(t)
	fw, cmdline, pub, man := b.fw, b.cmdline, b.pub, b.manifest
	edited := tdxLaunch(t, fw, cmdline+" debug")
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	okQuote, okLog := write("ok.quote", tdQuote(t, pub)), write("ok.ccel", pub.EventLog())
	edQuote, edLog := write("edited.quote", tdQuote(t, edited)), write("edited.ccel", edited.EventLog())
	garbage := write("garbage.ccel", []byte("not an event log"))
	// The ACPI CCEL table as /sys/firmware/acpi/tables/CCEL reads: its
	// header (signature, length 56, revision, checksum, OEM IDs, creator),
	// then CC type 2 (TDX), subtype, reserved, the log's length and address.
	acpi := append([]byte("CCEL"), binary.LittleEndian.AppendUint32(nil, 56)...)
	acpi = append(acpi, 1, 0)
	acpi = append(acpi, "BOCHS BXPC    "...)
	acpi = binary.LittleEndian.AppendUint32(acpi, 1)
	acpi = append(acpi, "BXPC"...)
	acpi = binary.LittleEndian.AppendUint32(acpi, 1)
	acpi = append(acpi, 2, 0, 0, 0)
	acpi = binary.LittleEndian.AppendUint64(acpi, 0x10000)
	acpi = binary.LittleEndian.AppendUint64(acpi, 0x7f000000)
	if len(acpi) != 56 {
		t.Fatalf("the CCEL table is %d bytes, want 56", len(acpi))
	}
	acpiTable := write("CCEL", acpi)
	for _, c := range []checkCase{
		{"published", []string{"--evidence", okQuote, "--eventlog", okLog, man}, 0, []string{"MATCH: the evidence matches tdx/vcpus=1,memory=2G", "rtmr_2"}},
		{"edited cmdline", []string{"--evidence", edQuote, "--eventlog", edLog, man}, 1, []string{"rtmr_2", "DIFFERS", "RTMR2 event 1: the kernel command line differs", "--cmdline"}},
		{"edited cmdline given", []string{"--evidence", edQuote, "--eventlog", edLog, "--cmdline", cmdline + " debug", man}, 1,
			[]string{`RTMR2 event 1: the kernel command line differs: the TD booted with "` + cmdline + ` debug", the release with "` + cmdline + `" (+debug)`}},
		{"edited without log", []string{"--evidence", edQuote, man}, 1, []string{"RTMR2 differs from tdx/vcpus=1,memory=2G's; it covers the kernel command line"}},
		{"log of another TD", []string{"--evidence", okQuote, "--eventlog", edLog, man}, 1, []string{"does not replay to the quote's RTMR2"}},
		{"log does not parse", []string{"--evidence", edQuote, "--eventlog", garbage, man}, 2, []string{"the TDX event log does not parse"}},
		{"log does not parse, quote matches", []string{"--evidence", okQuote, "--eventlog", garbage, man}, 2, []string{"the TDX event log does not parse"}},
		{"ACPI table for the log", []string{"--evidence", okQuote, "--eventlog", acpiTable, man}, 2, []string{"this is the ACPI CCEL table (56 bytes", "give the log itself, /sys/firmware/acpi/tables/data/CCEL"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			runCheckCase(t, c)
		})
	}
}

// TestCheckVerifyEvidence: --verify-evidence checks the signature of the
// real hardware evidence go-sev-guest and go-tdx-guest ship, offline, with
// the VCEK given as a file (SNP) or the PCK chain in the quote (TDX), before
// the comparison; a report or quote with one bit changed fails its
// signature; Intel's collateral given as files (go-tdx-guest's sample TCB
// info, QE identity, signing chain and CRLs) is checked too: its TCB info
// has no level for the sample quote's SVNs, as go-tdx-guest's own tests
// say, so the quote is refused with it.
func TestCheckVerifyEvidence(t *testing.T) {
	b := newSNPCheckBuild(t)
	td := newTDXCheckBuild(t)
	dir := t.TempDir()
	report, vcek, quote := realEvidence(t, dir)
	bad := append([]byte(nil), sevtestdata.AttestationBytes...)
	bad[0x90] ^= 1
	badReport := writeFile(t, dir, "bad.bin", bad)
	man := filepath.Join(b.out, "manifest.json")
	badQ := append([]byte(nil), tdxtestdata.RawQuote...)
	badQ[48+0x88] ^= 1 // MRTD
	badQuote := writeFile(t, dir, "bad.dat", badQ)
	collateral := tdxCollateral(t, dir)
	tdxAt := []string{"--verify-evidence", "--at", "2023-07-01T01:00:00Z"}
	for _, c := range []checkCase{
		{"tdx signature", append(append([]string{"--evidence", quote}, tdxAt...), td.manifest), 1,
			[]string{"signature: the quote's signature, QE report and PCK certificate chain verify up to Intel's SGX root (go-tdx-guest verify, offline", "MISMATCH"}},
		{"tdx changed quote", append(append([]string{"--evidence", badQuote}, tdxAt...), td.manifest), 1, []string{"the quote's signature does not verify"}},
		{"tdx collateral", append(append(append([]string{"--evidence", quote}, tdxAt...), collateral...), td.manifest), 1,
			[]string{"tcbinfo.json: TCB info", "qeidentity.json: QE identity", "tcb-signing.pem: the chain that signs", "the quote's signature does not verify", "no matching TCB level found"}},
		{"snp signature", []string{"--evidence", report, "--verify-evidence", "--cert", vcek, "--at", "2026-01-01T00:00:00Z", man}, 1,
			[]string{"vcek.der: VCEK certificate \"SEV-VCEK\"", "signature: the report's signature verifies with the VCEK", "MISMATCH"}},
		{"snp changed report", []string{"--evidence", badReport, "--verify-evidence", "--cert", vcek, "--at", "2026-01-01T00:00:00Z", man}, 1,
			[]string{"the report's signature does not verify"}},
		{"snp no vcek offline", []string{"--evidence", report, "--verify-evidence", man}, 1, []string{"no VCEK or VLEK certificate", "--online"}},
		{"cert without verify", []string{"--evidence", report, "--cert", vcek, man}, 2, []string{"--cert and --online are for --verify-evidence"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			runCheckCase(t, c)
		})
	}
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"--evidence", report, "--cert", vcek, "--at", "2026-01-01T00:00:00Z", man}, true},
		{[]string{"--evidence", badReport, "--cert", vcek, "--at", "2026-01-01T00:00:00Z", man}, false},
		{append(append([]string{"--evidence", quote}, tdxAt...), td.manifest), true},
		{append(append(append([]string{"--evidence", quote}, tdxAt...), collateral...), td.manifest), false},
	} {
		_, so, se := runCLI(t, append([]string{"check", "--json", "--verify-evidence"}, c.args...)...)
		var res struct {
			SigChecked bool `json:"signature_checked"`
		}
		if err := json.Unmarshal([]byte(so), &res); err != nil || res.SigChecked != c.want {
			t.Errorf("--json of %q: signature_checked %v (%v), want %v\n%s%s", c.args, res.SigChecked, err, c.want, so, se)
		}
	}
}

// TestCheckVerifyEvidenceNoNetwork: --verify-evidence reaches the network
// only with --online. check runs as a process whose HTTP and HTTPS proxy
// is a listener that counts the connections made to it (go-sev-guest and
// go-tdx-guest fetch with Go's default client, which takes its proxy from
// the environment): the SNP report with its VCEK as a file, and the TDX
// quote without and with its collateral as files, make none; with
// --online the same report without its VCEK, and the quote, each make one
// (to AMD's and Intel's services), which shows that the listener would
// have seen the others.
func TestCheckVerifyEvidenceNoNetwork(t *testing.T) {
	b := newSNPCheckBuild(t)
	td := newTDXCheckBuild(t)
	dir := t.TempDir()
	report, vcek, quote := realEvidence(t, dir)
	collateral := tdxCollateral(t, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns := make(chan string, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(c).ReadString('\n') // CONNECT host:443 HTTP/1.1
			conns <- strings.TrimSpace(line)
			c.Close()
		}
	}()
	proxy := "http://" + ln.Addr().String()
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasSuffix(strings.ToLower(k), "_proxy") {
			env = append(env, kv)
		}
	}
	env = append(env, "COCOBUILD_TEST_MAIN=1", "HTTPS_PROXY="+proxy, "HTTP_PROXY="+proxy, "https_proxy="+proxy, "http_proxy="+proxy)
	snpMan, tdxMan := filepath.Join(b.out, "manifest.json"), td.manifest
	// The offline runs come first: a retry of an online run that reaches
	// the listener after its process was stopped cannot count against them.
	for _, c := range []struct {
		name   string
		args   []string
		online bool
		want   string // in the output of an offline run
	}{
		{"snp, VCEK as a file", []string{"--evidence", report, "--cert", vcek, "--at", "2026-01-01T00:00:00Z", snpMan}, false, "signature: the report's signature verifies with the VCEK"},
		{"tdx", []string{"--evidence", quote, "--at", "2023-07-01T01:00:00Z", tdxMan}, false, "signature: the quote's signature, QE report and PCK certificate chain verify"},
		{"tdx, collateral as files", append(append([]string{"--evidence", quote, "--at", "2023-07-01T01:00:00Z"}, collateral...), tdxMan), false, "no matching TCB level found"},
		{"snp online", []string{"--evidence", report, "--online", "--at", "2026-01-01T00:00:00Z", snpMan}, true, ""},
		{"tdx online", []string{"--evidence", quote, "--online", "--at", "2023-07-01T01:00:00Z", tdxMan}, true, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"check", "--verify-evidence"}, c.args...)...)
			var out bytes.Buffer
			cmd.Env, cmd.Stdout, cmd.Stderr = env, &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var conn string
			select {
			case conn = <-conns:
				cancel() // it fetches on and on, with retries
				<-done
			case err := <-done:
				select {
				case conn = <-conns:
				default:
				}
				if !c.online && (cmd.ProcessState.ExitCode() != 1 || !strings.Contains(out.String(), c.want)) {
					t.Errorf("exit %v, want 1 with %q:\n%s", err, c.want, out.String())
				}
			}
			switch {
			case c.online && conn == "":
				t.Errorf("--online made no connection through the proxy: the test would not see one made offline either\n%s", out.String())
			case !c.online && conn != "":
				t.Errorf("check made a connection without --online: %q\n%s", conn, out.String())
			case c.online:
				t.Logf("--online: %s", conn)
			}
		})
	}
}

// realEvidence writes the real hardware evidence go-sev-guest and
// go-tdx-guest ship into dir: a Milan SNP report and its VCEK, and a
// Sapphire Rapids TD quote (v4, its PCK chain inside).
func realEvidence(t *testing.T, dir string) (report, vcek, quote string) {
	t.Helper()
	return writeFile(t, dir, "report.bin", sevtestdata.AttestationBytes), writeFile(t, dir, "vcek.der", sevtestdata.VcekBytes),
		writeFile(t, dir, "quote.dat", tdxtestdata.RawQuote)
}

// tdxCollateral writes the collateral go-tdx-guest ships beside its real
// quote, as Intel's PCS serves it (the TCB info, the QE identity, the chain
// that signs them, the PCK and root CRLs), into dir, and returns the --cert
// flags that give it.
func tdxCollateral(t *testing.T, dir string) []string {
	t.Helper()
	chain, err := url.QueryUnescape(tdxtest.TcbInfoHeader["Tcb-Info-Issuer-Chain"][0])
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, f := range []struct {
		name string
		b    []byte
	}{{"tcbinfo.json", tdxtestdata.TcbInfoBody}, {"qeidentity.json", tdxtestdata.QeIdentityBody}, {"tcb-signing.pem", []byte(chain)},
		{"pck.crl", tdxtestdata.PckCrlBody}, {"root.crl", tdxtestdata.RootCrlBody}} {
		args = append(args, "--cert", writeFile(t, dir, f.name, f.b))
	}
	return args
}

// TestCheckFeed: check against a dir:, an http:// and an oci:// feed
// verifies the feed first, as verify does (the development key only with
// --allow-dev-key, another key refused), compares every release the feed
// holds, and takes the firmware from the build output given with
// --artifacts.
func TestCheckFeed(t *testing.T) {
	b := newSNPCheckBuild(t)
	dir := t.TempDir()
	cache, feedDir := filepath.Join(dir, "cache"), filepath.Join(dir, "feed")
	// The directory feed is also served over HTTP, as cocobuild serve
	// serves it.
	httpFeed := httptest.NewServer(feed.Handler(feed.Dir{Path: feedDir}))
	t.Cleanup(httpFeed.Close)
	if code, so, se := runCLI(t, "publish", filepath.Join(b.out, "manifest.json"), "--version", "1.0.0", "--expires", "2099-01-01T00:00:00Z",
		"--key", "dev", "--cache-dir", cache, "--to", "dir:"+feedDir, "-o", filepath.Join(dir, "rel")); code != 0 {
		t.Fatalf("publish: exit %d\n%s%s", code, so, se)
	}
	// A second release, 1.1.0, for 2 and 4 vCPUs only: a guest of one
	// vCPU is one of 1.0.0, which the feed still holds.
	out2 := filepath.Join(dir, "out2")
	if err := os.CopyFS(out2, os.DirFS(b.out)); err != nil {
		t.Fatal(err)
	}
	mb, err := os.ReadFile(filepath.Join(out2, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Parse(mb)
	if err != nil {
		t.Fatal(err)
	}
	m.Measurements = m.Measurements[1:]
	if mb, err = m.Encode(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out2, "manifest.json"), mb, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, so, se := runCLI(t, "publish", filepath.Join(out2, "manifest.json"), "--version", "1.1.0", "--expires", "2099-01-01T00:00:00Z",
		"--key", "dev", "--cache-dir", cache, "--to", "dir:"+feedDir, "-o", filepath.Join(dir, "rel2")); code != 0 {
		t.Fatalf("publish 1.1.0: exit %d\n%s%s", code, so, se)
	}
	devPub := filepath.Join(publish.DevKeyDir(cache), "cosign.pub")
	three := b.report(t, b.measure(t, 3, "EPYC-Genoa", b.cmdline))
	one := b.report(t, b.measure(t, 1, "EPYC-Genoa", b.cmdline))
	two := b.report(t, b.measure(t, 2, "EPYC-Genoa", b.cmdline))
	for _, c := range []checkCase{
		{"feed", []string{"--allow-dev-key", "--key", devPub, "--artifacts", b.out, "--evidence", three, "dir:" + feedDir}, 1,
			[]string{"release sample 1.1.0, the latest of its name, verified", "release sample 1.0.0, superseded by 1.1.0, verified", "this VM ran with 3 vCPUs; the release covers 1, 2 and 4",
				"compared with every entry of the releases sample 1.1.0, sample 1.0.0 (superseded by 1.1.0)"}},
		{"feed, older release", []string{"--allow-dev-key", "--key", devPub, "--evidence", one, "dir:" + feedDir}, 0,
			[]string{"MATCH: the evidence matches snp/vcpus=1,cpu=EPYC-Genoa,vmm=QEMU,gf=0x1 of release sample 1.0.0 (superseded by 1.1.0)"}},
		{"feed, latest release", []string{"--allow-dev-key", "--key", devPub, "--evidence", two, "dir:" + feedDir}, 0,
			[]string{"MATCH: the evidence matches snp/vcpus=2,cpu=EPYC-Genoa,vmm=QEMU,gf=0x1 of release sample 1.1.0\n"}},
		{"feed without --allow-dev-key", []string{"--key", devPub, "--evidence", three, "dir:" + feedDir}, 1, []string{"DEVELOPMENT key"}},
		{"feed with another key", []string{"--key", b.pub, "--evidence", three, "dir:" + feedDir}, 1, []string{"the feed does not verify"}},
		{"http feed", []string{"--allow-dev-key", "--key", devPub, "--artifacts", b.out, "--evidence", three, httpFeed.URL}, 1,
			[]string{"feed " + httpFeed.URL + ": release sample 1.1.0, the latest of its name, verified", "this VM ran with 3 vCPUs; the release covers 1, 2 and 4"}},
		{"http feed, older release", []string{"--allow-dev-key", "--key", devPub, "--evidence", one, httpFeed.URL}, 0,
			[]string{"MATCH: the evidence matches snp/vcpus=1,cpu=EPYC-Genoa,vmm=QEMU,gf=0x1 of release sample 1.0.0 (superseded by 1.1.0)"}},
		{"http feed with another key", []string{"--key", b.pub, "--evidence", three, httpFeed.URL}, 1, []string{"the feed does not verify"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			so, _ := runCheckCase(t, c)
			// "feed", "http feed" compare; the others are refused.
			if c.code != 0 && !strings.HasSuffix(c.name, "feed") && strings.Contains(so, "MISMATCH") {
				t.Errorf("compared with reference values that did not verify:\n%s", so)
			}
		})
	}
	// The same two releases in an OCI feed, in a local registry.
	t.Run("oci", func(t *testing.T) {
		ociFeed := "oci://" + testenv.DockerRegistry(t) + "/coco/sample-feed"
		for i, m := range []string{filepath.Join(b.out, "manifest.json"), filepath.Join(out2, "manifest.json")} {
			if code, so, se := runCLI(t, "publish", m, "--version", []string{"1.0.0", "1.1.0"}[i], "--expires", "2099-01-01T00:00:00Z",
				"--key", "dev", "--cache-dir", cache, "--to", ociFeed, "-o", filepath.Join(dir, fmt.Sprintf("oci-rel%d", i))); code != 0 {
				t.Fatalf("publish %s to %s: exit %d\n%s%s", m, ociFeed, code, so, se)
			}
		}
		for _, c := range []checkCase{
			{"oci feed", []string{"--allow-dev-key", "--key", devPub, "--artifacts", b.out, "--evidence", three, ociFeed}, 1,
				[]string{"feed " + ociFeed + ": release sample 1.1.0, the latest of its name, verified", "this VM ran with 3 vCPUs; the release covers 1, 2 and 4"}},
			{"oci feed, older release", []string{"--allow-dev-key", "--key", devPub, "--evidence", one, ociFeed}, 0,
				[]string{"MATCH: the evidence matches snp/vcpus=1,cpu=EPYC-Genoa,vmm=QEMU,gf=0x1 of release sample 1.0.0 (superseded by 1.1.0)"}},
			{"oci feed with another key", []string{"--key", b.pub, "--evidence", three, ociFeed}, 1, []string{"the feed does not verify"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				if so, _ := runCheckCase(t, c); c.code == 1 && strings.HasSuffix(c.name, "key") && strings.Contains(so, "MISMATCH") {
					t.Errorf("compared with reference values that did not verify:\n%s", so)
				}
			})
		}
	})
	code, so, se := runCLI(t, "check", "--json", "--allow-dev-key", "--key", devPub, "--evidence", one, "dir:"+feedDir)
	var res struct {
		DevKey  bool `json:"dev_key"`
		Release struct {
			Name, Version string
			Superseded    string `json:"superseded_by"`
		} `json:"release"`
	}
	if err := json.Unmarshal([]byte(so), &res); err != nil {
		t.Fatalf("--json: %v\n%s%s", err, so, se)
	}
	if code != 0 || !res.DevKey || res.Release.Name != "sample" || res.Release.Version != "1.0.0" || res.Release.Superseded != "1.1.0" {
		t.Errorf("--json of a 1-vCPU report against the feed: exit %d, %+v; want a match of sample 1.0.0 superseded by 1.1.0, dev_key true", code, res)
	}
}

// checkCase is a run of `cocobuild check ARGS…`: its exit code and what its
// output (stdout and stderr) must hold.
type checkCase struct {
	name string
	args []string
	code int
	want []string
}

// runCheckCase runs c and checks its exit code and output; it returns the
// output for further checks.
func runCheckCase(t *testing.T, c checkCase) (stdout, stderr string) {
	t.Helper()
	code, so, se := runCLI(t, append([]string{"check"}, c.args...)...)
	if code != c.code {
		t.Fatalf("exit %d, want %d\n%s%s", code, c.code, so, se)
	}
	for _, w := range c.want {
		if !strings.Contains(so+se, w) {
			t.Errorf("output has no %q:\n%s%s", w, so, se)
		}
	}
	return so, se
}
