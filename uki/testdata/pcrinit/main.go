// Command pcrinit is the /init of the UKI boot test's initrd: it prints
// the guest's SHA-256 PCR bank as the kernel's TPM driver exports it
// (/sys/class/tpm/tpm0/pcr-sha256/N) on the console, then powers off.
package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

func main() {
	_ = syscall.Mount("sysfs", "/sys", "sysfs", 0, "")
	_ = syscall.Mount("devtmpfs", "/dev", "devtmpfs", 0, "")
	out := os.Stdout
	if f, err := os.OpenFile("/dev/console", os.O_WRONLY, 0); err == nil {
		out = f
	}
	for range 100 {
		if _, err := os.Stat("/sys/class/tpm/tpm0/pcr-sha256/0"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for n := range 24 {
		b, err := os.ReadFile(fmt.Sprintf("/sys/class/tpm/tpm0/pcr-sha256/%d", n))
		if err != nil {
			fmt.Fprintf(out, "PCR %d error %v\n", n, err)
			continue
		}
		fmt.Fprintf(out, "PCR %d %s\n", n, strings.ToLower(strings.TrimSpace(string(b))))
	}
	// The firmware's event log, hex, for a test to explain a difference.
	_ = syscall.Mount("securityfs", "/sys/kernel/security", "securityfs", 0, "")
	if b, err := os.ReadFile("/sys/kernel/security/tpm0/binary_bios_measurements"); err == nil {
		for i := 0; i < len(b); i += 512 {
			fmt.Fprintf(out, "LOG %x\n", b[i:min(i+512, len(b))])
		}
	}
	fmt.Fprintln(out, "PCR done")
	syscall.Sync()
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
}
