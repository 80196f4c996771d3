// Command sample-agent is the small guest agent of cocobuild's sample
// recipe. Started by u-root's init (as uinit) or as /init itself, it:
//
//   - prints one line `cocobuild-sample-agent: ready cmdline="…" tee=…`,
//     where tee lists what the guest offers for attestation: tsm-report
//     (configfs-tsm), sev-guest (/dev/sev-guest), tdx-guest
//     (/dev/tdx_guest), or none;
//   - when the kernel command line names a verity root (Kata's
//     dm-mod.create= form or systemd's roothash= form, see
//     VerityFromCmdline), sets up the dm-verity mapping with
//     device-mapper ioctls (the Debian 6.1 kernel has no CONFIG_DM_INIT),
//     mounts it read-only on /sysroot and prints
//     `cocobuild-sample-agent: release …` with /etc/cocobuild-release,
//     and `cocobuild-sample-agent: os-release …` with the PRETTY_NAME of
//     its /etc/os-release when it has one (a Debian userland);
//   - when cocobuild.test=1 is on the command line, powers the VM off.
//
// Errors are printed as `cocobuild-sample-agent: error: …`.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

const prefix = "cocobuild-sample-agent: "

func main() {
	out := os.Stdout
	if os.Getpid() == 1 {
		mountBasics(out)
	}
	raw, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		fmt.Fprintf(out, "%serror: reading the kernel command line: %v\n", prefix, err)
	}
	c := ParseCmdline(string(raw))
	fmt.Fprintf(out, "%sready cmdline=%q tee=%s\n", prefix, c.Raw, strings.Join(detectTEE(), ","))
	if err := mountVerityRoot(out, c); err != nil && err != ErrNoVerity {
		fmt.Fprintf(out, "%serror: verity root: %v\n", prefix, err)
	}
	if c.Params["cocobuild.test"] == "1" {
		fmt.Fprintf(out, "%spowering off (cocobuild.test=1)\n", prefix)
		powerOff()
	}
	for { // an agent serves until the VM stops
		time.Sleep(time.Hour)
	}
}

// detectTEE lists the attestation interfaces the guest kernel offers.
func detectTEE() []string {
	mountConfigfs()
	var tees []string
	for _, c := range []struct{ name, path string }{
		{"tsm-report", "/sys/kernel/config/tsm/report"},
		{"sev-guest", "/dev/sev-guest"},
		{"tdx-guest", "/dev/tdx_guest"},
	} {
		if _, err := os.Stat(c.path); err == nil {
			tees = append(tees, c.name)
		}
	}
	if len(tees) == 0 {
		return []string{"none"}
	}
	return tees
}

// mountVerityRoot sets up and mounts the verity root the command line
// names, and prints its release file.
func mountVerityRoot(out io.Writer, c Cmdline) error {
	v, err := VerityFromCmdline(c)
	if err != nil {
		return err
	}
	dev, err := setupVerity(v, 30*time.Second)
	if err != nil {
		return err
	}
	const root = "/sysroot"
	fstype, err := mountReadOnly(dev, root)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%sverity root %s (%s, root hash %s) mounted read-only on %s\n", prefix, dev, fstype, v.RootHash, root)
	rel, err := os.ReadFile(root + "/etc/cocobuild-release")
	if err != nil {
		return fmt.Errorf("reading the release file: %w", err)
	}
	fmt.Fprintf(out, "%srelease %s\n", prefix, strings.TrimSpace(string(rel)))
	// A root with a distribution userland names it in os-release(5)
	// (a relative symlink to usr/lib/os-release, resolved below root).
	if osr, err := os.ReadFile(root + "/etc/os-release"); err == nil {
		if name := osReleaseName(string(osr)); name != "" {
			fmt.Fprintf(out, "%sos-release %s\n", prefix, name)
		}
	}
	return nil
}

// osReleaseName is PRETTY_NAME of an os-release file, unquoted (NAME when
// it has none).
func osReleaseName(s string) string {
	vals := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		vals[k] = v
	}
	if v := vals["PRETTY_NAME"]; v != "" {
		return v
	}
	return vals["NAME"]
}
