package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"

	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/manifest"
	sevmodel "github.com/cocobuild/cocobuild/measure/sev"
	"github.com/cocobuild/cocobuild/publish"
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
// says what to give, and what is not evidence is exit 2.
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
	for _, c := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"manifest match", []string{"--evidence", ok, manifestPath}, 0, []string{"MATCH: the evidence matches snp/vcpus=2,cpu=EPYC-Genoa,vmm=QEMU,gf=0x1", "snp_launch_measurement", "snp_policy"}},
		{"manifest 3 vcpus", []string{"--evidence", three, manifestPath}, 1, []string{"this VM ran with 3 vCPUs; the release covers 1, 2 and 4"}},
		{"release match", []string{"--evidence", ok, "--key", b.pub, b.release}, 0, []string{"statement.sigstore.json: in-toto statement signed by", "MATCH"}},
		{"release 3 vcpus", []string{"--evidence", three, "--key", b.pub, b.release}, 1, []string{"this VM ran with 3 vCPUs; the release covers 1, 2 and 4"}},
		{"release cmdline", []string{"--evidence", edited, "--key", b.pub, b.release}, 1, []string{"the firmware, kernel, initrd or cmdline must differ", `published cmdline: "console=ttyS0 panic=-1"`, "not explained"}},
		{"release without build output", []string{"--evidence", three, "--key", b.pub, copied}, 1, []string{"could not search", "--artifacts DIR"}},
		{"release with --artifacts", []string{"--evidence", three, "--key", b.pub, "--artifacts", b.out, copied}, 1, []string{"this VM ran with 3 vCPUs"}},
		{"release without key", []string{"--evidence", ok, b.release}, 2, []string{"--key is required"}},
		{"not evidence", []string{"--evidence", manifestPath, manifestPath}, 2, []string{"is no attestation evidence"}},
		{"no evidence file", []string{"--evidence", filepath.Join(b.out, "nothing"), manifestPath}, 2, []string{"--evidence"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, so, se := runCLI(t, append([]string{"check"}, c.args...)...)
			if code != c.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, c.code, so, se)
			}
			for _, w := range c.want {
				if !strings.Contains(so+se, w) {
					t.Errorf("output has no %q:\n%s%s", w, so, se)
				}
			}
		})
	}
	code, so, se := runCLI(t, "check", "--json", "--evidence", three, manifestPath)
	var res struct {
		OK     bool `json:"ok"`
		Result struct {
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
}
