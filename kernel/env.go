package kernel

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/cocobuild/cocobuild/recipes"
)

// The fixed build environment. Nothing of the host's environment reaches
// the kernel build: no wall-clock time, user, host name, locale, time zone
// or path.
const (
	// BuildPath is the PATH of every command of a kernel build (and of the
	// toolchain probe).
	BuildPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// BuildUser and BuildHost are KBUILD_BUILD_USER and KBUILD_BUILD_HOST.
	BuildUser = "cocobuild"
	BuildHost = "cocobuild"
	// BuildVersion is KBUILD_BUILD_VERSION (the "#1" of uname -v).
	BuildVersion = "1"
	// Arch is the only architecture built so far.
	Arch = "x86_64"
	// objName is the object directory, a direct child of the source tree:
	// Kbuild then names sources relative to it ("../kernel/fork.c").
	objName = "cocobuild-obj"
)

// KbuildTimestamp formats a SOURCE_DATE_EPOCH as KBUILD_BUILD_TIMESTAMP:
// date(1)'s default format in UTC, which the kernel prints in uname -v and
// parses with `date -d` for the built-in initramfs's mtimes.
func KbuildTimestamp(epoch int64) string {
	return time.Unix(epoch, 0).UTC().Format("Mon Jan _2 15:04:05 MST 2006")
}

// tool is a program or header a kernel build needs, with its Debian package.
type tool struct {
	name   string // a program on BuildPath, or a header below an include directory
	pkg    string
	header bool
}

// buildTools are what building a kernel needs on the host.
var buildTools = []tool{
	{name: "gcc", pkg: "gcc"}, {name: "make", pkg: "make"}, {name: "ld", pkg: "binutils"},
	{name: "flex", pkg: "flex"}, {name: "bison", pkg: "bison"}, {name: "bc", pkg: "bc"},
	{name: "perl", pkg: "perl"}, {name: "tar", pkg: "tar"}, {name: "xz", pkg: "xz-utils"},
	{name: "libelf.h", pkg: "libelf-dev", header: true},
	{name: "openssl/opensslv.h", pkg: "libssl-dev", header: true},
}

var includeDirs = []string{"/usr/include", "/usr/local/include", "/usr/include/x86_64-linux-gnu"}

// lookPath finds a program on BuildPath.
func lookPath(name string) (string, bool) {
	for _, d := range filepath.SplitList(BuildPath) {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// MissingToolsError names the build tools that are not installed, with
// the Debian packages that provide them.
type MissingToolsError struct {
	Tools    []string
	Packages []string
}

func (e *MissingToolsError) Error() string {
	return fmt.Sprintf("building a kernel needs %s: apt-get install %s", strings.Join(e.Tools, ", "), strings.Join(e.Packages, " "))
}

// CheckTools reports the build tools that are missing.
func CheckTools() error {
	var e MissingToolsError
	seen := map[string]bool{}
	for _, t := range buildTools {
		found := false
		if t.header {
			for _, d := range includeDirs {
				if _, err := os.Stat(filepath.Join(d, t.name)); err == nil {
					found = true
					break
				}
			}
		} else {
			_, found = lookPath(t.name)
		}
		if !found {
			e.Tools = append(e.Tools, t.name)
			if !seen[t.pkg] {
				seen[t.pkg] = true
				e.Packages = append(e.Packages, t.pkg)
			}
		}
	}
	if len(e.Tools) > 0 {
		return &e
	}
	return nil
}

// ToolchainIdentity returns the first lines of `gcc --version`,
// `ld --version`, `make --version` and `xz --version` (the compressor of
// tinyconfig kernels), run in the build environment: what a kernel build
// step's key covers besides its inputs.
func ToolchainIdentity(ctx context.Context) (string, error) {
	if err := CheckTools(); err != nil {
		return "", err
	}
	tools := []string{"gcc", "ld", "make", "xz"}
	var bins []string
	for _, t := range tools {
		p, ok := lookPath(t)
		if !ok {
			return "", fmt.Errorf("%s not found on %s", t, BuildPath)
		}
		bins = append(bins, p)
	}
	// Remembered while the binaries are unchanged: a no-op rebuild runs
	// no tool.
	return recipes.Memoize(ctx, "kernel-toolchain "+strings.Join(bins, " "), func() (string, []string, error) {
		var b strings.Builder
		for i, t := range tools {
			cmd := exec.CommandContext(ctx, bins[i], "--version")
			cmd.Env = []string{"PATH=" + BuildPath, "LC_ALL=C"}
			out, err := cmd.Output()
			if err != nil {
				return "", nil, fmt.Errorf("%s --version: %w", t, err)
			}
			first, _, _ := strings.Cut(string(out), "\n")
			fmt.Fprintf(&b, "%s: %s\n", t, strings.TrimSpace(first))
		}
		return b.String(), bins, nil
	})
}
