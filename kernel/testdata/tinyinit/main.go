// Command tinyinit is the /init of the kernel tests' own initramfs: it
// mounts the pseudo file systems, prints one ready line with what the
// kernel offers, mounts /dev/dm-0 when the kernel made it (dm-mod.create=,
// CONFIG_DM_INIT) and prints its /etc/cocobuild-release, then powers off.
package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const prefix = "cocobuild-kernel-test: "

func main() {
	for _, m := range []struct{ src, dir, fs string }{
		{"devtmpfs", "/dev", "devtmpfs"}, {"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"},
	} {
		os.MkdirAll(m.dir, 0o755)
		if err := unix.Mount(m.src, m.dir, m.fs, 0, ""); err != nil {
			fmt.Printf("%serror: mount %s: %v\n", prefix, m.dir, err)
		}
	}
	if err := unix.Mount("configfs", "/sys/kernel/config", "configfs", 0, ""); err != nil {
		fmt.Printf("%serror: mount configfs: %v\n", prefix, err)
	}
	var u unix.Utsname
	unix.Uname(&u)
	var tee []string
	for _, c := range []struct{ name, path string }{
		{"tsm-report", "/sys/kernel/config/tsm/report"},
		{"sev-guest", "/dev/sev-guest"},
		{"tdx-guest", "/dev/tdx_guest"},
	} {
		if _, err := os.Stat(c.path); err == nil {
			tee = append(tee, c.name)
		}
	}
	fmt.Printf("%sready release=%s tee=%s\n", prefix, unix.ByteSliceToString(u.Release[:]), strings.Join(tee, ","))
	if name, err := os.ReadFile("/sys/block/dm-0/dm/name"); err == nil {
		fmt.Printf("%sdm-0 %s\n", prefix, strings.TrimSpace(string(name)))
		os.MkdirAll("/mnt", 0o755)
		if err := unix.Mount("/dev/dm-0", "/mnt", "erofs", unix.MS_RDONLY, ""); err != nil {
			fmt.Printf("%serror: mount /dev/dm-0: %v\n", prefix, err)
		} else if b, err := os.ReadFile("/mnt/etc/cocobuild-release"); err != nil {
			fmt.Printf("%serror: %v\n", prefix, err)
		} else {
			fmt.Printf("%srelease %s\n", prefix, strings.TrimSpace(string(b)))
		}
	}
	fmt.Printf("%spowering off\n", prefix)
	unix.Sync()
	time.Sleep(100 * time.Millisecond)
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	for {
		time.Sleep(time.Hour)
	}
}
