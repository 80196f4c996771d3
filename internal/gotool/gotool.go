// Package gotool finds the host's go command, for the steps that build Go
// programs (the initramfs's u-root busybox and agents, the helper guest of
// internal/qemuacpi).
package gotool

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// ErrNoGo says what to install when no Go toolchain can be found.
var ErrNoGo = errors.New("no Go toolchain: building the Go programs of a guest (the u-root busybox, go_package agents, " +
	"the ACPI helper guest) needs the go command; install Go (Debian: apt-get install golang-go, or a release from the Go project) " +
	"and put its bin directory on PATH, or set GOROOT to it")

// Look finds the go command as a user's shell would: on PATH, else in
// $GOROOT/bin. It never uses the GOROOT that cocobuild was built with
// (runtime.GOROOT), which is empty in a binary built with -trimpath and
// names a directory of the build machine otherwise.
func Look() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return filepath.Abs(p)
	}
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
		return "", fmt.Errorf("%w (GOROOT=%s has no bin/go)", ErrNoGo, root)
	}
	return "", ErrNoGo
}
