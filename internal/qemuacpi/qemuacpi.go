// Package qemuacpi obtains the ACPI blobs QEMU generates for a VM
// configuration (the fw_cfg files etc/table-loader, etc/acpi/rsdp and
// etc/acpi/tables), which TDVF measures into RTMR0 before it installs the
// tables. They are QEMU's output, so they are taken from QEMU: a helper
// guest — the guest's own firmware and kernel, with a small initramfs whose
// /init reads the files through the kernel's fw_cfg sysfs driver
// (CONFIG_FW_CFG_SYSFS) — boots under TCG with the machine, vCPUs, memory
// and devices of the launch, prints them on the serial console and powers
// off. No TEE is needed: QEMU builds the same tables for the configuration.
//
// As a check that the blobs are what the firmware consumed, the helper also
// reports the DSDT the firmware installed (/sys/firmware/acpi/tables/DSDT);
// it must appear verbatim in etc/acpi/tables (the DSDT holds no pointers
// for the loader to patch).
package qemuacpi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed" // the helper guest's source
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/cocobuild/cocobuild/internal/gotool"
	"github.com/cocobuild/cocobuild/internal/procgroup"
	"github.com/cocobuild/cocobuild/measure/tdx"
)

//go:embed guest/main.go
var guestSource []byte

// DefaultQEMU is the QEMU command used when none is given.
const DefaultQEMU = "qemu-system-x86_64"

// MachineOptions are the -machine options of the helper: q35 with what
// QEMU itself sets for a TD (target/i386/kvm/tdx.c: no SMM, no legacy
// PIC). The TD's kernel-irqchip=split and confidential-guest-support are
// KVM-only and do not change the tables.
const MachineOptions = "q35,smm=off,pic=off"

// TDXMinVersion is the first QEMU release that launches TDs.
func TDXMinVersion() Version { return Version{Major: 10, Minor: 1} }

// DefaultPhysBits is the guest-physical address width the helper gives its
// vCPUs unless told otherwise: what a TD with 5-level EPT (GPAW 1) sees.
// OVMF places the 64-bit PCI window by it and QEMU describes that window in
// the DSDT, so TCG's default (40 bits) gives other tables.
const DefaultPhysBits = 52

// HelperVersion names the helper guest and its command line; bump it when
// either changes what the helper reads.
const HelperVersion = "1"

// Version is a QEMU release.
type Version struct {
	Major, Minor, Micro int
	Full                string // QEMU's --version line, e.g. "11.1.2 (Debian 1:11.1.2+ds-3)"
}

// String is "major.minor.micro".
func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Micro) }

// Less orders versions by major, minor and micro.
func (v Version) Less(w Version) bool {
	if v.Major != w.Major {
		return v.Major < w.Major
	}
	if v.Minor != w.Minor {
		return v.Minor < w.Minor
	}
	return v.Micro < w.Micro
}

var versionLine = regexp.MustCompile(`QEMU emulator version ((\d+)\.(\d+)(?:\.(\d+))?[^\n]*)`)

// ParseVersion reads the first line of `qemu-system-x86_64 --version`.
func ParseVersion(out string) (Version, error) {
	m := versionLine.FindStringSubmatch(out)
	if m == nil {
		return Version{}, fmt.Errorf("not QEMU's --version output: %.80q", out)
	}
	v := Version{Full: strings.TrimSpace(m[1])}
	v.Major, _ = strconv.Atoi(m[2])
	v.Minor, _ = strconv.Atoi(m[3])
	if m[4] != "" {
		v.Micro, _ = strconv.Atoi(m[4])
	}
	return v, nil
}

// Probe runs `QEMU --version` and `-machine help` and returns the release
// and the machine type that q35 stands for (pc-q35-X.Y), which together
// decide the tables QEMU generates.
func Probe(ctx context.Context, qemu string) (Version, string, error) {
	if qemu == "" {
		qemu = DefaultQEMU
	}
	out, err := procgroup.Command(ctx, qemu, "--version").Output()
	if err != nil {
		return Version{}, "", fmt.Errorf("%s --version: %w: install QEMU (Debian: qemu-system-x86) or name a QEMU binary", qemu, err)
	}
	v, err := ParseVersion(string(out))
	if err != nil {
		return Version{}, "", fmt.Errorf("%s: %w", qemu, err)
	}
	out, err = procgroup.Command(ctx, qemu, "-machine", "help").Output()
	if err != nil {
		return Version{}, "", fmt.Errorf("%s -machine help: %w", qemu, err)
	}
	m := regexp.MustCompile(`(?m)^q35\s.*\(alias of ([^)]+)\)`).FindSubmatch(out)
	if m == nil {
		return Version{}, "", fmt.Errorf("%s has no q35 machine type", qemu)
	}
	return v, string(m[1]), nil
}

