package initramfs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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
	"github.com/cocobuild/cocobuild/initramfs"
	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/internal/testkinds"
)

const (
	kernelRelease = "6.1.0-56-cloud-amd64"
	ovmfPath      = "/usr/share/ovmf/OVMF.fd"
)

// recipe is an initramfs like the sample's: u-root's init and shell, the
// sample agent, the modules for a virtio verity root, one extra file.
func recipe(module string) string {
	return fmt.Sprintf(`recipe {
  name = "initramfs-test"
}

input "modules" {
  deb         = "linux-image-%[1]s"
  version     = "6.1.192-2"
  extract_dir = "lib/modules/%[1]s"
  sha256      = "e7d02b943971edcb8790e256c02cfab3bca6c3d37c1bf25392a57c71300615ee"
}

initramfs "agent" {
  go_module = %[2]q
  uroot {
    commands = ["core/init", "core/gosh", "core/ls", "core/cat"]
  }
  agent {
    package = "./cmd/sample-agent"
    path    = "/usr/bin/agent"
  }
  modules {
    from = input.modules
    load = ["virtio_pci", "virtio_blk", "dm-verity", "erofs"]
  }
  file "/etc/hostname" {
    content = "guest\n"
  }
  compression = "zstd"
}
`, kernelRelease, module)
}

// moduleRoot is the cocobuild module: the agent and u-root build there.
func moduleRoot(t testing.TB) string {
	d, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d, "go.mod")); err != nil {
		t.Fatal(err)
	}
	return d
}

