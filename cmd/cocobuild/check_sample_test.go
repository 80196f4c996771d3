package main

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/manifest"
	sevmodel "github.com/cocobuild/cocobuild/measure/sev"
	tdxmodel "github.com/cocobuild/cocobuild/measure/tdx"
	"github.com/cocobuild/cocobuild/publish"
)

// TestCheckSample checks evidence against the sample's own signed release
// (built from the shared cache, verified with the development key): the
// models reproduce its published values from its build output first (else
// the evidence would prove nothing), then an SNP report of 5 vCPUs, a TD of
// 2 vCPUs and 8G, and a TD booted with init=/bin/sh (its /proc/cmdline
// given as the guest shows it) are each explained; the published launches
// match.
func TestCheckSample(t *testing.T) {
	qemu := testenv.TDXQEMU(t)
	cache := testenv.SharedCache(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if code, _, stderr := runCLI(t, "build", "--cache-dir", cache, "-o", out, "-var", "acpi_qemu="+qemu, sampleRecipe); code != 0 {
		t.Fatalf("build: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "keygen", "--dev", "--cache-dir", cache); code != 0 {
		t.Fatalf("keygen --dev: %s", stderr)
	}
	devPub := filepath.Join(publish.DevKeyDir(cache), "cosign.pub")
	mb, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Parse(mb)
	if err != nil {
		t.Fatal(err)
	}
	bySHA := map[string]string{}
	for _, a := range m.Artifacts {
		bySHA[a.SHA256] = a.Path
	}
	read := func(p string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(p)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	entry := func(name string) manifest.Measurement {
		t.Helper()
		for _, me := range m.Measurements {
			if me.Name == name {
				return me
			}
		}
		t.Fatalf("the sample's manifest has no entry %s", name)
		return manifest.Measurement{}
	}
	param := func(me manifest.Measurement, k string) string { s, _ := me.Params[k].(string); return s }
	value := func(me manifest.Measurement, k string) string { s, _ := me.Values[k].(string); return s }
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// SNP: the model of the published 1-vCPU Genoa launch, then 5 vCPUs.
	snp := entry("snp/vcpus=1,cpu=EPYC-Genoa,vmm=QEMU,gf=0x1")
	boot := &sevmodel.DirectBoot{Kernel: read(bySHA[param(snp, "kernel_sha256")]), Initrd: read(bySHA[param(snp, "initrd_sha256")]), Cmdline: param(snp, "cmdline")}
	snpFW := read(bySHA[param(snp, "firmware_sha256")])
	snpMeasure := func(vcpus int) []byte {
		r, err := sevmodel.Measure(sevmodel.Params{Mode: sevmodel.ModeSNP, Firmware: snpFW, VCPUs: vcpus, VCPUType: "EPYC-Genoa", GuestFeatures: 1, DirectBoot: boot})
		if err != nil {
			t.Fatal(err)
		}
		return r.Digest
	}
	if got, want := hex.EncodeToString(snpMeasure(1)), value(snp, "launch_measurement"); got != want {
		t.Fatalf("the SNP model gives %s for the sample's published launch, which publishes %s", got, want)
	}
	b := &snpCheckBuild{}
	snpOK, snp5 := b.report(t, snpMeasure(1)), b.report(t, snpMeasure(5))

	// TDX: the model of the published 2-vCPU 2G launch, then 8G, then the
	// command line edited.
	tdx := entry("tdx/vcpus=2,memory=2G,qemu=11.1,order=single-pass,separator=current")
	acpi := "measure/tdx/acpi/vcpus=2,memory=2G/"
	cmdline := param(tdx, "cmdline")
	td := func(memory uint64, cmdline string) *tdxmodel.Result {
		t.Helper()
		r, err := tdxmodel.Measure(read(bySHA[param(tdx, "firmware_sha256")]), tdxmodel.Options{Memory: memory, QEMU: tdxmodel.QEMUVersion{Major: 11, Minor: 1},
			ACPIDataSize: 163840, Kernel: read(bySHA[param(tdx, "kernel_sha256")]), Initrd: read(bySHA[param(tdx, "initrd_sha256")]), Cmdline: cmdline,
			ACPI: &tdxmodel.ACPITables{TableLoader: read(acpi + "table-loader"), RSDP: read(acpi + "rsdp"), Tables: read(acpi + "tables")}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	pub := td(2<<30, cmdline)
	rep := pub.Report()
	for k, v := range map[string]string{"mrtd": rep.MRTD.String(), "rtmr0": rep.RTMR0.String(), "rtmr1": rep.RTMR1.String(), "rtmr2": rep.RTMR2.String(), "rtmr3": rep.RTMR3.String()} {
		if want := value(tdx, k); v != want {
			t.Fatalf("the TDX model gives %s %s for the sample's published launch, which publishes %s", k, v, want)
		}
	}
	big, edited := td(8<<30, cmdline), td(2<<30, cmdline+" init=/bin/sh")
	tdxOK, tdxOKLog := write("ok.dat", tdQuote(t, pub)), write("ok.ccel", pub.EventLog())
	tdx8G, tdx8GLog := write("8g.dat", tdQuote(t, big)), write("8g.ccel", big.EventLog())
	tdxEd, tdxEdLog := write("ed.dat", tdQuote(t, edited)), write("ed.ccel", edited.EventLog())

	release := filepath.Join(out, "publish", "sample")
	key := []string{"--allow-dev-key", "--key", devPub}
	for _, c := range []checkCase{
		{"snp published", []string{"--evidence", snpOK}, 0, []string{"MATCH: the evidence matches snp/vcpus=1,cpu=EPYC-Genoa,vmm=QEMU,gf=0x1 of release sample", "evidence signature not checked"}},
		{"snp 5 vcpus", []string{"--evidence", snp5}, 1, []string{"this VM ran with 5 vCPUs; the release covers 1, 2 and 4"}},
		{"tdx published", []string{"--evidence", tdxOK, "--eventlog", tdxOKLog}, 0, []string{"MATCH: the evidence matches " + tdx.Name}},
		{"tdx 8G", []string{"--evidence", tdx8G, "--eventlog", tdx8GLog}, 1, []string{"MISMATCH against tdx/vcpus=2,memory=", "RTMR0 event 1: the TD ran with 8G of memory"}},
		{"tdx init=/bin/sh", []string{"--evidence", tdxEd, "--eventlog", tdxEdLog, "--cmdline", cmdline + " init=/bin/sh initrd=initrd\n"}, 1,
			[]string{"MISMATCH against " + tdx.Name, `the TD booted with "` + strings.ReplaceAll(cmdline, `"`, `\"`) + ` init=/bin/sh"`, "(+init=/bin/sh)"}},
		{"tdx log of another TD", []string{"--evidence", tdxOK, "--eventlog", tdxEdLog}, 1, []string{"does not replay to the quote's RTMR2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.args = append(append(append([]string{}, key...), c.args...), release)
			runCheckCase(t, c)
		})
	}
	code, so, se := runCLI(t, append(append([]string{"check", "--json"}, key...), "--evidence", snp5, release)...)
	var res struct {
		DevKey      bool `json:"dev_key"`
		Differences []struct{ Parameter, Got string }
	}
	if err := json.Unmarshal([]byte(so), &res); err != nil || code != 1 || !res.DevKey {
		t.Fatalf("--json: exit %d, %v, dev_key %v\n%s%s", code, err, res.DevKey, so, se)
	}
	found := false
	for _, d := range res.Differences {
		found = found || d.Parameter == "vcpus" && d.Got == "5"
	}
	if !found {
		t.Errorf("--json differences %+v: want vcpus 5", res.Differences)
	}
}
