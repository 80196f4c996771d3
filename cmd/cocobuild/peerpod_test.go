package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// TestPeerpodUKIBoots builds recipes/peerpod (the sample's kernel,
// initramfs and root from the shared cache) and boots its disk with
// Debian's OVMF (4M, Secure Boot off) and a software TPM under QEMU TCG,
// without a network: the firmware starts \EFI\BOOT\BOOTX64.EFI, the stub
// hands the kernel its command line and initramfs, and the agent mounts
// the verity root and prints its release. systemd-measure on the sections
// objcopy extracts from the UKI gives the vTPM measure blocks' pcr11; the
// TD block has MRTD, RTMR1 and RTMR2 but no RTMR0.
func TestPeerpodUKIBoots(t *testing.T) {
	qemu := testenv.Tool(t, "qemu-system-x86_64", "qemu-system-x86")
	swtpm := testenv.Tool(t, "swtpm", "swtpm")
	objcopy := testenv.Tool(t, "objcopy", "binutils")
	measure := "/usr/lib/systemd/systemd-measure"
	code := "/usr/share/OVMF/OVMF_CODE_4M.fd"
	for p, pkg := range map[string]string{measure: "systemd", code: "ovmf", "/usr/share/OVMF/OVMF_VARS_4M.fd": "ovmf"} {
		if _, err := os.Stat(p); err != nil {
			if testenv.InCI() {
				t.Fatalf("%s not found: apt-get install %s", p, pkg)
			}
			t.Skipf("%s not found: apt-get install %s", p, pkg)
		}
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	recipe := filepath.Join(testenv.ModuleRoot(t), "recipes", "peerpod")
	if c, _, stderr := runCLI(t, "build", "--no-publish", "--cache-dir", testenv.SharedCache(t), "-o", out, recipe); c != 0 {
		t.Fatalf("build recipes/peerpod: exit %d\n%s", c, stderr)
	}

	// PCR 11: systemd-measure on the UKI's sections as objcopy reads them.
	uki := filepath.Join(out, "uki", "guest", "uki.efi")
	args := []string{"calculate", "--bank=sha256", "--phase="}
	for _, s := range []string{"linux", "osrel", "cmdline", "initrd"} {
		p := filepath.Join(dir, s)
		if o, err := exec.Command(objcopy, "-O", "binary", "--only-section=."+s, uki, p).CombinedOutput(); err != nil {
			t.Fatalf("objcopy .%s: %v\n%s", s, err, o)
		}
		args = append(args, "--"+s+"="+p)
	}
	o, err := exec.Command(measure, args...).Output()
	if err != nil {
		t.Fatalf("systemd-measure: %v", err)
	}
	want := strings.TrimPrefix(strings.TrimSpace(string(o)), "11:sha256=")
	b, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Measurements []struct {
			TEE    string            `json:"tee"`
			Values map[string]string `json:"values"`
		} `json:"measurements"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Measurements) != 4 {
		t.Fatalf("%d measurements, want 4 (tpm, az-snp-vtpm, az-tdx-vtpm, tdx)", len(m.Measurements))
	}
	for _, e := range m.Measurements {
		if e.TEE == "tdx" {
			// The TD that boots the UKI from the disk: MRTD, RTMR1 and
			// RTMR2 (uki's TestUKIBootPCRs checks their events against a
			// real boot's log); RTMR0 is left out.
			for _, k := range []string{"mrtd", "rtmr1", "rtmr2", "rtmr3"} {
				if len(e.Values[k]) != 96 {
					t.Errorf("tdx %s = %q, want 48 bytes of hex", k, e.Values[k])
				}
			}
			if v, ok := e.Values["rtmr0"]; ok {
				t.Errorf("tdx rtmr0 = %s, want it left out (the boot variables of a disk boot are not modelled)", v)
			}
			continue
		}
		if e.Values["pcr11"] != want {
			t.Errorf("%s pcr11 = %s, want systemd-measure's %s", e.TEE, e.Values["pcr11"], want)
		}
	}

	// Boot the disk.
	vars := filepath.Join(dir, "vars.fd")
	vb, err := os.ReadFile("/usr/share/OVMF/OVMF_VARS_4M.fd")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vars, vb, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sock := filepath.Join(dir, "swtpm.sock")
	tpm := exec.CommandContext(ctx, swtpm, "socket", "--tpm2", "--tpmstate", "dir="+dir, "--ctrl", "type=unixio,path="+sock, "--terminate")
	if err := tpm.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tpm.Process.Kill(); _ = tpm.Wait() }()
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	q := exec.CommandContext(ctx, qemu, "-machine", "q35,accel=tcg", "-m", "1024", "-display", "none", "-serial", "stdio",
		"-monitor", "none", "-nic", "none", "-no-reboot",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+code,
		"-drive", "if=pflash,format=raw,unit=1,file="+vars,
		"-drive", "file="+filepath.Join(out, "disk", "guest", "disk.raw")+",format=raw,if=virtio,snapshot=on",
		"-chardev", "socket,id=chrtpm,path="+sock, "-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-crb,tpmdev=tpm0")
	stdout, err := q.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	q.Stderr = q.Stdout
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	var console strings.Builder
	released := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		fmt.Fprintln(&console, sc.Text())
		if strings.Contains(sc.Text(), "cocobuild-sample-agent: release cocobuild sample") {
			released = true
			break
		}
	}
	_ = q.Process.Kill()
	_ = q.Wait()
	if !released {
		t.Fatalf("the UKI disk did not boot to the agent's release line; console:\n%s", console.String())
	}
	if !strings.Contains(console.String(), `BdsDxe: starting Boot0002 "UEFI Misc Device"`) {
		t.Errorf("the firmware did not start the disk's boot option; console:\n%s", console.String())
	}
}
