// Package testenv locates the shared golden vectors and the external tools that
// tests need. In CI (CI=true) a missing vector directory or tool fails the
// test; on a developer machine it skips with a message saying what to install.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// VectorsEnv names the environment variable that points at the golden
// measurement vectors (the directory holding snp.json, tdx.json and inputs/).
const VectorsEnv = "COCOBUILD_VECTORS"

// InCI reports whether the tests run under CI, where nothing may be skipped
// for lack of an input or a tool.
func InCI() bool { return os.Getenv("CI") == "true" }

// missing fails the test in CI and skips it elsewhere.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// Vectors returns the directory of the golden measurement vectors: $COCOBUILD_VECTORS,
// or ../shared/vectors beside the module root.
func Vectors(t testing.TB) string {
	t.Helper()
	if d := os.Getenv(VectorsEnv); d != "" {
		if _, err := os.Stat(filepath.Join(d, "README.md")); err != nil {
			t.Fatalf("%s=%s does not hold the vectors: %v", VectorsEnv, d, err)
		}
		return d
	}
	if root, ok := moduleRoot(); ok {
		d := filepath.Join(root, "..", "shared", "vectors")
		if _, err := os.Stat(filepath.Join(d, "README.md")); err == nil {
			return d
		}
	}
	missing(t, "golden vectors not found: set %s to the vectors directory (../shared/vectors)", VectorsEnv)
	return ""
}

// VectorFile returns the path of a file below the vectors directory.
func VectorFile(t testing.TB, rel string) string {
	t.Helper()
	return filepath.Join(Vectors(t), filepath.FromSlash(rel))
}

// ReadVector reads a file below the vectors directory.
func ReadVector(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(VectorFile(t, rel))
	if err != nil {
		t.Fatalf("reading vector %s: %v", rel, err)
	}
	return b
}

// Tool returns the path of an external program, failing in CI and skipping
// elsewhere when it is absent. pkg names the Debian package that provides it.
func Tool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, "%s not found: apt-get install %s", name, pkg)
	}
	return p
}

// ModuleRoot is the directory of cocobuild's go.mod.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	d, ok := moduleRoot()
	if !ok {
		t.Fatal("no go.mod above the working directory")
	}
	return d
}

// moduleRoot is the directory of go.mod, found from this source file's
// path (so that a test that changed its working directory still finds it),
// or else by walking up from the working directory.
func moduleRoot() (string, bool) {
	if _, file, _, ok := runtime.Caller(0); ok {
		dir := filepath.Join(filepath.Dir(file), "..", "..")
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Clean(dir), true
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// SharedCacheEnv names the cocobuild cache that tests share with each other
// (across packages and runs) for builds too slow to repeat, such as the
// sample's kernel: built once, taken from it afterwards. Without it the
// tests use the user's cocobuild cache, which `make demo` fills too.
const SharedCacheEnv = "COCOBUILD_TEST_CACHE"

// SharedCache is the cache directory named by SharedCacheEnv, or the
// user's cocobuild cache. Builds that share it run a step once even when
// packages' tests run at the same time (the builder locks step keys).
func SharedCache(t testing.TB) string {
	t.Helper()
	if d := os.Getenv(SharedCacheEnv); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("no cache directory for the shared test cache: %v (set %s)", err, SharedCacheEnv)
	}
	return filepath.Join(d, "cocobuild")
}

// TDXQEMU returns the QEMU that the sample's TDX measurements read ACPI
// tables from (acpi_qemu): Debian forky's pinned QEMU, fetched once by
// scripts/tdx-qemu as `make demo` does, into a directory below the system's
// temporary directory that other users can read (repro's build b runs as
// another user). It fails in CI (skips elsewhere) when apt or the archive
// cannot provide it.
func TDXQEMU(t testing.TB) string {
	t.Helper()
	Tool(t, "apt-get", "apt")
	Tool(t, "dpkg-deb", "dpkg")
	Tool(t, "flock", "util-linux")
	script := filepath.Join(ModuleRoot(t), "scripts", "tdx-qemu")
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("cocobuild-test-tools-%d", os.Getuid()), "qemu-forky")
	out, err := exec.Command(script, dir).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		missing(t, "scripts/tdx-qemu could not provide a QEMU that launches TDs: %v\n%s", err, stderr)
	}
	return strings.TrimSpace(string(out))
}