// Config is the launch whose tables are wanted.
type Config struct {
	QEMU     string // the QEMU command (default DefaultQEMU)
	Firmware string // the firmware file (-bios)
	Kernel   string // a kernel with CONFIG_FW_CFG_SYSFS, e.g. the guest's own
	VCPUs    int
	Memory   uint64 // bytes
	// PhysBits is the vCPUs' guest-physical address width (default
	// DefaultPhysBits).
	PhysBits int
	// Disks is the number of virtio block devices of the launch: PCI
	// devices appear in the DSDT, so the helper attaches as many (empty).
	Disks int
	// Helper is the helper initramfs (BuildHelper).
	Helper string
	// WorkDir holds scratch files (empty disks).
	WorkDir string
	// Timeout bounds the boot (default 3 minutes).
	Timeout time.Duration
	// Log receives QEMU's console output, for diagnostics (may be nil).
	Log io.Writer
}

// Args is the QEMU command line of the helper boot, without the binary.
func (c *Config) Args(disks []string) []string {
	pb := c.PhysBits
	if pb == 0 {
		pb = DefaultPhysBits
	}
	args := []string{"-accel", "tcg", "-machine", MachineOptions, "-cpu", fmt.Sprintf("max,phys-bits=%d", pb),
		"-smp", strconv.Itoa(c.VCPUs), "-m", memArg(c.Memory), "-bios", c.Firmware,
		"-kernel", c.Kernel, "-initrd", c.Helper, "-append", "console=ttyS0 quiet panic=-1"}
	for _, d := range disks {
		args = append(args, "-drive", "file="+d+",format=raw,if=virtio,readonly=on")
	}
	return append(args, "-nic", "none", "-nographic", "-no-reboot")
}

func memArg(b uint64) string {
	switch {
	case b%(1<<30) == 0:
		return fmt.Sprintf("%dG", b>>30)
	case b%(1<<20) == 0:
		return fmt.Sprintf("%dM", b>>20)
	}
	return fmt.Sprintf("%dK", b>>10)
}

// Result is what a helper boot read.
type Result struct {
	Tables tdx.ACPITables
	// InstalledDSDT is the DSDT the firmware installed, found verbatim in
	// Tables.Tables.
	InstalledDSDT []byte
}

// Dump boots the helper guest and returns the blobs it read.
func Dump(ctx context.Context, c Config) (*Result, error) {
	if c.QEMU == "" {
		c.QEMU = DefaultQEMU
	}
	if c.VCPUs < 1 {
		return nil, fmt.Errorf("vCPUs %d: want at least 1", c.VCPUs)
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	var disks []string
	for i := 0; i < c.Disks; i++ {
		d := filepath.Join(c.WorkDir, fmt.Sprintf("disk%d.raw", i))
		if err := os.WriteFile(d, make([]byte, 1<<20), 0o644); err != nil {
			return nil, err
		}
		disks = append(disks, d)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := procgroup.Command(ctx, c.QEMU, c.Args(disks)...)
	var console bytes.Buffer
	out := io.Writer(&console)
	if c.Log != nil {
		out = io.MultiWriter(&console, c.Log)
	}
	cmd.Stdout, cmd.Stderr = out, out
	runErr := cmd.Run()
	files, perr := parseConsole(console.Bytes())
	if perr != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return nil, fmt.Errorf("the ACPI helper guest did not finish within %s (%v); its console ended with:\n%s", timeout, perr, tail(console.Bytes(), 1500))
		}
		if runErr != nil {
			return nil, fmt.Errorf("the ACPI helper guest (QEMU %s): %w; %v; its console ended with:\n%s", c.QEMU, runErr, perr, tail(console.Bytes(), 1500))
		}
		return nil, fmt.Errorf("the ACPI helper guest: %w; its console ended with:\n%s", perr, tail(console.Bytes(), 1500))
	}
	r := &Result{Tables: tdx.ACPITables{
		TableLoader: files["etc/table-loader"],
		RSDP:        files["etc/acpi/rsdp"],
		Tables:      files["etc/acpi/tables"],
	}, InstalledDSDT: files["installed/DSDT"]}
	for name, b := range map[string][]byte{"etc/table-loader": r.Tables.TableLoader, "etc/acpi/rsdp": r.Tables.RSDP, "etc/acpi/tables": r.Tables.Tables} {
		if len(b) == 0 {
			return nil, fmt.Errorf("the ACPI helper guest found no fw_cfg file %s: QEMU %s does not serve it for this machine", name, c.QEMU)
		}
	}
	if r.InstalledDSDT == nil {
		return nil, errors.New("the helper guest found no installed DSDT (/sys/firmware/acpi/tables/DSDT): boot a kernel with ACPI (CONFIG_ACPI) and a firmware that installs QEMU's tables")
	}
	if !containsTable(r.Tables.Tables, r.InstalledDSDT) {
		return nil, errors.New("the DSDT the firmware installed is not in QEMU's etc/acpi/tables: the blobs read are not the ones the firmware used")
	}
	return r, nil
}

