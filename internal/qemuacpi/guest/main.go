// Command guest is the /init of the helper guest that internal/qemuacpi
// boots under QEMU: it reads QEMU's ACPI fw_cfg files through the kernel's
// fw_cfg sysfs driver (CONFIG_FW_CFG_SYSFS) and the tables the firmware
// installed (/sys/firmware/acpi/tables), writes each to the serial console
// in a framed, checksummed text form, and powers the machine off.
//
// It uses the standard library only: qemuacpi embeds this file and builds
// it with the host's Go toolchain into a static binary.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// The files the helper reports, by the name it reports them under.
var files = []struct{ name, path string }{
	{"etc/table-loader", "/sys/firmware/qemu_fw_cfg/by_name/etc/table-loader/raw"},
	{"etc/acpi/rsdp", "/sys/firmware/qemu_fw_cfg/by_name/etc/acpi/rsdp/raw"},
	{"etc/acpi/tables", "/sys/firmware/qemu_fw_cfg/by_name/etc/acpi/tables/raw"},
	{"installed/DSDT", "/sys/firmware/acpi/tables/DSDT"},
}

func main() {
	out := os.Stdout
	if err := run(out); err != nil {
		fmt.Fprintf(out, "@@fwcfg error %v\n", err)
	}
	syscall.Sync()
	// Power off; should that fail, -no-reboot turns the reboot into an exit.
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_RESTART)
	for {
		time.Sleep(time.Hour)
	}
}

func run(console *os.File) error {
	for _, m := range []struct{ src, dst, fstype string }{
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
	} {
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			return err
		}
		if err := syscall.Mount(m.src, m.dst, m.fstype, 0, ""); err != nil && err != syscall.EBUSY {
			return fmt.Errorf("mount %s: %w", m.dst, err)
		}
	}
	w := bufio.NewWriter(console)
	defer w.Flush()
	if _, err := os.Stat("/sys/firmware/qemu_fw_cfg"); err != nil {
		return fmt.Errorf("no /sys/firmware/qemu_fw_cfg: the kernel lacks CONFIG_FW_CFG_SYSFS")
	}
	for _, f := range files {
		b, err := os.ReadFile(f.path)
		if err != nil {
			if os.IsNotExist(err) {
				fmt.Fprintf(w, "@@fwcfg missing %s\n", f.name)
				continue
			}
			return fmt.Errorf("read %s: %w", filepath.Clean(f.path), err)
		}
		sum := sha256.Sum256(b)
		fmt.Fprintf(w, "@@fwcfg begin %s %d %x\n", f.name, len(b), sum)
		enc := base64.StdEncoding.EncodeToString(b)
		for len(enc) > 0 {
			n := min(len(enc), 96)
			fmt.Fprintf(w, "@@fwcfg data %s\n", enc[:n])
			enc = enc[n:]
		}
		fmt.Fprintf(w, "@@fwcfg end %s\n", f.name)
	}
	fmt.Fprintln(w, "@@fwcfg done")
	return nil
}
