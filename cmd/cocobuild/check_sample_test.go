package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/manifest"
	sevmodel "github.com/cocobuild/cocobuild/measure/sev"
	tdxmodel "github.com/cocobuild/cocobuild/measure/tdx"
	"github.com/cocobuild/cocobuild/publish"
)

// TestCheckSample checks evidence against the sample's own signed release
// (built from the shared cache, verified with the development key): the
// models reproduce its published values and expected event logs from its
// build output first (else the evidence would prove nothing), then an SNP
// report of 5 vCPUs, a TD of 2 vCPUs and 8G, and a TD booted with
// init=/bin/sh (its /proc/cmdline given as the guest shows it) are each
// explained; the published launches match. The worked examples of
// docs/check.md are run as the document shows them and must print what it
// says, and a report that nothing explains (the whole neighbourhood
// searched) is answered within seconds.
func TestCheckSample(t *testing.T) {
	qemu := testenv.TDXQEMU(t)
	cache := testenv.SharedCache(t)
	doc, err := os.ReadFile(filepath.Join(testenv.ModuleRoot(t), "docs", "check.md"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// The build output lies in out/sample, and check runs from dir: the
	// paths the output names are those of docs/check.md's examples.
	out := filepath.Join(dir, "out", "sample")
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

	// TDX: the model of each published launch reproduces its values and
	// its expected event log (the .ccel the measure step wrote); then the
	// 2-vCPU 2G launch with 8G, and with the command line edited.
	td := func(me manifest.Measurement, memory uint64, cmdline string) *tdxmodel.Result {
		t.Helper()
		acpi := "measure/tdx/" + param(me, "acpi_tables") + "/"
		r, err := tdxmodel.Measure(read(bySHA[param(me, "firmware_sha256")]), tdxmodel.Options{Memory: memory, QEMU: tdxmodel.QEMUVersion{Major: 11, Minor: 1},
			ACPIDataSize: 163840, Kernel: read(bySHA[param(me, "kernel_sha256")]), Initrd: read(bySHA[param(me, "initrd_sha256")]), Cmdline: cmdline,
			ACPI: &tdxmodel.ACPITables{TableLoader: read(acpi + "table-loader"), RSDP: read(acpi + "rsdp"), Tables: read(acpi + "tables")}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	published := func(name string, memory uint64) (manifest.Measurement, *tdxmodel.Result) {
		t.Helper()
		me := entry(name)
		r := td(me, memory, param(me, "cmdline"))
		rep := r.Report()
		for k, v := range map[string]string{"mrtd": rep.MRTD.String(), "rtmr0": rep.RTMR0.String(), "rtmr1": rep.RTMR1.String(), "rtmr2": rep.RTMR2.String(), "rtmr3": rep.RTMR3.String()} {
			if want := value(me, k); v != want {
				t.Fatalf("the TDX model gives %s %s for the sample's published launch %s, which publishes %s", k, v, name, want)
			}
		}
		if !bytes.Equal(r.EventLog(), read(param(me, "eventlog"))) {
			t.Fatalf("the TDX model's event log of %s is not the expected log %s of the build", name, param(me, "eventlog"))
		}
		return me, r
	}
	tdx, pub := published("tdx/vcpus=2,memory=2G,qemu=11.1,order=single-pass,separator=current", 2<<30)
	cmdline := param(tdx, "cmdline")
	big, edited := td(tdx, 8<<30, cmdline), td(tdx, 2<<30, cmdline+" init=/bin/sh")
	tdxOK, tdxOKLog := write("ok.dat", tdQuote(t, pub)), filepath.Join(out, filepath.FromSlash(param(tdx, "eventlog")))
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

	// A measurement nothing explains: the whole neighbourhood is searched
	// (vCPUs 1-512, every VMM, CPU type and guest features, with and
	// without the direct-boot blobs), and check still answers in seconds.
	other := snpMeasure(5)
	other[0] ^= 0xff
	start := time.Now()
	runCheckCase(t, checkCase{"snp unexplained", append(append([]string{}, key...), "--evidence", b.report(t, other), release), 1,
		[]string{"no launch in the neighbourhood of the release gives this measurement (vCPUs 1-512", "published kernel sha256: " + param(snp, "kernel_sha256")}})
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("check searched the neighbourhood in %v, want under 10 s", d)
	} else {
		t.Logf("check of a measurement nothing explains: %v", d)
	}

	// docs/check.md's worked examples, run from dir as the document shows
	// them (the evidence beside out/): their output is what it says.
	t.Chdir(dir)
	docTD, _ := published("tdx/vcpus=1,memory=2G,qemu=11.1,order=single-pass,separator=current", 2<<30)
	docCmdline := param(docTD, "cmdline") + " init=/bin/sh"
	docEdited := td(docTD, 2<<30, docCmdline)
	snp5Bytes, err := os.ReadFile(snp5)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"report.bin": snp5Bytes, "quote.dat": tdQuote(t, docEdited), "CCEL": docEdited.EventLog()} {
		write(name, b)
	}
	rel := filepath.Join("out", "sample", "publish", "sample")
	for _, ex := range []struct {
		heading, cmd string
		args         []string
	}{
		{"## Worked example: one vCPU too many", "cocobuild check --evidence report.bin --allow-dev-key --key ~/.cache/cocobuild/dev-key/cosign.pub out/sample/publish/sample",
			[]string{"--evidence", "report.bin", "--allow-dev-key", "--key", devPub, rel}},
		{"## Worked example: a TD booted with an edited command line", `cocobuild check --evidence quote.dat --eventlog CCEL --cmdline "$(cat proc-cmdline)" --allow-dev-key --key ~/.cache/cocobuild/dev-key/cosign.pub out/sample/publish/sample`,
			// The guest's /proc/cmdline, as "$(cat proc-cmdline)" gives it
			// (without its last newline).
			[]string{"--evidence", "quote.dat", "--eventlog", "CCEL", "--cmdline", docCmdline + " initrd=initrd", "--allow-dev-key", "--key", devPub, rel}},
	} {
		t.Run(ex.heading, func(t *testing.T) {
			cmd, lines := docExample(t, string(doc), ex.heading)
			if cmd != ex.cmd {
				t.Errorf("docs/check.md runs\n  %s\nwant\n  %s", cmd, ex.cmd)
			}
			code, so, se := runCLI(t, append([]string{"check"}, ex.args...)...)
			if code != 1 {
				t.Errorf("exit %d, want 1 as docs/check.md says", code)
			}
			matchDocOutput(t, lines, so, se)
		})
	}
}

// docExample reads the example under heading in a Markdown document: the
// first fenced block after it, whose first line is "$ command" (continued
// on the lines after a trailing backslash) and the rest its output.
func docExample(t *testing.T, doc, heading string) (cmd string, output []string) {
	t.Helper()
	_, after, ok := strings.Cut(doc, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("docs/check.md has no heading %q", heading)
	}
	_, block, ok := strings.Cut(after, "```\n")
	if !ok {
		t.Fatalf("docs/check.md has no example under %q", heading)
	}
	block, _, _ = strings.Cut(block, "```")
	lines := strings.Split(strings.TrimSuffix(block, "\n"), "\n")
	if !strings.HasPrefix(lines[0], "$ ") {
		t.Fatalf("the example under %q starts with %q, want a $ command", heading, lines[0])
	}
	var parts []string
	i := 0
	for ; i < len(lines); i++ {
		l := strings.TrimSpace(strings.TrimPrefix(lines[i], "$ "))
		c, cont := strings.CutSuffix(l, "\\")
		parts = append(parts, strings.TrimSpace(c))
		if !cont {
			break
		}
	}
	return strings.Join(parts, " "), lines[i+1:]
}

// matchDocOutput checks that every line of a documented output is a line
// of stdout (in the document's order) or of stderr, where "…" in the
// document stands for what it leaves out; a line of "…" alone stands for
// lines left out.
func matchDocOutput(t *testing.T, doc []string, stdout, stderr string) {
	t.Helper()
	so, se := strings.Split(stdout, "\n"), strings.Split(stderr, "\n")
	next := 0
	var missing []string
	for _, d := range doc {
		if strings.TrimSpace(d) == "…" {
			continue
		}
		parts := strings.Split(d, "…")
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		re := regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
		if i := slices.IndexFunc(so[next:], re.MatchString); i >= 0 {
			next += i + 1
			continue
		}
		if !slices.ContainsFunc(se, re.MatchString) {
			missing = append(missing, d)
		}
	}
	if len(missing) > 0 {
		t.Errorf("docs/check.md shows lines check does not print (in that order):\n%s\ncheck prints:\n%s%s", strings.Join(missing, "\n"), stdout, stderr)
	}
}
