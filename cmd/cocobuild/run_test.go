package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/launch"
	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/measure/tdx"
)

// launchCmdline has a quote, a comma and spaces, which the printed command
// line must carry through a shell and QEMU's option parser unchanged.
const launchCmdline = `console=ttyS0 panic=-1 cocobuild.note="a b",c`

// buildLaunchRecipe builds a small recipe from golden-vector files: Debian's
// AmdSev OVMF (with a SEV hashes table, so SNP measures the direct-boot
// kernel), Debian's cloud kernel through a kernel block, a tiny initrd
// straight from an input, and sid's generic OVMF for TDX (it direct-boots
// under TCG). It returns the output directory and its manifest.
func buildLaunchRecipe(t *testing.T) (string, *manifest.Manifest) {
	t.Helper()
	vec := testenv.Vectors(t)
	dir := t.TempDir()
	var src strings.Builder
	src.WriteString("recipe {\n  name = \"launch\"\n}\n\n")
	for _, in := range []struct{ name, file string }{
		{"amdsev", "debian-sid_OVMF.amdsev.fd"}, {"ovmf", "debian-sid_OVMF.fd"},
		{"kernel", "vmlinuz-6.1.0-56-cloud-amd64"}, {"initrd", "tiny-initrd.cpio"},
	} {
		p := filepath.Join(vec, "inputs", in.file)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		fmt.Fprintf(&src, "input %q {\n  file   = %q\n  sha256 = %q\n}\n\n", in.name, p, hex.EncodeToString(s[:]))
	}
	fmt.Fprintf(&src, `kernel "guest" {
  image   = input.kernel
  cmdline = %q
}

measure "snp" {
  firmware       = input.amdsev
  kernel         = kernel.guest
  initrd         = input.initrd
  vcpus          = [1, 4]
  vcpu_types     = ["EPYC-Milan", "EPYC-Genoa"]
  guest_features = ["0x1", "0x21"]
  policy         = "0xb0000"
}

measure "tdx" {
  firmware = input.ovmf
  kernel   = kernel.guest
  initrd   = input.initrd
  memory   = ["2G", "3G"]
}
`, launchCmdline)
	if err := os.WriteFile(filepath.Join(dir, "launch.hcl"), []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out,with-comma")
	if code, _, stderr := runCLI(t, "build", "--cache-dir", filepath.Join(dir, "cache"), "-o", out, dir); code != 0 {
		t.Fatalf("build: exit %d\n%s", code, stderr)
	}
	m, err := manifest.Read(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Measurements) != 8+2 {
		t.Fatalf("the recipe gave %d measurements, want 10", len(m.Measurements))
	}
	return out, m
}

// shSplit has /bin/sh split a printed command line into its words.
func shSplit(t *testing.T, command string) []string {
	t.Helper()
	sh := testenv.Tool(t, "sh", "dash")
	out, err := exec.Command(sh, "-c", "printf '%s\\0' "+command).Output()
	if err != nil {
		t.Fatalf("sh could not parse the printed command line: %v\n%s", err, command)
	}
	words := strings.Split(string(out), "\x00")
	return words[:len(words)-1]
}

// qemuOpts splits a QEMU option value (a=b,c=d; ",," is a comma) into
// its first bare word and its key=value pairs.
func qemuOpts(t *testing.T, v string) (string, map[string]string) {
	t.Helper()
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == ',' {
			if i+1 < len(v) && v[i+1] == ',' {
				cur.WriteByte(',')
				i++
				continue
			}
			parts = append(parts, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(v[i])
	}
	parts = append(parts, cur.String())
	first, kv := "", map[string]string{}
	for i, p := range parts {
		k, val, ok := strings.Cut(p, "=")
		if !ok && i == 0 {
			first = p
			continue
		}
		if !ok {
			t.Fatalf("QEMU option %q: %q is not key=value", v, p)
		}
		if _, dup := kv[k]; dup {
			t.Fatalf("QEMU option %q: %s given twice", v, k)
		}
		kv[k] = val
	}
	return first, kv
}

func fileSHA(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return hexSHA(b)
}

func param(e manifest.Measurement, k string) string {
	switch v := e.Params[k].(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

// TestRunPrintMatchesMeasurement prints the SNP and TDX command line of
// every entry of a built recipe, has the shell split it, and checks every
// QEMU option against the manifest entry: the files by their sha256, the
// command line, vCPU type and count, memory, policy, kernel hashes, and the
// wiring of the confidential guest object. No option goes unchecked.
func TestRunPrintMatchesMeasurement(t *testing.T) {
	out, m := buildLaunchRecipe(t)
	for _, e := range m.Measurements {
		t.Run(e.Name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, "run", out, "--tee", e.TEE, "--print", "--measurement", e.Name)
			if code != 0 {
				t.Fatalf("run --print: exit %d\n%s", code, stderr)
			}
			var header []string
			var command strings.Builder
			for _, l := range strings.SplitAfter(stdout, "\n") {
				if strings.HasPrefix(l, "#") {
					header = append(header, l)
				} else {
					command.WriteString(l)
				}
			}
			if len(header) == 0 || !strings.Contains(header[0], "measurement "+e.Name+" ") {
				t.Errorf("the output does not say which measurement it is for:\n%s", stdout)
			}
			argv := shSplit(t, command.String())
			if len(argv) == 0 || argv[0] != "qemu-system-x86_64" {
				t.Fatalf("the command line does not start with qemu-system-x86_64: %q", argv)
			}
			code, jsonOut, stderr := runCLI(t, "--json", "run", out, "--tee", e.TEE, "--print", "--measurement", e.Name)
			if code != 0 {
				t.Fatalf("run --print --json: exit %d\n%s", code, stderr)
			}
			var res struct {
				Plan launch.Plan `json:"plan"`
			}
			if err := json.Unmarshal([]byte(jsonOut), &res); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(res.Plan.Argv, argv); diff != "" {
				t.Errorf("the printed command line and --json argv differ (-json +printed):\n%s", diff)
			}
			if diff := cmp.Diff(e, res.Plan.Measurement); diff != "" {
				t.Errorf("--json names another entry (-manifest +json):\n%s", diff)
			}

			opts := map[string][]string{}
			for i := 1; i < len(argv); i++ {
				switch argv[i] {
				case "-nographic", "-no-reboot":
					opts[argv[i]] = append(opts[argv[i]], "")
				default:
					if !strings.HasPrefix(argv[i], "-") || i+1 == len(argv) {
						t.Fatalf("argument %d %q is not an option with a value: %q", i, argv[i], argv)
					}
					opts[argv[i]] = append(opts[argv[i]], argv[i+1])
					i++
				}
			}
			one := func(k string) string {
				t.Helper()
				if len(opts[k]) != 1 {
					t.Fatalf("%s given %d times, want once: %q", k, len(opts[k]), argv)
				}
				return opts[k][0]
			}
			var want []string
			check := func(what, got, wantV string) {
				t.Helper()
				if got != wantV {
					t.Errorf("%s: got %q, want %q (from the measurement entry)", what, got, wantV)
				}
			}
			check("-accel", one("-accel"), "kvm")
			check("-bios sha256", fileSHA(t, one("-bios")), param(e, "firmware_sha256"))
			check("-kernel sha256", fileSHA(t, one("-kernel")), param(e, "kernel_sha256"))
			check("-initrd sha256", fileSHA(t, one("-initrd")), param(e, "initrd_sha256"))
			check("-append", one("-append"), param(e, "cmdline"))
			check("-append", one("-append"), launchCmdline)
			check("-nic", one("-nic"), "none")
			mem, err := tdx.ParseMemory(one("-m"))
			if err != nil {
				t.Fatal(err)
			}
			machineType, machine := qemuOpts(t, one("-machine"))
			check("-machine type", machineType, "q35")
			objects := map[string]map[string]string{} // qom type → properties
			for _, o := range opts["-object"] {
				typ, kv := qemuOpts(t, o)
				objects[typ] = kv
			}
			if len(objects) != 2 {
				t.Errorf("-object: got %q, want a memory backend and the confidential guest object", opts["-object"])
			}
			var backend, guest string
			switch e.TEE {
			case "snp":
				backend, guest = "memory-backend-memfd", "sev-snp-guest"
				want = []string{"-accel", "-machine", "-object", "-cpu", "-smp", "-m", "-bios", "-kernel", "-initrd", "-append", "-nic", "-nographic", "-no-reboot"}
				check("-cpu", one("-cpu"), param(e, "vcpu_type"))
				check("-smp", one("-smp"), param(e, "vcpus"))
				g := objects[guest]
				check("sev-snp-guest policy", g["policy"], param(e, "policy"))
				check("sev-snp-guest policy", g["policy"], "0xb0000")
				check("sev-snp-guest kernel-hashes", g["kernel-hashes"], "on")
				check("sev-snp-guest cbitpos", g["cbitpos"], "51")
				check("sev-snp-guest reduced-phys-bits", g["reduced-phys-bits"], "1")
				check("memory-backend-memfd share", objects[backend]["share"], "true")
				check("memory-backend-memfd prealloc", objects[backend]["prealloc"], "false")
				if len(g) != 5 || len(objects[backend]) != 4 {
					t.Errorf("unchecked object properties: %q", opts["-object"])
				}
				gf := param(e, "guest_features")
				if notes := strings.Join(res.Plan.Notes, "\n"); (gf == "0x21") != strings.Contains(notes, "DebugSwap (bit 5) is enabled by the host") {
					t.Errorf("guest features %s: the notes do not say how DebugSwap comes about:\n%s", gf, notes)
				}
				if len(machine) != 2 {
					t.Errorf("unchecked -machine properties: %q", one("-machine"))
				}
			case "tdx":
				backend, guest = "memory-backend-ram", "tdx-guest"
				want = []string{"-accel", "-machine", "-object", "-cpu", "-smp", "-m", "-bios", "-kernel", "-initrd", "-append", "-nic", "-nographic", "-no-reboot"}
				measured, err := tdx.ParseMemory(param(e, "memory"))
				if err != nil {
					t.Fatal(err)
				}
				check("-m bytes", fmt.Sprint(mem), fmt.Sprint(measured))
				check("-cpu", one("-cpu"), "host")
				check("-smp", one("-smp"), "1")
				check("-machine kernel-irqchip", machine["kernel-irqchip"], "split")
				if len(objects[guest]) != 1 || len(objects[backend]) != 2 || len(machine) != 3 {
					t.Errorf("unchecked properties: -machine %q, -object %q", one("-machine"), opts["-object"])
				}
			}
			g, b := objects[guest], objects[backend]
			if g == nil || b == nil {
				t.Fatalf("-object: got %q, want %s and %s", opts["-object"], guest, backend)
			}
			check("-machine confidential-guest-support", machine["confidential-guest-support"], g["id"])
			check("-machine memory-backend", machine["memory-backend"], b["id"])
			size, err := tdx.ParseMemory(b["size"])
			if err != nil {
				t.Fatal(err)
			}
			check(backend+" size", fmt.Sprint(size), fmt.Sprint(mem))
			var got []string
			for k := range opts {
				got = append(got, k)
			}
			if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRunRefuses checks the command line errors: exit 2 and a message that
// says what to do.
func TestRunRefuses(t *testing.T) {
	out, m := buildLaunchRecipe(t)
	var tdxName string
	for _, e := range m.Measurements {
		if e.TEE == "tdx" {
			tdxName = e.Name
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--measurement", "snp/nope"}, "tdx/memory=3G,qemu=10.2,order=single-pass,separator=current"},
		{[]string{"--tee", "snp", "--print", "--measurement", tdxName}, "is a tdx measurement, not snp"},
		{[]string{"--print"}, "--print needs --tee"},
		{[]string{"--tee", "sev", "--print"}, "want snp or tdx"},
		{[]string{"--measurement", tdxName, "--memory", "4G"}, "was computed for 3G"},
		{[]string{"--expect", "("}, "--expect"},
	} {
		code, _, stderr := runCLI(t, append([]string{"run", out}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("run %q: exit %d, stderr %q; want exit 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

// TestRunDamagedOutput: a file of OUT that changed or went missing after
// the build is refused (exit 1), naming the file and saying to rebuild;
// nothing is launched from bytes that are not the measured ones.
func TestRunDamagedOutput(t *testing.T) {
	out, m := buildLaunchRecipe(t)
	var tdxName string
	for _, e := range m.Measurements {
		if e.TEE == "tdx" {
			tdxName = e.Name
		}
	}
	kernel := ""
	for _, a := range m.Artifacts {
		if a.Kind == "kernel" {
			kernel = filepath.Join(out, filepath.FromSlash(a.Path))
		}
	}
	if kernel == "" {
		t.Fatal("the build has no kernel artifact")
	}
	args := []string{"run", "--tee", "tdx", "--print", "--measurement", tdxName, out}
	if code, _, stderr := runCLI(t, args...); code != 0 {
		t.Fatalf("before damage: exit %d, stderr %q", code, stderr)
	}
	b, err := os.ReadFile(kernel)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(kernel, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, args...); code != 1 || !strings.Contains(stderr, "changed after the build") || !strings.Contains(stderr, filepath.Base(kernel)) {
		t.Errorf("flipped byte: exit %d, stderr %q; want exit 1 naming the kernel and 'changed after the build'", code, stderr)
	}
	if err := os.Remove(kernel); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, args...); code != 1 || !strings.Contains(stderr, "rebuild") {
		t.Errorf("missing kernel: exit %d, stderr %q; want exit 1 and 'rebuild'", code, stderr)
	}
}

// qemuRunning lists the QEMU processes whose command line mentions s.
func qemuRunning(s string) []string {
	var found []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte("qemu-system")) && bytes.Contains(b, []byte(s)) {
			found = append(found, e.Name())
		}
	}
	return found
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunBootsUnderTCG boots a TDX entry of the small recipe (its SNP
// entries' AmdSev firmware does not boot outside SEV) under QEMU TCG, as
// it was measured, with a synthetic initrd: the kernel's first line ends
// the run with exit 0; a line that never comes fails with exit 1 when the
// timeout passes; a cancelled context (Ctrl-C) kills QEMU.
func TestRunBootsUnderTCG(t *testing.T) {
	testenv.Tool(t, "qemu-system-x86_64", "qemu-system-x86")
	out, _ := buildLaunchRecipe(t)
	entry := "tdx/memory=2G,qemu=10.2,order=single-pass,separator=current"

	code, stdout, stderr := runCLI(t, "run", out, "--measurement", entry, "--expect", `^\[ *[0-9.]+\] Command line: .*`+regexp.QuoteMeta(launchCmdline)+`$`, "--timeout", "180s")
	if code != 0 {
		t.Fatalf("run: exit %d\nstderr:\n%s\nconsole:\n%s", code, stderr, stdout)
	}
	if !strings.Contains(stdout, "Linux version 6.1.0-56-cloud-amd64") {
		t.Errorf("the console does not show the measured kernel:\n%s", stdout)
	}
	if !strings.Contains(stderr, "TDX TEE itself is not emulated") || !strings.Contains(stderr, "measurement "+entry) {
		t.Errorf("stderr does not say which entry boots and that the TEE is not emulated:\n%s", stderr)
	}

	code, stdout, _ = runCLI(t, "--json", "run", out, "--measurement", entry, "--expect", `Linux version`, "--timeout", "180s")
	var res struct {
		OK     bool          `json:"ok"`
		Result launch.Result `json:"result"`
		Plan   launch.Plan   `json:"plan"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("--json run: %v\n%s", err, stdout)
	}
	if code != 0 || !res.OK || !strings.Contains(res.Result.Matched, "Linux version 6.1.0-56-cloud-amd64") || res.Plan.Accel != "tcg" {
		t.Errorf("--json run: exit %d, ok %v, matched %q, accel %q", code, res.OK, res.Result.Matched, res.Plan.Accel)
	}

	start := time.Now()
	code, _, stderr = runCLI(t, "run", out, "--measurement", entry, "--expect", "this line never comes", "--timeout", "2s", "--", "-S")
	if code != 1 || !strings.Contains(stderr, "no console line matched") {
		t.Errorf("run with a line that never comes: exit %d, stderr:\n%s\nwant exit 1 and the timeout", code, stderr)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the 2s timeout took %s", d)
	}
	if p := qemuRunning(out); len(p) > 0 {
		t.Errorf("QEMU still runs after the timeout: pids %v", p)
	}

	ctx, cancel := context.WithCancel(context.Background())
	console := &syncBuffer{}
	done := make(chan int)
	go func() {
		a := &app{stdin: bytes.NewReader(nil), stdout: console, stderr: &bytes.Buffer{}}
		done <- runApp(ctx, a, []string{"run", out, "--measurement", entry})
	}()
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(console.String(), "Linux version") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if len(qemuRunning(out)) == 0 {
		t.Fatalf("no QEMU running before the cancel; console:\n%s", console.String())
	}
	cancel()
	select {
	case code := <-done:
		if code != 1 {
			t.Errorf("cancelled run: exit %d, want 1", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the cancelled run did not return")
	}
	if p := qemuRunning(out); len(p) > 0 {
		t.Errorf("QEMU still runs after the cancel: pids %v", p)
	}
}

// TestRunSample boots the sample recipe as its default measurement
// modelled it (the TDX entry: firmware, kernel, initrd, cmdline with the
// verity root, 2G) under TCG, to the agent's release line from the verity
// root.
func TestRunSample(t *testing.T) {
	testenv.Tool(t, "apt-get", "apt")
	testenv.Tool(t, "qemu-system-x86_64", "qemu-system-x86")
	out := filepath.Join(t.TempDir(), "sample")
	code, stdout, stderr := runCLI(t, "run", "--expect", "release ", "--timeout", "300s", "--cache-dir", testenv.SharedCache(t), "-o", out, "-var", "acpi_qemu="+testenv.TDXQEMU(t), sampleRecipe)
	if code != 0 {
		t.Fatalf("run: exit %d\nstderr:\n%s\nconsole:\n%s", code, stderr, stdout)
	}
	if !strings.Contains(stdout, "cocobuild-sample-agent: release cocobuild sample 0.2.0") {
		t.Errorf("the console lacks the agent's release line:\n%s", stdout)
	}
	if !strings.Contains(stderr, "measurement tdx/vcpus=1,memory=2G,") {
		t.Errorf("the default entry is not the first that boots the kernel (tdx/vcpus=1,memory=2G,…):\n%s", stderr)
	}
}
