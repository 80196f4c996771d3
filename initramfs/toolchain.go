package initramfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// errNoGo says what to install when no Go toolchain can be found.
var errNoGo = errors.New("no Go toolchain: building the Go programs of the initramfs (the u-root busybox, go_package agents) " +
	"needs the go command; install Go (Debian: apt-get install golang-go, or a release from the Go project) " +
	"and put its bin directory on PATH, or set GOROOT to it")

// lookGo finds the go command as a user's shell would: on PATH, else in
// $GOROOT/bin. It never uses the GOROOT that cocobuild was built with
// (runtime.GOROOT), which is empty in a binary built with -trimpath and
// names a directory of the build machine otherwise.
func lookGo() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return filepath.Abs(p)
	}
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
		return "", fmt.Errorf("%w (GOROOT=%s has no bin/go)", errNoGo, root)
	}
	return "", errNoGo
}

// goToolchain returns the go command and its GOROOT, as `go env GOROOT`
// reports it in the module at dir (the go command knows its own root,
// wherever it is installed, and which toolchain the module selects).
func goToolchain(ctx context.Context, dir string) (goBin, goroot string, err error) {
	goBin, err = lookGo()
	if err != nil {
		return "", "", err
	}
	out, err := goCmd(ctx, dir, "env", "GOROOT")
	if err != nil {
		return "", "", err
	}
	goroot = strings.TrimSpace(string(out))
	if goroot == "" {
		return "", "", fmt.Errorf("%s env GOROOT printed nothing: the Go installation is broken; reinstall Go", goBin)
	}
	return goBin, goroot, nil
}
