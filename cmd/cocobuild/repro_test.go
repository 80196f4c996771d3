package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// reproRecipe writes a small recipe (a file input and a kernel) into a
// directory every user can read, so that as root the second build can run
// as another uid.
func reproRecipe(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	kernel := testenv.FakeBzImage("6.1.0-repro", 64*1024)
	if err := os.WriteFile(filepath.Join(dir, "vmlinuz"), kernel, 0o644); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`
recipe {
  name = "repro"
}

input "k" {
  file   = "vmlinuz"
  sha256 = %q
}

kernel "guest" {
  image   = input.k
  cmdline = ["console=ttyS0"]
}
%s`, hexSHA(kernel), extra)
	if err := os.WriteFile(filepath.Join(dir, "r.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

type reproJSON struct {
	Reproducible bool `json:"reproducible"`
	Report       struct {
		Perturbations []struct {
			Name    string `json:"name"`
			B       string `json:"b"`
			Applied bool   `json:"applied"`
			Note    string `json:"note"`
		} `json:"perturbations"`
		Diff struct {
			Differences []struct {
				Artifact, Format, Member, What string
			} `json:"differences"`
		} `json:"diff"`
	} `json:"report"`
}

func runRepro(t *testing.T, dir string, extra ...string) (int, reproJSON, string) {
	t.Helper()
	a := &app{stdout: new(strings.Builder), stderr: new(strings.Builder), childEnv: []string{"COCOBUILD_TEST_MAIN=1"}}
	args := append([]string{"repro", "--json", "--cache-dir", t.TempDir(), "--work-dir", t.TempDir()}, extra...)
	code := runApp(t.Context(), a, append(args, dir))
	var got reproJSON
	out := a.stdout.(*strings.Builder).String()
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("repro --json output: %v\n%s\nstderr: %s", err, out, a.stderr)
	}
	return code, got, out
}

func TestReproReproducibleRecipe(t *testing.T) {
	code, got, out := runRepro(t, reproRecipe(t, ""))
	if code != 0 || !got.Reproducible {
		t.Fatalf("repro of a reproducible recipe: exit %d\n%s", code, out)
	}
	applied := map[string]bool{}
	for _, p := range got.Report.Perturbations {
		applied[p.Name] = p.Applied
		if !p.Applied && p.Note == "" {
			t.Errorf("perturbation %s skipped without saying why", p.Name)
		}
	}
	for _, name := range []string{"output path", "TZ", "umask", "HOME", "cache", "LANG/LC_ALL", "GOMAXPROCS"} {
		if !applied[name] {
			t.Errorf("perturbation %q not applied", name)
		}
	}
	if os.Getuid() == 0 && !applied["uid"] {
		t.Errorf("running as root, but the uid perturbation was skipped")
	}
}

// TestReproCatchesLeaks runs repro on a recipe with a deliberately leaky
// block: the report must name the artifact and the two members that leak.
func TestReproCatchesLeaks(t *testing.T) {
	t.Setenv("TZ", "UTC")
	code, got, out := runRepro(t, reproRecipe(t, "\nleaky \"x\" {}\n"))
	if code != 1 || got.Reproducible {
		t.Fatalf("repro of a leaky recipe: exit %d, reproducible %v, want 1 and false\n%s", code, got.Reproducible, out)
	}
	var names []string
	for _, d := range got.Report.Diff.Differences {
		names = append(names, d.Artifact+" "+d.Member+" "+d.What)
	}
	for _, want := range []string{"leaky/x/leak.cpio etc/tz size, content", "leaky/x/leak.cpio etc/umask mode"} {
		found := false
		for _, n := range names {
			if strings.HasPrefix(n, want) {
				found = true
			}
		}
		if !found {
			t.Errorf("report does not name %q; it has %q", want, names)
		}
	}
	for _, n := range names {
		if strings.Contains(n, "etc/stable") || strings.HasPrefix(n, "kernel/") {
			t.Errorf("report names %q, which is reproducible", n)
		}
	}
}

// TestReproReuse: with --reuse, build b takes the leaky block's step from
// build a's cache, so the leak cannot show, and the report says the cache
// was not all cold. A block the recipe lacks is an error naming it.
func TestReproReuse(t *testing.T) {
	t.Setenv("TZ", "UTC")
	dir := reproRecipe(t, "\nleaky \"x\" {}\n")
	code, got, out := runRepro(t, dir, "--reuse", "leaky.x")
	if code != 0 || !got.Reproducible {
		t.Fatalf("repro --reuse leaky.x: exit %d, reproducible %v, want 0 and true\n%s", code, got.Reproducible, out)
	}
	for _, p := range got.Report.Perturbations {
		if p.Name == "cache" && !strings.Contains(p.B, "except the steps of leaky.x") {
			t.Errorf("cache perturbation %q does not say leaky.x was reused", p.B)
		}
	}
	a := &app{stdout: new(strings.Builder), stderr: new(strings.Builder), childEnv: []string{"COCOBUILD_TEST_MAIN=1"}}
	code = runApp(t.Context(), a, []string{"repro", "--cache-dir", t.TempDir(), "--work-dir", t.TempDir(), "--reuse", "kernel.nosuch", dir})
	if stderr := a.stderr.(*strings.Builder).String(); code != 1 || !strings.Contains(stderr, "--reuse kernel.nosuch: the recipe has no block kernel.nosuch") {
		t.Errorf("repro --reuse of a missing block: exit %d, stderr %q; want 1 and an error naming it", code, stderr)
	}
}

// TestDiffCPIOCommand: two archives that differ in one file's content and
// another file's mode; `cocobuild diff` names exactly those two entries.
func TestDiffCPIOCommand(t *testing.T) {
	dir := reproRecipe(t, "\nleaky \"x\" {}\n")
	outA, outB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	t.Setenv("TZ", "UTC")
	if code, _, stderr := runCLI(t, "build", "--cache-dir", t.TempDir(), "-o", outA, dir); code != 0 {
		t.Fatal(stderr)
	}
	t.Setenv("TZ", "Asia/Tokyo")
	old := setUmask(0o077)
	code, _, stderr := runCLI(t, "build", "--cache-dir", t.TempDir(), "-o", outB, dir)
	setUmask(old)
	if code != 0 {
		t.Fatal(stderr)
	}
	a, b := filepath.Join(outA, "leaky/x/leak.cpio"), filepath.Join(outB, "leaky/x/leak.cpio")
	code, stdout, _ := runCLI(t, "diff", a, b)
	if code != 1 {
		t.Errorf("diff of differing archives: exit %d, want 1", code)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "etc/tz: size, content") || !strings.Contains(lines[1], "etc/umask: mode") {
		t.Errorf("diff output:\n%s\nwant exactly etc/tz content and etc/umask mode", stdout)
	}
	if code, stdout, _ := runCLI(t, "diff", a, a); code != 0 || !strings.HasPrefix(stdout, "identical") {
		t.Errorf("diff of a file with itself: exit %d, %q", code, stdout)
	}
}