// containsTable says whether the ACPI table t (as installed: its checksum
// computed by the firmware's loader) is in blob, where QEMU leaves the
// checksum byte (offset 9) for the loader's ADD_CHECKSUM command.
func containsTable(blob, t []byte) bool {
	if len(t) < 36 || string(t[:4]) == "\x00\x00\x00\x00" {
		return false
	}
	for i := bytes.Index(blob, t[:9]); i >= 0; {
		if i+len(t) <= len(blob) && bytes.Equal(blob[i+10:i+len(t)], t[10:]) {
			return true
		}
		j := bytes.Index(blob[i+1:], t[:9])
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

// parseConsole extracts the framed files from the helper's console output.
func parseConsole(b []byte) (map[string][]byte, error) {
	files := map[string][]byte{}
	var (
		cur     string
		size    int
		sum     string
		payload strings.Builder
		done    bool
	)
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		i := strings.Index(line, "@@fwcfg ")
		if i < 0 {
			continue
		}
		f := strings.Fields(line[i+len("@@fwcfg "):])
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "error":
			return nil, fmt.Errorf("the helper guest failed: %s", strings.Join(f[1:], " "))
		case "missing":
			// A file the firmware or QEMU does not provide; Dump decides.
		case "begin":
			if len(f) != 4 {
				return nil, fmt.Errorf("bad frame %q", line)
			}
			n, err := strconv.Atoi(f[2])
			if err != nil || n < 0 || n > 16<<20 {
				return nil, fmt.Errorf("bad size in %q", line)
			}
			cur, size, sum = f[1], n, f[3]
			payload.Reset()
		case "data":
			if cur == "" || len(f) != 2 {
				return nil, fmt.Errorf("data outside a file: %q", line)
			}
			payload.WriteString(f[1])
		case "end":
			if cur == "" || len(f) != 2 || f[1] != cur {
				return nil, fmt.Errorf("unmatched %q", line)
			}
			data, err := base64.StdEncoding.DecodeString(payload.String())
			if err != nil {
				return nil, fmt.Errorf("%s: %w", cur, err)
			}
			got := sha256.Sum256(data)
			if len(data) != size || hex.EncodeToString(got[:]) != sum {
				return nil, fmt.Errorf("%s arrived damaged (%d bytes, sha256 %x; sent %d bytes, %s)", cur, len(data), got, size, sum)
			}
			files[cur] = data
			cur = ""
		case "done":
			done = true
		}
	}
	if !done {
		return nil, errors.New("the helper guest did not report its files (no \"@@fwcfg done\")")
	}
	return files, nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// BuildHelper builds the helper guest's /init with the host's Go toolchain
// (a static binary; the standard library only, so nothing is downloaded)
// and writes the helper initramfs (newc cpio) to dst.
func BuildHelper(ctx context.Context, dir, dst string) error {
	goBin, err := gotool.Look()
	if err != nil {
		return err
	}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module cocobuild.internal/acpihelper\n\ngo 1.22\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), guestSource, 0o644); err != nil {
		return err
	}
	bin := filepath.Join(dir, "init")
	cmd := procgroup.Command(ctx, goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(cmd.Env, "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=", "GOTOOLCHAIN=local", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the ACPI helper guest: %w\n%s", err, out)
	}
	init, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	recs := []cpio.Record{
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.StaticFile("init", string(init), 0o755),
	}
	cpio.MakeAllReproducible(recs)
	if err := cpio.WriteRecordsAndDirs(w, recs); err != nil {
		return err
	}
	if err := cpio.WriteTrailer(w); err != nil {
		return err
	}
	return os.WriteFile(dst, buf.Bytes(), 0o644)
}
