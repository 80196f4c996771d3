// Command pcrinit is the /init of the UKI boot test's initrd: it prints
// the guest's SHA-256 and SHA-384 PCR banks as the kernel's TPM driver
// exports them (/sys/class/tpm/tpm0/pcr-sha256/N, pcr-sha384/N) and the
// firmware's event log on the console, then powers off.
//
// Kernel messages are silenced first (console log level 1), so that no
// printk lands in the middle of a line; the event log is printed in
// numbered chunks with the total length and SHA-256, so that the test can
// tell a lost or damaged chunk from a wrong log.
package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

func main() {
	_ = syscall.Mount("proc", "/proc", "proc", 0, "")
	_ = os.WriteFile("/proc/sys/kernel/printk", []byte("1\n"), 0)
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
	for _, bank := range []string{"sha256", "sha384"} {
		for n := range 24 {
			b, err := os.ReadFile(fmt.Sprintf("/sys/class/tpm/tpm0/pcr-%s/%d", bank, n))
			if err != nil {
				fmt.Fprintf(out, "PCR %s %d error %v\n", bank, n, err)
				continue
			}
			fmt.Fprintf(out, "PCR %s %d %s\n", bank, n, strings.ToLower(strings.TrimSpace(string(b))))
		}
	}
	// The firmware's event log: "LOG i/n hex" chunks of 512 bytes, then
	// "LOGSUM length sha256".
	_ = syscall.Mount("securityfs", "/sys/kernel/security", "securityfs", 0, "")
	if b, err := os.ReadFile("/sys/kernel/security/tpm0/binary_bios_measurements"); err == nil {
		const chunk = 512
		n := (len(b) + chunk - 1) / chunk
		for i := range n {
			fmt.Fprintf(out, "LOG %d/%d %x\n", i, n, b[i*chunk:min((i+1)*chunk, len(b))])
		}
		fmt.Fprintf(out, "LOGSUM %d %x\n", len(b), sha256.Sum256(b))
	} else {
		fmt.Fprintf(out, "LOG error %v\n", err)
	}
	fmt.Fprintln(out, "PCR done")
	syscall.Sync()
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
}
