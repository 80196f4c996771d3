package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/publish/sign"
)

// TestPublishRefusesPartialCoverage builds a recipe that measures SNP (and
// TDX) on Debian 12's OVMF, which has no SEV hashes table: the values vouch
// for the firmware alone. The publish block refuses them with a located
// recipe error (exit 2) and writes nothing; with allow_partial_coverage it
// signs them, and every document and verify say what they lack.
func TestPublishRefusesPartialCoverage(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	out, feedDir := filepath.Join(dir, "out"), filepath.Join(dir, "feed")
	recipe := publishRecipe(t, dir, feedDir, "1.0.0", false)
	src, err := os.ReadFile(recipe)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Count(string(src[:strings.Index(string(src), `publish "pub"`)]), "\n") + 1

	code, stdout, stderr := runCLI(t, "build", "--cache-dir", cache, "-o", out, recipe)
	if code != 2 {
		t.Fatalf("build: exit %d, want 2 (the recipe publishes values that do not vouch for the guest)\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{
		fmt.Sprintf("%s:%d:1: error: Reference values that do not vouch for the guest", recipe, line),
		fmt.Sprintf("%5d | publish \"pub\" {", line), // the snippet
		"covers firmware only; lacks kernel, cmdline",
		"\n    snp/vcpus=1,cpu=EPYC-v4,vmm=QEMU,gf=0x1\n",
		"\n    snp/vcpus=2,cpu=EPYC-v4,vmm=QEMU,gf=0x1\n",
		"\n    tdx/memory=2G,qemu=10.2,order=single-pass,separator=current",
		"no kernel was measured",
		"OVMF.amdsev.fd",
		"allow_partial_coverage = true",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the error lacks %q:\n%s", want, stderr)
		}
	}
	for _, p := range []string{feedDir, filepath.Join(out, "publish")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("a refused publish wrote %s (%v)", p, err)
		}
	}
	// --json: the diagnostic with its place.
	code, stdout, _ = runCLI(t, "--json", "build", "--cache-dir", cache, "-o", out, recipe)
	var res struct {
		OK          bool       `json:"ok"`
		Diagnostics []jsonDiag `json:"diagnostics"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("--json build: %v\n%s", err, stdout)
	}
	if code != 2 || res.OK || len(res.Diagnostics) != 1 || res.Diagnostics[0].File != recipe || res.Diagnostics[0].Line != line || res.Diagnostics[0].Column != 1 {
		t.Errorf("--json build: exit %d, %+v; want exit 2 and one diagnostic at %s:%d:1", code, res, recipe, line)
	}

	// Allowed: signed, saying so everywhere.
	recipe = publishRecipe(t, dir, feedDir, "1.0.0", true)
	code, stdout, stderr = runCLI(t, "build", "--cache-dir", cache, "-o", out, recipe)
	if code != 0 {
		t.Fatalf("build with allow_partial_coverage: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "WARNING: signed with partial coverage") {
		t.Errorf("the build notes do not warn about partial coverage:\n%s", stderr)
	}
	rel := filepath.Join(out, "publish", "pub")
	pubKey := filepath.Join(rel, "cosign.pub")
	pub, err := sign.LoadPublicKey(pubKey, "")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := publish.ReadDocuments(rel, testTEEs)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string][]byte{}
	for _, d := range docs {
		byName[d.Name] = d.Data
	}
	// The statement.
	r, err := publish.VerifyStatement(t.Context(), byName[publish.StatementFile], pub)
	if err != nil {
		t.Fatal(err)
	}
	if !r.PartialCoverage || len(r.Entries) != 3 {
		t.Fatalf("statement: partial_coverage %v, %d entries; want true, 3", r.PartialCoverage, len(r.Entries))
	}
	// SNP without a kernel: the firmware only. TDX on Debian 12's OVMF,
	// which does not measure into RTMRs (assume_rtmr_measurement): nothing
	// past MRTD.
	wantCov := map[string]string{"snp": "covers firmware only; lacks kernel, cmdline", "tdx": "covers nothing; lacks firmware, kernel, cmdline"}
	for _, e := range r.Entries {
		if got, want := e.Coverage.String(), wantCov[e.TEE]; got != want {
			t.Errorf("statement: %s %s, want %s", e.Name, got, want)
		}
	}
	// The RVPS message.
	p, err := publish.DecodeRVPS(byName[publish.RVPSFile])
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := p[publish.RVPSPartialCoverageName].([]any); len(l) != 3 {
		t.Errorf("RVPS %s = %v, want the 3 entries", publish.RVPSPartialCoverageName, p[publish.RVPSPartialCoverageName])
	}
	// The CoRIMs.
	for tee, n := range map[string]int{"snp": 2, "tdx": 1} {
		cv, err := publish.VerifyCoRIM(byName[publish.CoRIMFile(tee)], pub, testTEEs)
		if err != nil {
			t.Fatal(err)
		}
		if len(cv.Coverage) != n {
			t.Fatalf("%s CoRIM: %d coverage entries, want %d", tee, len(cv.Coverage), n)
		}
		for _, c := range cv.Coverage {
			if got := c.String(); got != wantCov[tee] {
				t.Errorf("%s CoRIM coverage note %q, want %q", tee, got, wantCov[tee])
			}
		}
	}
	// verify, text and --json.
	code, stdout, stderr = runCLI(t, "verify", "--allow-dev-key", "--key", pubKey, rel)
	if code != 0 {
		t.Fatalf("verify: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"coverage: PARTIAL coverage (allowed by the publisher): 3 of 3 reference values do not vouch for the firmware, kernel, cmdline",
		"  snp/vcpus=1,cpu=EPYC-v4,vmm=QEMU,gf=0x1: covers firmware only; lacks kernel, cmdline",
		"coverage notes match the statement",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("verify output lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "do not vouch for the whole guest") {
		t.Errorf("verify does not warn about partial coverage:\n%s", stderr)
	}
	code, stdout, _ = runCLI(t, "--json", "verify", "--allow-dev-key", "--key", pubKey, rel)
	var vj struct {
		Release struct {
			Coverage struct {
				Partial bool `json:"partial"`
				Entries []struct {
					Name    string   `json:"name"`
					Partial bool     `json:"partial"`
					Covers  []string `json:"covers"`
					Lacks   []string `json:"lacks"`
				} `json:"entries"`
			} `json:"coverage"`
		} `json:"release"`
	}
	if err := json.Unmarshal([]byte(stdout), &vj); err != nil || code != 0 {
		t.Fatalf("verify --json: exit %d, %v\n%s", code, err, stdout)
	}
	if c := vj.Release.Coverage; !c.Partial || len(c.Entries) != 3 || !c.Entries[0].Partial ||
		fmt.Sprint(c.Entries[0].Covers, c.Entries[0].Lacks) != "[firmware] [kernel cmdline]" {
		t.Errorf("verify --json coverage = %+v, want partial, 3 entries covering the firmware only", c)
	}
	code, stdout, stderr = runCLI(t, "verify", "--allow-dev-key", "--key", pubKey, "dir:"+feedDir)
	if code != 0 || !strings.Contains(stdout, "PARTIAL coverage") {
		t.Errorf("verify feed: exit %d, want 0 and PARTIAL coverage\n%s%s", code, stdout, stderr)
	}
}

// TestPublishFullCoverage measures SNP with the AmdSev OVMF build, which
// checks the direct-boot kernel, initrd and cmdline against its hashes
// table: the entry covers the whole guest, and the recipe publishes without
// any flag. The SNP digest is sev-snp-measure's (vector
// amdsev-k61-initrda-2vcpu-milan). TDX entries cover the whole guest only
// with RTMR0, which needs QEMU's ACPI tables read with a kernel that has
// the fwcfg fragment: the sample's tests check that (checkSampleCoverage).
func TestPublishFullCoverage(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	file := func(rel string) (string, string) {
		p := testenv.VectorFile(t, rel)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return p, hexSHA(b)
	}
	amdsev, amdsevSum := file("inputs/debian-sid_OVMF.amdsev.fd")
	kernel, kernelSum := file("inputs/vmlinuz-6.1.0-56-cloud-amd64")
	initrd, initrdSum := file("inputs/initrd-a.cpio")
	src := fmt.Sprintf(`
input "amdsev" {
  file   = %q
  sha256 = %q
}
input "k" {
  file   = %q
  sha256 = %q
}
input "i" {
  file   = %q
  sha256 = %q
}

measure "snp" {
  firmware   = input.amdsev
  kernel     = input.k
  initrd     = input.i
  cmdline    = "console=ttyS0 root=/dev/vda1"
  vcpus      = 2
  vcpu_types = "EPYC-Milan"
}

publish "full" {
  version = "1.0.0"
  expires = "2099-01-01T00:00:00Z"
  key     = "dev"
}
`, amdsev, amdsevSum, kernel, kernelSum, initrd, initrdSum)
	recipe := filepath.Join(dir, "full.hcl")
	if err := os.WriteFile(recipe, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	code, stdout, stderr := runCLI(t, "build", "--cache-dir", cache, "-o", out, recipe)
	if code != 0 {
		t.Fatalf("build: exit %d\n%s%s", code, stdout, stderr)
	}
	rel := filepath.Join(out, "publish", "full")
	code, stdout, stderr = runCLI(t, "verify", "--allow-dev-key", "--key", filepath.Join(rel, "cosign.pub"), rel)
	if code != 0 || !strings.Contains(stdout, "coverage: all 1 reference values cover the firmware, kernel and cmdline") ||
		strings.Contains(stdout+stderr, "PARTIAL") {
		t.Errorf("verify: exit %d, want 0 and full coverage\n%s%s", code, stdout, stderr)
	}
	msg, err := os.ReadFile(filepath.Join(rel, "rvps.json"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := publish.DecodeRVPS(msg)
	if err != nil {
		t.Fatal(err)
	}
	want := vectorValue(t, "snp-amdsev.json", "amdsev-k61-initrda-2vcpu-milan").(string)
	if got := fmt.Sprint(p["snp_launch_measurement"]); got != "["+want+"]" {
		t.Errorf("snp_launch_measurement %s, want [%s] (sev-snp-measure)", got, want)
	}
	if _, ok := p[publish.RVPSPartialCoverageName]; ok {
		t.Errorf("a full-coverage RVPS payload has %s", publish.RVPSPartialCoverageName)
	}
}
