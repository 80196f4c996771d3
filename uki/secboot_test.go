package uki_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// TestUKISecureBootRefuses: Debian's OVMF_CODE_4M.secboot.fd with the
// variable store the uki block writes (PK, KEK, db: its db certificate)
// refuses a UKI that is unsigned, and one signed with another db key
// (each built by the same recipe): the firmware says "Access Denied" or
// "Security Violation" on the console for the disk's boot option
// (BdsDxe: failed to load Boot0002 "UEFI Misc Device" ...: Access
// Denied), within a bounded time, and the guest never runs (no "PCR
// done"). TestUKISecureBoot boots the signed
// UKI with the same firmware and variable store.
func TestUKISecureBootRefuses(t *testing.T) {
	qemu := testenv.Tool(t, "qemu-system-x86_64", "qemu-system-x86")
	code := need(t, "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", "ovmf")
	_, signed, _ := buildUKI(t, true)
	_, unsigned, _ := buildUKI(t, false)
	_, otherKey, _ := buildUKI(t, true)
	vars := filepath.Join(signed, "uki", "guest", "OVMF_VARS.fd")
	for _, c := range []struct{ name, out string }{{"unsigned", unsigned}, {"signed with another db key", otherKey}} {
		t.Run(c.name, func(t *testing.T) {
			msg, con := refusedBoot(t, qemu, code, vars, filepath.Join(c.out, "disk", "boot", "disk.raw"))
			if msg == "" {
				t.Fatalf("the firmware did not refuse the UKI (no \"Access Denied\" or \"Security Violation\"); console:\n%s", con)
			}
			if !strings.Contains(msg, `failed to load Boot0002 "UEFI Misc Device"`) {
				t.Errorf("the firmware refused %q, want the disk's boot option Boot0002 \"UEFI Misc Device\"", msg)
			}
			if strings.Contains(con, "PCR done") {
				t.Fatalf("the guest ran; console:\n%s", con)
			}
			t.Logf("firmware: %s", msg)
		})
	}
}

// refusedBoot boots disk with the firmware code and a copy of vars, without
// a TPM, until the firmware refuses an image (the console line with
// "Access Denied" or "Security Violation", returned), the guest powers
// off, or two minutes pass; it returns that line and the console.
func refusedBoot(t *testing.T, qemu, code, vars, disk string) (string, string) {
	t.Helper()
	b, err := os.ReadFile(vars)
	if err != nil {
		t.Fatal(err)
	}
	v := filepath.Join(t.TempDir(), "vars.fd")
	if err := os.WriteFile(v, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	q := exec.CommandContext(ctx, qemu, qemuArgs(code, v, disk)...)
	stdout, err := q.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	q.Stderr = q.Stdout
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = q.Process.Kill(); _ = q.Wait() }()
	var con strings.Builder
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		fmt.Fprintln(&con, l)
		if strings.Contains(l, "Access Denied") || strings.Contains(l, "Security Violation") {
			return strings.TrimSpace(l), con.String()
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintf(&con, "(stopped after %v)\n", 2*time.Minute)
	}
	return "", con.String()
}
