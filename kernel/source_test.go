package kernel_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/internal/testkinds"
	"github.com/cocobuild/cocobuild/kernel"
)

// KernelTestsEnv names the variable that adds a second cold build of the
// sample's kernel to TestSourceReproducible (10-20 minutes on 2 cores),
// beside the comparison with the committed digests that always runs.
const KernelTestsEnv = "COCOBUILD_KERNEL_TESTS"

// updateGoldenEnv names the variable that rewrites testdata/kernel.golden.json
// from two cold builds that agree (with KernelTestsEnv set).
const updateGoldenEnv = "COCOBUILD_UPDATE_GOLDEN"

// sharedCache is where the kernel is built once for every test (and
// package) that needs it.
func sharedCache(t testing.TB) string { return testenv.SharedCache(t) }

// needBuildTools fails in CI (skips elsewhere) when a kernel cannot be
// built here.
func needBuildTools(t testing.TB) {
	t.Helper()
	needKernelTools(t)
}

// needKernelTools fails in CI (skips elsewhere) when the kernel's
// configuration and build tools are missing.
func needKernelTools(t testing.TB) {
	t.Helper()
	testenv.Tool(t, "apt-get", "apt")
	var missing *kernel.MissingToolsError
	if err := kernel.CheckTools(); errors.As(err, &missing) {
		for i, tool := range missing.Tools {
			testenv.Tool(t, tool, missing.Packages[min(i, len(missing.Packages)-1)])
		}
		if testenv.InCI() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// buildCtx bounds a build by the test's deadline, leaving time to report.
func buildCtx(t *testing.T) context.Context {
	ctx := t.Context()
	if d, ok := t.Deadline(); ok {
		c, cancel := context.WithDeadline(ctx, d.Add(-30*time.Second))
		t.Cleanup(cancel)
		ctx = c
	}
	return ctx
}

// build builds recipe (a file of testdata) into out with the cache at cache.
func build(t *testing.T, recipe, cache, out string, unpinned bool) (*builder.BuildResult, error) {
	t.Helper()
	l, err := builder.Load(filepath.Join("testdata", recipe), testkinds.LoadOptions(cache, input.Options{AllowUnpinned: unpinned}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := buildCtx(t)
	res, err := l.Build(ctx, out, 0, nil)
	if err != nil && ctx.Err() != nil {
		t.Fatalf("the build did not finish before the test's deadline (a cold kernel build takes 10-20 minutes on 2 cores: go test -timeout 40m): %v", err)
	}
	return res, err
}

func kernelStep(t testing.TB, rep *builder.Report) builder.StepReport {
	t.Helper()
	for _, s := range rep.Steps {
		if s.Block == "kernel.guest" && s.Step == "build" {
			return s
		}
	}
	t.Fatal("the report has no kernel.guest:build step")
	return builder.StepReport{}
}

// golden is testdata/kernel.golden.json: the digests of the sample kernel's
// outputs from two cold builds that agreed (in other directories, with
// other caches, on another machine), and the toolchain that made them.
type golden struct {
	Toolchain string            `json:"toolchain"`
	Files     map[string]string `json:"files"`
}

const goldenPath = "testdata/kernel.golden.json"

// kernelFiles is the digest tree (modes and contents) of the kernel's
// outputs below out.
func kernelFiles(t testing.TB, out string) map[string]string {
	t.Helper()
	files := map[string]string{}
	for p, d := range testenv.TreeDigest(t, out) {
		if strings.HasPrefix(p, "kernel/") {
			files[p] = d
		}
	}
	return files
}

// TestSourceReproducible builds the sample's kernel configuration (Debian's
// linux-source-6.12, tinyconfig, common+tdx+snp) into the shared cache
// (cold on a fresh machine, as in CI; cached afterwards) and compares every
// output byte for byte (bzImage, .config, modules, build log) with
// testdata/kernel.golden.json, the digests of two cold builds made
// elsewhere, in other directories with other caches. With
// COCOBUILD_KERNEL_TESTS=1 it builds it cold once more here, with a fresh
// cache in another directory, and compares that too.
func TestSourceReproducible(t *testing.T) {
	needBuildTools(t)
	tmp := t.TempDir()
	outA, outB := filepath.Join(tmp, "a", "out"), filepath.Join(tmp, "somewhere", "else", "out")

	var gold golden
	if b, err := os.ReadFile(goldenPath); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &gold); err != nil {
		t.Fatalf("%s: %v", goldenPath, err)
	}
	toolchain, err := kernel.ToolchainIdentity(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	resA, err := build(t, "kernel.hcl", sharedCache(t), outA, false)
	if err != nil {
		t.Fatal(err)
	}
	stepA := kernelStep(t, resA.Report)
	t.Logf("build a (shared cache %s): kernel step %s in %v", sharedCache(t), stepA.Status, time.Since(start).Round(time.Second))
	gotA := kernelFiles(t, outA)

	if os.Getenv(KernelTestsEnv) != "" {
		start = time.Now()
		resB, err := build(t, "kernel.hcl", filepath.Join(tmp, "cold-cache"), outB, false)
		if err != nil {
			t.Fatal(err)
		}
		stepB := kernelStep(t, resB.Report)
		t.Logf("build b (fresh cache, cold): %v", time.Since(start).Round(time.Second))
		if stepB.Status != builder.StatusRun {
			t.Fatalf("build b: kernel step %s, want %s (a cold build)", stepB.Status, builder.StatusRun)
		}
		if stepA.Key != stepB.Key {
			t.Errorf("step keys differ: %s and %s", stepA.Key, stepB.Key)
		}
		if diff := cmp.Diff(gotA, kernelFiles(t, outB)); diff != "" {
			t.Fatalf("two builds of the kernel differ (-a +b):\n%s", diff)
		}
		if os.Getenv(updateGoldenEnv) != "" && stepA.Status == builder.StatusRun {
			b, _ := json.MarshalIndent(golden{Toolchain: toolchain, Files: gotA}, "", "  ")
			if err := os.WriteFile(goldenPath, append(b, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s from two cold builds", goldenPath)
			gold = golden{Toolchain: toolchain, Files: gotA}
		}
	}
	if toolchain != gold.Toolchain {
		t.Fatalf("the toolchain here differs from the one that made %s, so the bytes may too:\n here: %q\n then: %q\n"+
			"(update it: %s=1 %s=1 with an empty %s, which makes two cold builds)", goldenPath, toolchain, gold.Toolchain,
			KernelTestsEnv, updateGoldenEnv, testenv.SharedCacheEnv)
	}
	if diff := cmp.Diff(gold.Files, gotA); diff != "" {
		t.Errorf("the kernel built here (step %s) differs from the golden digests of %s (-golden +here):\n%s", stepA.Status, goldenPath, diff)
	}

	// What the outputs are.
	var names []string
	for _, a := range resA.Manifest.Artifacts {
		names = append(names, a.Name+" "+a.Kind+" "+a.Path)
	}
	want := []string{
		"kernel.guest kernel kernel/guest/vmlinuz",
		"kernel.guest.config kernel-config kernel/guest/config",
		"kernel.guest.log log kernel/guest/build.log",
		"kernel.guest.modules kernel-modules kernel/guest/modules.tar",
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("artifacts (-want +got):\n%s", diff)
	}
	img, err := os.ReadFile(filepath.Join(outA, "kernel/guest/vmlinuz"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := kernel.Inspect(img)
	if err != nil {
		t.Fatal(err)
	}
	wantVersion := regexp.MustCompile(`^6\.12\.\d+ \(cocobuild@cocobuild\) (.* )?#1 SMP (.* )?Thu Jan  1 00:00:00 UTC 1970$`)
	if !wantVersion.MatchString(info.Version) {
		t.Errorf("kernel version %q, want a match of %s", info.Version, wantVersion)
	}
	if m := resA.Manifest.Artifacts[0].Extra; m["release"] != info.Release || m["built_from"] != "source" {
		t.Errorf("manifest: release %v, built_from %v; want %s, source", m["release"], m["built_from"], info.Release)
	}
	config, err := os.ReadFile(filepath.Join(outA, "kernel/guest/config"))
	if err != nil {
		t.Fatal(err)
	}
	for _, opt := range []string{"CONFIG_DM_INIT=y", "CONFIG_DM_VERITY=y", "CONFIG_CRYPTO_SHA256_SSSE3=y", "CONFIG_INTEL_TDX_GUEST=y", "CONFIG_TDX_GUEST_DRIVER=y",
		"CONFIG_AMD_MEM_ENCRYPT=y", "CONFIG_SEV_GUEST=y", "CONFIG_TSM_REPORTS=y", "CONFIG_EROFS_FS=y", "CONFIG_VIRTIO_VSOCKETS=y",
		"CONFIG_LOCALVERSION=\"\"", "# CONFIG_MODULE_SIG is not set", "CONFIG_FW_CFG_SYSFS=y"} {
		if !bytes.Contains(config, []byte("\n"+opt+"\n")) {
			t.Errorf(".config lacks %s", opt)
		}
	}
	mods := tarNames(t, filepath.Join(outA, "kernel/guest/modules.tar"))
	if !mods["kernel/drivers/block/loop.ko"] || !mods["modules.builtin"] || mods["build"] {
		t.Errorf("modules.tar: loop.ko %v, modules.builtin %v, build link %v; want true, true, false",
			mods["kernel/drivers/block/loop.ko"], mods["modules.builtin"], mods["build"])
	}
	log, err := os.ReadFile(filepath.Join(outA, "kernel/guest/build.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"== tar -xf $TARBALL -C $WORK/extract", "== make O=$WORK/linux/cocobuild-obj ARCH=x86_64", "olddefconfig", "  CC      kernel/fork.o", "arch/x86/boot/bzImage is ready"} {
		if !bytes.Contains(log, []byte(w)) {
			t.Errorf("build.log lacks %q", w)
		}
	}
	for _, dir := range []string{tmp, sharedCache(t)} {
		if bytes.Contains(log, []byte(dir)) {
			t.Errorf("build.log names the directory %s", dir)
		}
	}
}

// tarNames lists the names of a tar archive and checks the reproducible
// header fields.
func tarNames(t testing.TB, p string) map[string]bool {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names := map[string]bool{}
	tr := tar.NewReader(f)
	prev := ""
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if name <= prev {
			t.Errorf("%s: entry %q after %q: not sorted", p, name, prev)
		}
		prev = name
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || h.ModTime.Unix() != 0 {
			t.Errorf("%s: %s: uid %d gid %d uname %q gname %q mtime %v; want 0, 0, empty, empty, the epoch", p, h.Name, h.Uid, h.Gid, h.Uname, h.Gname, h.ModTime)
		}
		names[name] = true
	}
	return names
}

// TestUnsatisfiedFragment gives tinyconfig a fragment whose options lack
// their dependencies: the build stops after olddefconfig with an error
// naming each option, its requested and resolved values and the Kconfig
// line of the dependency it lacks.
func TestUnsatisfiedFragment(t *testing.T) {
	needKernelTools(t) // olddefconfig only: no kernel is built
	_, err := build(t, "unsatisfied.hcl", sharedCache(t), filepath.Join(t.TempDir(), "out"), true)
	var ue *kernel.UnsatisfiedError
	if !errors.As(err, &ue) {
		t.Fatalf("build error %v, want an *kernel.UnsatisfiedError", err)
	}
	t.Logf("the error:\n%v", err)
	got := map[string]kernel.Unsatisfied{}
	for _, o := range ue.Options {
		got[o.Option] = o
	}
	tests := []struct {
		option  string
		line    int
		reasons []string // each must be part of one reason
	}{
		{"CONFIG_INTEL_TDX_GUEST", 3, []string{
			"arch/x86/Kconfig:", ": if HYPERVISOR_GUEST — lacks HYPERVISOR_GUEST is not set, which no fragment sets",
			"depends on X86_X2APIC — lacks X86_X2APIC is not set", "depends on EFI_STUB — lacks EFI_STUB is not set",
			"depends on PARAVIRT — lacks PARAVIRT is not set"}},
		{"CONFIG_VIRTIO_BLK", 4, []string{"drivers/block/Kconfig:", "lacks BLK_DEV is not set", "depends on VIRTIO — lacks VIRTIO is not set"}},
	}
	if len(got) != len(tests) {
		t.Errorf("%d options reported, want %d", len(got), len(tests))
	}
	for _, tc := range tests {
		o, ok := got[tc.option]
		if !ok {
			t.Errorf("%s not reported", tc.option)
			continue
		}
		if o.Requested != "y" || o.Resolved != "n" || o.Fragment != "input.unsatisfiable" || o.Line != tc.line {
			t.Errorf("%s: requested %q resolved %q fragment %q line %d; want y, n, input.unsatisfiable, %d", tc.option, o.Requested, o.Resolved, o.Fragment, o.Line, tc.line)
		}
		all := strings.Join(o.Reasons, "\n")
		for _, r := range tc.reasons {
			if !strings.Contains(all, r) {
				t.Errorf("%s: reasons lack %q:\n%s", tc.option, r, all)
			}
		}
	}
}

// qemu boots a kernel and initramfs under QEMU (TCG) until it powers off
// and returns the console.
func qemu(t *testing.T, kernelPath, initrd, cmdline string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	args := append([]string{"-m", "512M", "-nic", "none", "-nographic", "-no-reboot",
		"-kernel", kernelPath, "-initrd", initrd, "-append", cmdline}, extra...)
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	console := strings.ReplaceAll(out.String(), "\r", "")
	if ctx.Err() != nil {
		t.Fatalf("the guest did not power off within 3 minutes; console:\n%s", console)
	}
	if err != nil {
		t.Fatalf("qemu: %v; console:\n%s", err, console)
	}
	t.Logf("powered off after %v", time.Since(start).Round(100*time.Millisecond))
	return console
}

// TestSourceBoots boots the kernel (from the shared cache when
// TestSourceReproducible ran) under QEMU TCG: with the tests' own /init
// (which also mounts a dm-verity erofs root that the kernel set up from
// dm-mod.create=), and with the sample's u-root init and agent, which
// loads the kernel's own loop module.
func TestSourceBoots(t *testing.T) {
	needBuildTools(t)
	testenv.Tool(t, "go", "golang-go")
	testenv.Tool(t, "qemu-system-x86_64", "qemu-system-x86")
	testenv.Tool(t, "mkfs.erofs", "erofs-utils")
	testenv.Tool(t, "veritysetup", "cryptsetup-bin")
	tmp := t.TempDir()
	out := filepath.Join(tmp, "out")
	res, err := build(t, "boot.hcl", sharedCache(t), out, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel step: %s", kernelStep(t, res.Report).Status)
	vmlinuz := filepath.Join(out, "kernel/guest/vmlinuz")
	var tiny, agent string
	for _, a := range res.Manifest.Artifacts {
		switch a.Name {
		case "initramfs.tiny":
			tiny = filepath.Join(out, a.Path)
		case "initramfs.agent":
			agent = filepath.Join(out, a.Path)
		}
	}
	if tiny == "" || agent == "" {
		t.Fatalf("the manifest lacks an initramfs: tiny %q agent %q", tiny, agent)
	}
	base := "console=ttyS0 panic=-1 cocobuild.test=1"
	release := regexp.MustCompile(`(?m)^cocobuild-kernel-test: ready release=(6\.12\.\d+) tee=(\S*)$`)

	t.Run("tiny init", func(t *testing.T) {
		console := qemu(t, vmlinuz, tiny, base)
		m := release.FindStringSubmatch(console)
		if m == nil {
			t.Fatalf("no ready line; console:\n%s", console)
		}
		if m[2] != "tsm-report" {
			t.Errorf("tee=%s, want tsm-report (configfs-tsm built in; no TEE device under TCG)", m[2])
		}
		if !strings.Contains(console, "Linux version "+m[1]+" (cocobuild@cocobuild)") {
			t.Errorf("the console lacks the kernel banner; console:\n%s", console)
		}
	})

	t.Run("dm-mod.create verity root", func(t *testing.T) {
		root := verityRoot(t, tmp, "cocobuild-kernel-test 6.12")
		// -cpu max offers AVX2 (TCG), so verity takes the x86 SHA-256.
		console := qemu(t, vmlinuz, tiny, base+" "+root.kata, "-cpu", "max",
			"-drive", "file="+root.data+",format=raw,if=virtio,readonly=on",
			"-drive", "file="+root.tree+",format=raw,if=virtio,readonly=on")
		if !regexp.MustCompile(`device-mapper: verity: sha256 using shash "sha256-(avx2|ni|avx|ssse3)"`).MatchString(console) {
			t.Errorf("verity does not use the x86 SHA-256 (CONFIG_CRYPTO_SHA256_SSSE3); console:\n%s", console)
		}
		for _, w := range []string{
			"device-mapper: ioctl: dm-0 (root) is ready",
			"cocobuild-kernel-test: dm-0 root",
			"cocobuild-kernel-test: release cocobuild-kernel-test 6.12",
		} {
			if !strings.Contains(console, w) {
				t.Errorf("the console lacks %q; console:\n%s", w, console)
			}
		}
	})

	t.Run("wrong root hash", func(t *testing.T) {
		root := verityRoot(t, filepath.Join(tmp, "bad"), "cocobuild-kernel-test 6.12")
		cmdline := base + " " + strings.Replace(root.kata, root.hash, strings.Repeat("0", len(root.hash)), 1)
		console := qemu(t, vmlinuz, tiny, cmdline,
			"-drive", "file="+root.data+",format=raw,if=virtio,readonly=on",
			"-drive", "file="+root.tree+",format=raw,if=virtio,readonly=on")
		if strings.Contains(console, "cocobuild-kernel-test: release") {
			t.Errorf("a root with a wrong hash was read; console:\n%s", console)
		}
		if !strings.Contains(console, "cocobuild-kernel-test: error: ") {
			t.Errorf("no error reading the root with a wrong hash; console:\n%s", console)
		}
	})

	t.Run("sample agent", func(t *testing.T) {
		// u-root's init lowers the console log level; ignore_loglevel keeps
		// the module's "loaded" line.
		cmdline := base + " ignore_loglevel"
		console := qemu(t, vmlinuz, agent, cmdline)
		if !regexp.MustCompile(`(?m)^cocobuild-sample-agent: ready cmdline="` + regexp.QuoteMeta(cmdline) + `" tee=tsm-report$`).MatchString(console) {
			t.Errorf("no ready line with tee=tsm-report; console:\n%s", console)
		}
		if !strings.Contains(console, "loop: module loaded") {
			t.Errorf("u-root's init did not load the kernel's own loop module; console:\n%s", console)
		}
	})
}

type verityImage struct {
	data, tree, hash string
	kata             string // dm-mod.create= for the kernel (CONFIG_DM_INIT)
}

// verityRoot makes an erofs image with /etc/cocobuild-release and its
// dm-verity hash tree with the real tools, and the dm-mod.create= argument
// that maps them as "root".
func verityRoot(t testing.TB, dir, release string) verityImage {
	t.Helper()
	src := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(src, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "etc", "cocobuild-release"), []byte(release+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Enough data blocks for a hash tree with a level.
	if err := os.WriteFile(filepath.Join(src, "filler"), bytes.Repeat([]byte("cocobuild "), 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	v := verityImage{data: filepath.Join(dir, "root.erofs"), tree: filepath.Join(dir, "root.verity")}
	if out, err := exec.Command("mkfs.erofs", "-T0", "--all-root", v.data, src).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.erofs: %v: %s", err, out)
	}
	out, err := exec.Command("veritysetup", "format", "--no-superblock", v.data, v.tree).CombinedOutput()
	if err != nil {
		t.Fatalf("veritysetup format: %v: %s", err, out)
	}
	field := func(name string) string {
		m := regexp.MustCompile(`(?m)^` + name + `:\s+(\S+)`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("veritysetup format printed no %s:\n%s", name, out)
		}
		return string(m[1])
	}
	v.hash = field("Root hash")
	st, err := os.Stat(v.data)
	if err != nil {
		t.Fatal(err)
	}
	blocks := st.Size() / 4096
	// name,uuid,minor,flags,table: start length verity version data hash
	// data_block_size hash_block_size data_blocks hash_start algorithm
	// root_hash salt.
	table := strings.Join([]string{"0", strconv.FormatInt(blocks*8, 10), "verity", field("Hash type"), "/dev/vda", "/dev/vdb",
		"4096", "4096", strconv.FormatInt(blocks, 10), "0", field("Hash algorithm"), v.hash, field("Salt")}, " ")
	v.kata = `dm-mod.create="root,,,ro,` + table + `" dm-mod.waitfor=/dev/vda,/dev/vdb`
	return v
}
