package rootfs_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/debroot"
	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/internal/testkinds"
)

// hostCodename is the host's release (VERSION_CODENAME of os-release):
// the suite whose mirrors the host's apt sources name.
func hostCodename(t testing.TB) string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^VERSION_CODENAME="?([a-z0-9.+-]+)"?$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("/etc/os-release has no VERSION_CODENAME:\n%s", b)
	}
	return string(m[1])
}

// packagesBlocks is a Debian userland (the Essential:yes set) under
// dm-verity, with one file of the recipe's on top.
const packagesBlocks = `
rootfs "root" {
  packages {
    suite          = %q
    essential_only = true
  }
  file "/etc/cocobuild-release" {
    content = "${var.release}\n"
  }
  verity {}
}
`

// buildLocked builds dir with --locked, cache and umask.
func buildLocked(t *testing.T, dir, cache, out string, umask int) (*builder.BuildResult, error) {
	t.Helper()
	old := syscall.Umask(umask)
	defer syscall.Umask(old)
	l, err := builder.Load(dir, testkinds.LoadOptions(cache, input.Options{Locked: true}))
	if err != nil {
		return nil, err
	}
	return l.Build(context.Background(), out, 2, nil)
}

// TestPackagesLockBuildRepro locks a recipe whose rootfs installs the
// Essential:yes set of the host's suite, builds it --locked twice (other
// caches, so the second build downloads every pinned .deb by name and
// version again; other directories, umasks and times) and requires the
// same image; dpkg-deb reads the pinned .debs' control fields, and
// fsck.erofs extracts the image. A pinned version the archive does not
// have fails the build with an error naming the package.
func TestPackagesLockBuildRepro(t *testing.T) {
	for _, tool := range debroot.Tools {
		testenv.Tool(t, tool[0], tool[1])
	}
	testenv.Tool(t, "mkfs.erofs", "erofs-utils")
	dpkgDeb := testenv.Tool(t, "dpkg-deb", "dpkg")
	mode, err := debroot.ChooseMode(debroot.ReadHost(os.Geteuid()))
	if err != nil {
		t.Fatalf("mmdebstrap cannot run here: %v", err)
	}
	t.Logf("mmdebstrap mode: %s (%s)", mode.Name, mode.Why)
	// What an unprivileged user would get on this machine: unshare mode,
	// or the reason it cannot have it.
	if m, err := debroot.ChooseMode(debroot.ReadHost(65534)); err != nil {
		t.Logf("as uid 65534, packages could not be installed here: %v", err)
	} else {
		t.Logf("as uid 65534: %s mode (%s)", m.Name, m.Why)
	}

	dir := writeRecipe(t, fmt.Sprintf(packagesBlocks, hostCodename(t)))
	ctx := context.Background()
	cacheA := t.TempDir()

	// Unpinned, the recipe is refused.
	if _, err := builder.Load(dir, testkinds.LoadOptions(cacheA, input.Options{})); err == nil || !strings.Contains(err.Error(), "cocobuild lock") {
		t.Fatalf("unpinned packages: got %v, want an error that says to run cocobuild lock", err)
	}

	l, err := builder.Load(dir, testkinds.LoadOptions(cacheA, input.Options{Resolving: true, AllowUnpinned: true}))
	if err != nil {
		t.Fatal(err)
	}
	lock, err := input.UpdateLock(ctx, l.Recipe, false)
	if err != nil {
		t.Fatal(err)
	}
	set, ok := lock.Packages["rootfs.root"]
	if !ok || len(set.Packages) < 20 {
		t.Fatalf("lock packages: got %+v, want the Essential:yes set", lock.Packages)
	}
	names := map[string]debroot.Package{}
	for _, p := range set.Packages {
		names[p.Name] = p
	}
	for _, want := range []string{"base-files", "dpkg", "libc6", "coreutils"} {
		p, ok := names[want]
		if !ok {
			t.Errorf("lock lacks %s", want)
			continue
		}
		// The .deb kept under its sha256 is the package the lock names.
		blob := findBlob(t, cacheA, p.SHA256)
		out, err := exec.Command(dpkgDeb, "--field", blob, "Package", "Version", "Architecture").Output()
		if err != nil {
			t.Fatalf("dpkg-deb --field %s: %v", blob, err)
		}
		if got, want := string(out), fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: %s\n", p.Name, p.Version, p.Arch); got != want {
			t.Errorf("the .deb pinned for %s: got\n%swant\n%s", p.Name, got, want)
		}
	}
	lockText, err := os.ReadFile(filepath.Join(dir, "cocobuild.lock.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(lockText), `packages "rootfs.root" {`) || !strings.Contains(string(lockText), `package "libc6" {`) {
		t.Errorf("lock file lacks the package set:\n%.600s", lockText)
	}

	outA, outB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	resA, err := buildLocked(t, dir, cacheA, outA, 0o022)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := buildLocked(t, dir, t.TempDir(), outB, 0o077); err != nil {
		t.Fatal(err)
	}
	for _, a := range resA.Manifest.Artifacts {
		x, _ := os.ReadFile(filepath.Join(outA, a.Path))
		y, _ := os.ReadFile(filepath.Join(outB, a.Path))
		if shaHex(x) != a.SHA256 || shaHex(y) != a.SHA256 {
			t.Errorf("%s: builds differ or disagree with the manifest: %s, %s, manifest %s", a.Path, shaHex(x), shaHex(y), a.SHA256)
		}
	}
	var img string
	for _, a := range resA.Manifest.Artifacts {
		if a.Name == "rootfs.root" {
			img = filepath.Join(outA, a.Path)
			t.Logf("image %s: %d bytes", a.Path, a.Size)
		}
	}
	ex := filepath.Join(t.TempDir(), "x")
	if out, err := exec.Command(testenv.Tool(t, "fsck.erofs", "erofs-utils"), "--extract="+ex, img).CombinedOutput(); err != nil {
		t.Fatalf("fsck.erofs: %v\n%s", err, out)
	}
	for p, want := range map[string]string{"etc/machine-id": "", "etc/apt/sources.list": "", "etc/hostname": "localhost\n", "etc/cocobuild-release": "1.2.3\n"} {
		if got, err := os.ReadFile(filepath.Join(ex, p)); err != nil || string(got) != want {
			t.Errorf("/%s = %q, %v; want %q", p, got, err, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(ex, "etc/os-release")); err != nil || !strings.Contains(string(b), "ID=") {
		t.Errorf("/etc/os-release = %q, %v; want the distribution's", b, err)
	}
	for _, d := range []string{"var/log", "var/cache/apt", "var/lib/apt/lists", "tmp"} {
		filepath.WalkDir(filepath.Join(ex, d), func(p string, e os.DirEntry, err error) error {
			if err == nil && !e.IsDir() && e.Name() != "lock" {
				t.Errorf("%s is in the image: logs, caches and temporary files are not", strings.TrimPrefix(p, ex))
			}
			return nil
		})
	}

	// A pinned version the archive no longer has: the build fails and
	// names the package.
	first := set.Packages[0]
	gone := strings.Replace(string(lockText), fmt.Sprintf("package %q {\n    version = %q", first.Name, first.Version),
		fmt.Sprintf("package %q {\n    version = %q", first.Name, "0.0.0-gone"), 1)
	if gone == string(lockText) {
		t.Fatalf("could not find package %s in the lock:\n%.600s", first.Name, lockText)
	}
	must(t, os.WriteFile(filepath.Join(dir, "cocobuild.lock.hcl"), []byte(gone), 0o644))
	_, err = buildLocked(t, dir, t.TempDir(), filepath.Join(t.TempDir(), "c"), 0o022)
	if err == nil || !strings.Contains(err.Error(), first.Name+"=0.0.0-gone") || !strings.Contains(err.Error(), "no longer in suite") {
		t.Errorf("gone version: got %v, want an error naming %s=0.0.0-gone, no longer in the suite", err, first.Name)
	}

	// A changed request is drift for --locked.
	must(t, os.WriteFile(filepath.Join(dir, "cocobuild.lock.hcl"), lockText, 0o644))
	r, _ := os.ReadFile(filepath.Join(dir, "r.hcl"))
	must(t, os.WriteFile(filepath.Join(dir, "r.hcl"), []byte(strings.Replace(string(r), "essential_only = true", "essential_only = true\n    packages = [\"ca-certificates\"]", 1)), 0o644))
	if _, err := builder.Load(dir, testkinds.LoadOptions(cacheA, input.Options{Locked: true})); err == nil || !strings.Contains(err.Error(), "changed since") {
		t.Errorf("changed request: got %v, want --locked to refuse it", err)
	}
}

// findBlob finds the cache's file named sum.
func findBlob(t testing.TB, cache, sum string) string {
	var found string
	filepath.WalkDir(cache, func(p string, e os.DirEntry, err error) error {
		if err == nil && e.Name() == sum {
			found = p
		}
		return nil
	})
	if found == "" {
		t.Fatalf("no blob %s in the cache %s", sum, cache)
	}
	return found
}
