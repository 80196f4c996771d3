package initramfs

import (
	"context"
	"fmt"
	"strings"

	"github.com/cocobuild/cocobuild/internal/gotool"
)

// goToolchain returns the go command and its GOROOT, as `go env GOROOT`
// reports it in the module at dir (the go command knows its own root,
// wherever it is installed, and which toolchain the module selects).
func goToolchain(ctx context.Context, dir string) (goBin, goroot string, err error) {
	goBin, err = gotool.Look()
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