// build writes the recipe into dir and builds it with the cache at cache.
func build(t testing.TB, dir, cache string) (image string, ran int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rp := filepath.Join(dir, "recipe.hcl")
	if err := os.WriteFile(rp, []byte(recipe(moduleRoot(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := builder.Load(rp, testkinds.LoadOptions(cache, input.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.Build(context.Background(), filepath.Join(dir, "out"), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range res.Manifest.Artifacts {
		if a.Kind == "initramfs" {
			return filepath.Join(res.OutDir, filepath.FromSlash(a.Path)), res.Report.Ran()
		}
	}
	t.Fatal("the manifest lists no initramfs artifact")
	return "", 0
}

func fileSHA(t testing.TB, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func needTools(t testing.TB) {
	testenv.Tool(t, "go", "golang-go")
	testenv.Tool(t, "apt-get", "apt")
	testenv.Tool(t, "qemu-system-x86_64", "qemu-system-x86")
	testenv.Tool(t, "cpio", "cpio")
	testenv.Tool(t, "zstd", "zstd")
	testenv.Tool(t, "mkfs.erofs", "erofs-utils")
	testenv.Tool(t, "veritysetup", "cryptsetup-bin")
	testenv.Tool(t, "sgdisk", "gdisk")
	if _, err := os.Stat(ovmfPath); err != nil {
		if testenv.InCI() {
			t.Fatalf("%s not found: apt-get install ovmf", ovmfPath)
		}
		t.Skipf("%s not found: apt-get install ovmf", ovmfPath)
	}
}

// TestReproducibleAndBoots builds the initramfs cold in one directory, warm
// in another and cold again in a third with a fresh cache, checks the
// three are identical, reads it with cpio -t and boots it under QEMU with
// SeaBIOS and with OVMF, with and without a dm-verity root.
func TestReproducibleAndBoots(t *testing.T) {
	needTools(t)
	kernel := testenv.VectorFile(t, "inputs/vmlinuz-"+kernelRelease)
	if _, err := os.Stat(kernel); err != nil {
		t.Fatalf("the Debian cloud kernel: %v", err)
	}
	tmp := t.TempDir()
	start := time.Now()
	imgA, ranA := build(t, filepath.Join(tmp, "a"), filepath.Join(tmp, "cache1"))
	t.Logf("cold build: %d steps in %v", ranA, time.Since(start))
	start = time.Now()
	imgB, ranB := build(t, filepath.Join(tmp, "b"), filepath.Join(tmp, "cache1"))
	t.Logf("warm build in another directory: %d steps in %v", ranB, time.Since(start))
	if ranA != 4 || ranB != 0 {
		t.Errorf("steps run: cold %d, warm %d; want 4 (modules, busybox, agent, image) and 0", ranA, ranB)
	}
	sumA, sumB := fileSHA(t, imgA), fileSHA(t, imgB)
	if sumA != sumB {
		t.Errorf("warm build in another directory: sha256 %s, cold %s", sumB, sumA)
	}
	manifest := func(dir string) string {
		b, err := os.ReadFile(filepath.Join(tmp, dir, "out", "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if diff := cmp.Diff(manifest("a"), manifest("b")); diff != "" {
		t.Errorf("manifest.json of the cold and warm builds differ (-cold +warm):\n%s", diff)
	}
	if !strings.Contains(manifest("a"), `"dm_mod"`) {
		t.Errorf("manifest.json does not list the resolved modules:\n%s", manifest("a"))
	}
	if testing.Short() {
		t.Log("-short: no second cold build")
	} else {
		start = time.Now()
		imgC, _ := build(t, filepath.Join(tmp, "c"), filepath.Join(tmp, "cache2"))
		t.Logf("second cold build with a fresh cache: %v", time.Since(start))
		if sumC := fileSHA(t, imgC); sumC != sumA {
			t.Errorf("cold builds differ: sha256 %s and %s", sumA, sumC)
		}
	}
	t.Logf("initramfs sha256 %s", sumA)

	img, err := os.ReadFile(imgA)
	if err != nil {
		t.Fatal(err)
	}
	listing, err := initramfs.Inspect(img)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]initramfs.Entry{}
	var names []string
	for _, e := range listing.Entries {
		byName[e.Name] = e
		names = append(names, e.Name)
		if e.UID != 0 || e.GID != 0 || e.MTime != 0 {
			t.Errorf("%s: uid %d gid %d mtime %d, want 0 0 0", e.Name, e.UID, e.GID, e.MTime)
		}
	}
	for name, typ := range map[string]string{
		"init": "symlink", "bbin/bb": "file", "bin/uinit": "symlink", "usr/bin/agent": "file", "dev/console": "char",
		"lib/modules/" + kernelRelease + "/kernel/drivers/md/dm-verity.ko": "file",
		"lib/modules/" + kernelRelease + "/kernel/drivers/md/dm-mod.ko":    "file", // a dependency
		"lib/modules/" + kernelRelease + "/modules.dep":                    "file",
		"lib/modules-load.d/cocobuild.conf":                                "file",
	} {
		if got := byName[name].Type; got != typ {
			t.Errorf("/%s: type %q, want %q", name, got, typ)
		}
	}

	// GNU cpio reads the (decompressed) archive and finds the same names.
	raw, err := exec.Command("zstd", "-dc", imgA).Output()
	if err != nil {
		t.Fatalf("zstd -dc: %v", err)
	}
	cmd := exec.Command("cpio", "-t", "--quiet")
	cmd.Stdin = bytes.NewReader(raw)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cpio -t: %v", err)
	}
	if diff := cmp.Diff(names, strings.Split(strings.TrimSpace(string(out)), "\n")); diff != "" {
		t.Errorf("cpio -t names (-Inspect +cpio):\n%s", diff)
	}

	root := verityRoot(t, tmp, "cocobuild-test 1.2.3")
	tests := []struct {
		name        string
		firmware    []string
		disks       int // 0 none, 1 data and tree as two disks, 2 one GPT disk
		cmdline     string
		wantRelease bool
		wantError   string
	}{
		{"seabios", nil, 0, "console=ttyS0 panic=-1 quiet cocobuild.test=1", false, ""},
		{"ovmf verity kata", []string{"-bios", ovmfPath}, 1, "console=ttyS0 panic=-1 quiet cocobuild.test=1 " + root.kata, true, ""},
		{"seabios verity systemd", nil, 1, "console=ttyS0 panic=-1 quiet cocobuild.test=1 " + root.systemd, true, ""},
		{"seabios verity partuuid", nil, 2, "console=ttyS0 panic=-1 quiet cocobuild.test=1 " + root.partUUID, true, ""},
		{"seabios verity wrong hash", nil, 1, "console=ttyS0 panic=-1 quiet cocobuild.test=1 " + strings.Replace(root.systemd, "roothash="+root.hash[:8], "roothash=00000000", 1), false, "verity root"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // two boots at a time: TCG runs a guest on one core
			args := append([]string{"-m", "512M", "-nic", "none", "-nographic", "-no-reboot", "-kernel", kernel, "-initrd", imgA, "-append", tc.cmdline}, tc.firmware...)
			switch tc.disks {
			case 2:
				args = append(args, "-drive", "file="+root.disk+",format=raw,if=virtio,readonly=on")
			case 1:
				args = append(args, "-drive", "file="+root.data+",format=raw,if=virtio,readonly=on", "-drive", "file="+root.tree+",format=raw,if=virtio,readonly=on")
			}
			start := time.Now()
			lines := bootQEMU(t, args, 150*time.Second)
			t.Logf("powered off after %v", time.Since(start).Round(100*time.Millisecond))
			ready := regexp.MustCompile(`^cocobuild-sample-agent: ready cmdline="(.*)" tee=(\S+)$`)
			var gotReady, gotRelease, gotError string
			for _, l := range lines {
				if m := ready.FindStringSubmatch(l); m != nil {
					gotReady = l
					// OVMF's loader appends initrd=…; the rest is ours.
					if got, err := strconv.Unquote(`"` + m[1] + `"`); err != nil || !strings.HasPrefix(got, tc.cmdline) {
						t.Errorf("ready line cmdline %q (%v), want %q", got, err, tc.cmdline)
					}
					if m[2] != "none" {
						t.Errorf("tee=%s, want none (the Debian 6.1 cloud kernel has no TEE guest drivers)", m[2])
					}
				}
				if r, ok := strings.CutPrefix(l, "cocobuild-sample-agent: release "); ok {
					gotRelease = r
				}
				if e, ok := strings.CutPrefix(l, "cocobuild-sample-agent: error: "); ok {
					gotError = e
				}
			}
			if gotReady == "" {
				t.Fatalf("no ready line; console:\n%s", strings.Join(lines, "\n"))
			}
			if tc.wantRelease && gotRelease != "cocobuild-test 1.2.3" {
				t.Errorf("release %q, want %q; console:\n%s", gotRelease, "cocobuild-test 1.2.3", strings.Join(lines, "\n"))
			}
			if !tc.wantRelease && gotRelease != "" {
				t.Errorf("release %q printed, want none", gotRelease)
			}
			if (tc.wantError == "") != (gotError == "") || !strings.Contains(gotError, tc.wantError) {
				t.Errorf("error line %q, want one containing %q", gotError, tc.wantError)
			}
		})
	}
}

// bootQEMU runs QEMU until the guest powers off and returns its console
// lines; it fails the test when the guest does not stop within timeout.
func bootQEMU(t testing.TB, args []string, timeout time.Duration) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	lines := strings.Split(strings.ReplaceAll(out.String(), "\r", ""), "\n")
	if ctx.Err() != nil {
		t.Fatalf("the guest did not power off within %v; console:\n%s", timeout, out.String())
	}
	if err != nil {
		t.Fatalf("qemu: %v; output:\n%s", err, out.String())
	}
	return lines
}

type verityImage struct {
	data, tree, hash string
	kata, systemd    string // kernel arguments naming the root
	// disk is a GPT disk holding data and tree as partitions 1 and 2;
	// partUUID names the root on it by PARTUUID= (issue 6's default).
	disk, partUUID string
}

// verityRoot makes an erofs image holding /etc/cocobuild-release and its
// dm-verity hash tree with the real tools (issue 6 builds these in recipes).
func verityRoot(t testing.TB, dir, release string) verityImage {
	t.Helper()
	src := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(src, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "etc", "cocobuild-release"), []byte(release+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v := verityImage{data: filepath.Join(dir, "root.erofs"), tree: filepath.Join(dir, "root.verity")}
	if out, err := exec.Command("mkfs.erofs", "-T0", "--all-root", v.data, src).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.erofs: %v: %s", err, out)
	}
	out, err := exec.Command("veritysetup", "format", v.data, v.tree).CombinedOutput()
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
	var blocks int
	fmt.Sscan(field("Data blocks"), &blocks)
	v.kata = fmt.Sprintf(`dm-mod.create="root,,,ro,0 %d verity 1 /dev/vda /dev/vdb 4096 4096 %d 1 sha256 %s %s" root=/dev/dm-0`, blocks*8, blocks, v.hash, field("Salt"))
	v.systemd = fmt.Sprintf("roothash=%s systemd.verity_root_data=/dev/vda systemd.verity_root_hash=/dev/vdb", v.hash)

	// The same on a GPT disk, named by partition GUIDs.
	const dataGUID, treeGUID = "6b2a7c1e-0d4f-4e55-9a1b-3c5d7e9f1a2b", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	v.disk = filepath.Join(dir, "disk.img")
	if err := os.WriteFile(v.disk, make([]byte, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sgdisk", "-n", "1:2048:+1M", "-u", "1:"+dataGUID, "-n", "2:0:+1M", "-u", "2:"+treeGUID, v.disk).CombinedOutput(); err != nil {
		t.Fatalf("sgdisk: %v: %s", err, out)
	}
	f, err := os.OpenFile(v.disk, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i, p := range []string{v.data, v.tree} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(b, int64(2048+i*2048)*512); err != nil {
			t.Fatal(err)
		}
	}
	v.partUUID = fmt.Sprintf("roothash=%s systemd.verity_root_data=PARTUUID=%s systemd.verity_root_hash=PARTUUID=%s", v.hash, dataGUID, strings.ToUpper(treeGUID))
	return v
}

// BenchmarkCachedRebuild times a build of the initramfs whose every step is
// cached: loading the recipe, probing the Go sources of the busybox and the
// agent, and writing the output directory.
func BenchmarkCachedRebuild(b *testing.B) {
	needTools(b)
	tmp := b.TempDir()
	build(b, filepath.Join(tmp, "a"), filepath.Join(tmp, "cache"))
	b.ResetTimer()
	for b.Loop() {
		if _, ran := build(b, filepath.Join(tmp, "a"), filepath.Join(tmp, "cache")); ran != 0 {
			b.Fatalf("%d steps ran in a cached rebuild", ran)
		}
	}
}
