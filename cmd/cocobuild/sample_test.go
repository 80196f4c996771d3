package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/manifest"
)

const sampleRecipe = "../../recipes/sample"

// sampleKernel is the sample's kernel block: built from source (10-20
// minutes cold on 2 cores), so the tests build it once, in the shared test
// cache, and its reproducibility is checked by the kernel package's tests
// against committed digests.
const sampleKernel = "kernel.guest"

// importKernel copies the steps of the sample's kernel, as build a's JSON
// report lists them, from the shared cache into cache.
func importKernel(t testing.TB, reportJSON, cache string) {
	t.Helper()
	var rep struct {
		Steps []builder.StepReport `json:"steps"`
	}
	if err := json.Unmarshal([]byte(reportJSON), &rep); err != nil {
		t.Fatal(err)
	}
	from, err := builder.OpenCache(testenv.SharedCache(t))
	if err != nil {
		t.Fatal(err)
	}
	to, err := builder.OpenCache(cache)
	if err != nil {
		t.Fatal(err)
	}
	if err := builder.ImportBlocks(to, from, rep.Steps, []string{sampleKernel}); err != nil {
		t.Fatal(err)
	}
}

// TestSampleReproducible builds the sample recipe twice, in different
// directories with different caches, and compares the trees: build a with
// the shared test cache (where the kernel is built once), build b with a
// cold cache that holds only the kernel's result, so every other step runs
// again. Then a rebuild runs no step and plan says so, and the sample
// boots.
func TestSampleReproducible(t *testing.T) {
	testenv.Tool(t, "apt-get", "apt")
	qemu := testenv.TDXQEMU(t) // RTMR0: the ACPI tables of the QEMU TDs run on
	cacheA, cacheB := testenv.SharedCache(t), t.TempDir()
	outA, outB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "nested", "b")
	code, stdout, stderr := runCLI(t, "build", "--json", "--cache-dir", cacheA, "-o", outA, "-var", "acpi_qemu="+qemu, sampleRecipe)
	if code != 0 {
		t.Fatalf("build a: exit %d\n%s", code, stderr)
	}
	checkSampleCoverage(t, outA)
	importKernel(t, stdout, cacheB)
	code, stdout, stderr = runCLI(t, "build", "--json", "--cache-dir", cacheB, "-o", outB, "-var", "acpi_qemu="+qemu, sampleRecipe)
	if code != 0 {
		t.Fatalf("build b: exit %d\n%s", code, stderr)
	}
	var repB struct {
		Steps []builder.StepReport `json:"steps"`
	}
	if err := json.Unmarshal([]byte(stdout), &repB); err != nil {
		t.Fatal(err)
	}
	for _, s := range repB.Steps {
		if (s.Status == builder.StatusCached) != (s.Block == sampleKernel) {
			t.Errorf("build b: %s:%s %s; want every step but the kernel's to run", s.Block, s.Step, s.Status)
		}
	}
	if diff := cmp.Diff(testenv.TreeDigest(t, outA), testenv.TreeDigest(t, outB)); diff != "" {
		t.Errorf("two builds differ (-a +b):\n%s", diff)
	}
	code, stdout, stderr = runCLI(t, "plan", "--json", "--cache-dir", cacheA, "-var", "acpi_qemu="+qemu, sampleRecipe)
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s", code, stderr)
	}
	var plan struct {
		ToRun int `json:"to_run"`
		Steps []struct {
			Status string `json:"status"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(stdout), &plan); err != nil {
		t.Fatal(err)
	}
	if plan.ToRun != 0 || len(plan.Steps) == 0 {
		t.Errorf("plan after a build: %d of %d steps to run, want 0", plan.ToRun, len(plan.Steps))
	}
	code, stdout, stderr = runCLI(t, "build", "--json", "--cache-dir", cacheA, "-o", outA, "-var", "acpi_qemu="+qemu, sampleRecipe)
	if code != 0 {
		t.Fatalf("rebuild: exit %d\n%s", code, stderr)
	}
	var res struct {
		Ran      int    `json:"ran"`
		Manifest string `json:"manifest"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	if res.Ran != 0 {
		t.Errorf("rebuild ran %d steps, want 0", res.Ran)
	}
	if stderr != "" {
		t.Errorf("--json build printed to stderr: %q", stderr)
	}
	if _, err := os.Stat(res.Manifest); err != nil {
		t.Errorf("manifest %s: %v", res.Manifest, err)
	}
	if diff := cmp.Diff(testenv.TreeDigest(t, outB), testenv.TreeDigest(t, outA)); diff != "" {
		t.Errorf("rebuild changed the output (-before +after):\n%s", diff)
	}
	bootSample(t, outA)
}

// bootSample boots the sample's kernel and initramfs under QEMU TCG with its
// disk attached: the agent must mount the verity root and print the
// release. With one byte of the root partition flipped, the mount must fail.
func bootSample(t *testing.T, out string) {
	testenv.Tool(t, "qemu-system-x86_64", "qemu-system-x86")
	m, err := manifest.Read(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cmdline string
	for _, a := range m.Artifacts {
		if a.Name == "kernel.guest" {
			cmdline, _ = a.Extra["cmdline"].(string)
		}
	}
	if !strings.Contains(cmdline, "dm-mod.create=") {
		t.Fatalf("the sample's kernel cmdline carries no verity root: %q", cmdline)
	}
	disk, err := os.ReadFile(filepath.Join(out, "disk/guest/disk.raw"))
	if err != nil {
		t.Fatal(err)
	}
	// GPT: the first partition entry (at LBA 2) starts at its first LBA.
	rootStart := int64(binary.LittleEndian.Uint64(disk[2*512+32:])) * 512
	boot := func(t *testing.T, disk string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-m", "512M", "-nic", "none", "-nographic", "-no-reboot",
			"-kernel", filepath.Join(out, "kernel/guest/vmlinuz"), "-initrd", filepath.Join(out, "initramfs/agent/initramfs.cpio.zst"),
			"-append", cmdline+" cocobuild.test=1", "-drive", "file="+disk+",format=raw,if=virtio,readonly=on")
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		err := cmd.Run()
		console := strings.ReplaceAll(buf.String(), "\r", "")
		if ctx.Err() != nil || err != nil {
			t.Fatalf("qemu: %v (%v); console:\n%s", err, ctx.Err(), console)
		}
		return console
	}
	console := boot(t, filepath.Join(out, "disk/guest/disk.raw"))
	if !strings.Contains(console, "cocobuild-sample-agent: ready") || !strings.Contains(console, "cocobuild-sample-agent: release cocobuild sample 0.2.0") {
		t.Errorf("the sample did not boot to its release line; console:\n%s", console)
	}
	bad := append([]byte(nil), disk...)
	bad[rootStart+100] ^= 0x20
	badPath := filepath.Join(t.TempDir(), "flipped.raw")
	if err := os.WriteFile(badPath, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	console = boot(t, badPath)
	if strings.Contains(console, "cocobuild-sample-agent: release") {
		t.Errorf("with a flipped byte in the root partition the verity root still mounted; console:\n%s", console)
	}
	if !strings.Contains(console, "cocobuild-sample-agent: ready") {
		t.Errorf("the agent did not start with the corrupted disk; console:\n%s", console)
	}
}

// BenchmarkNoopRebuild times `cocobuild build` of the sample recipe when
// every step is cached: load, plan, copy into the output, manifest.
func BenchmarkNoopRebuild(b *testing.B) {
	testenv.Tool(b, "apt-get", "apt")
	qemu := testenv.TDXQEMU(b)
	cache, out := testenv.SharedCache(b), filepath.Join(b.TempDir(), "out")
	if code, _, stderr := runCLI(b, "build", "--cache-dir", cache, "-o", out, "-var", "acpi_qemu="+qemu, sampleRecipe); code != 0 {
		b.Fatalf("build: exit %d\n%s", code, stderr)
	}
	b.ResetTimer()
	for b.Loop() {
		if code, _, stderr := runCLI(b, "build", "--json", "--cache-dir", cache, "-o", out, "-var", "acpi_qemu="+qemu, sampleRecipe); code != 0 {
			b.Fatalf("rebuild: exit %d\n%s", code, stderr)
		}
	}
}

// TestSampleRepro runs `cocobuild repro` on the sample recipe, with build a
// in the shared test cache and the kernel's steps reused in build b.
func TestSampleRepro(t *testing.T) {
	testenv.Tool(t, "apt-get", "apt")
	code, stdout, stderr := runCLI(t, "repro", "--cache-dir", testenv.SharedCache(t), "--reuse", sampleKernel, "-var", "acpi_qemu="+testenv.TDXQEMU(t), sampleRecipe)
	if code != 0 {
		t.Fatalf("repro of the sample: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "reproducible:") {
		t.Errorf("repro output lacks the verdict:\n%s", stdout)
	}
	t.Log(stdout)
}

// checkSampleCoverage: every entry of the sample's manifest covers the
// firmware, kernel, initrd and cmdline, and the TDX entries (vCPUs x
// memory) each have their own RTMR0, from the ACPI tables QEMU generated
// for them.
func checkSampleCoverage(t *testing.T, out string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Measurements []struct {
			TEE    string         `json:"tee"`
			Name   string         `json:"name"`
			Params map[string]any `json:"params"`
			Values map[string]any `json:"values"`
		} `json:"measurements"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	rtmr0 := map[any]string{}
	for _, e := range m.Measurements {
		want := map[string]any{"firmware": true, "kernel": true, "initrd": true, "cmdline": true}
		if diff := cmp.Diff(want, e.Params["covers"]); diff != "" {
			t.Errorf("%s: covers (-want +got):\n%s", e.Name, diff)
		}
		if e.TEE != "tdx" {
			continue
		}
		r0, ok := e.Values["rtmr0"]
		if !ok {
			t.Errorf("%s: no rtmr0: %v", e.Name, e.Params["not_computable"])
			continue
		}
		if prev, dup := rtmr0[r0]; dup {
			t.Errorf("%s and %s have the same RTMR0", prev, e.Name)
		}
		rtmr0[r0] = e.Name
	}
	if len(rtmr0) != 4 {
		t.Errorf("%d TDX entries with their own RTMR0, want 4 (vCPUs 1, 2 x memory 2G, 4G)", len(rtmr0))
	}
}
