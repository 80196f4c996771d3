package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestBadRecipes validates every recipe of recipes/testdata/bad: each must
// exit 2 and print exactly the diagnostics its "# expect:" lines name.
func TestBadRecipes(t *testing.T) {
	files, err := filepath.Glob("../../recipes/testdata/bad/*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 25 {
		t.Fatalf("found %d broken recipes, want at least 25", len(files))
	}
	cache := t.TempDir()
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want := expectations(t, f)
			if len(want) == 0 {
				t.Fatalf("%s has no '# expect:' line", f)
			}
			code, _, stderr := runCLI(t, "validate", "--cache-dir", cache, f)
			if code != 2 {
				t.Errorf("exit code %d, want 2; stderr:\n%s", code, stderr)
			}
			var got []string
			for _, line := range strings.Split(stderr, "\n") {
				if strings.HasPrefix(line, f+":") {
					got = append(got, line)
				}
			}
			if len(got) != len(want) {
				t.Errorf("got %d diagnostics, want %d:\n%s", len(got), len(want), stderr)
			}
			for _, w := range want {
				found := false
				for _, g := range got {
					if strings.HasPrefix(g, w) {
						found = true
					}
				}
				if !found {
					t.Errorf("missing diagnostic %q in:\n%s", w, stderr)
				}
			}
			// Every diagnostic shows its source line.
			if !strings.Contains(stderr, " | ") {
				t.Errorf("no source snippet in:\n%s", stderr)
			}
		})
	}
}

// expectations reads "# expect: L:C: message" lines and returns them as
// "FILE:L:C: error: message".
func expectations(t *testing.T, f string) []string {
	fh, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var out []string
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "# expect: ")
		if !ok {
			continue
		}
		pos, msg, ok := strings.Cut(rest, ": ")
		if !ok {
			t.Fatalf("malformed expectation %q", rest)
		}
		out = append(out, f+":"+pos+": error: "+msg)
	}
	return out
}

func TestValidateJSON(t *testing.T) {
	f := "../../recipes/testdata/bad/unknown_attribute.hcl"
	code, stdout, _ := runCLI(t, "validate", "--json", "--cache-dir", t.TempDir(), f)
	if code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
	var got struct {
		OK          bool       `json:"ok"`
		Diagnostics []jsonDiag `json:"diagnostics"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, stdout)
	}
	if got.OK || len(got.Diagnostics) != 1 || got.Diagnostics[0].Line != 8 || got.Diagnostics[0].Column != 3 || got.Diagnostics[0].File != f {
		t.Errorf("diagnostics = %+v, want one at %s:8:3", got.Diagnostics, f)
	}
}

func TestFmt(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "r.hcl")
	ugly := "input \"k\" {\nfile=\"x\"\n    sha256 =   \"y\"\n}\n"
	if err := os.WriteFile(f, []byte(ugly), 0o640); err != nil {
		t.Fatal(err)
	}
	if code, stdout, _ := runCLI(t, "fmt", "-check", dir); code != 1 || !strings.Contains(stdout, f) {
		t.Errorf("fmt -check on an unformatted file: exit %d, stdout %q; want 1 naming the file", code, stdout)
	}
	if b, _ := os.ReadFile(f); string(b) != ugly {
		t.Error("fmt -check changed the file")
	}
	if code, _, stderr := runCLI(t, "fmt", dir); code != 0 {
		t.Fatalf("fmt: exit %d: %s", code, stderr)
	}
	want := "input \"k\" {\n  file   = \"x\"\n  sha256 = \"y\"\n}\n"
	if b, _ := os.ReadFile(f); string(b) != want {
		t.Errorf("formatted file = %q, want %q", b, want)
	}
	if st, _ := os.Stat(f); st.Mode().Perm() != 0o640 {
		t.Errorf("fmt changed the file mode to %v", st.Mode().Perm())
	}
	if code, _, _ := runCLI(t, "fmt", "-check", dir); code != 0 {
		t.Errorf("fmt -check after fmt: exit %d, want 0", code)
	}
}

func TestSampleRecipeIsFormatted(t *testing.T) {
	if code, stdout, stderr := runCLI(t, "fmt", "-check", "../../recipes/sample"); code != 0 {
		t.Errorf("recipes/sample is not formatted: %s%s", stdout, stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"no-such-command"},
		{"build", "--no-such-flag"},
		{"build", "-var", "novalue", "../../recipes/sample"},
		{"validate", "/no/such/recipe"},
		{"diff", "/no/such/a", "/no/such/b"},
		{"diff", "../../recipes/sample", "../../recipes/sample/sample.hcl"},
		{"verify-build", "../../recipes/sample"},
		{"repro", "--no-such-flag"},
	} {
		if code, _, _ := runCLI(t, args...); code != 2 {
			t.Errorf("cocobuild %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
}

// TestEveryCommandHasHelpAndExample walks the command tree.
func TestEveryCommandHasHelpAndExample(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" || (c.Parent() != nil && c.Parent().Name() == "completion") {
			return
		}
		if c.Short == "" {
			t.Errorf("%s has no short help", c.CommandPath())
		}
		if c.Example == "" {
			t.Errorf("%s has no example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd(&app{stdout: os.Stdout, stderr: os.Stderr}))
}

// TestNotARecipe: a file that is not a .hcl recipe (an archive, say) is
// named as such, not reported as an unreadable lock file.
func TestNotARecipe(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"image.tar", "Recipe"} {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte("not hcl\x00\x01"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, cmd := range []string{"validate", "plan", "lock"} {
			code, _, stderr := runCLI(t, cmd, "--cache-dir", t.TempDir(), f)
			if code != 2 {
				t.Errorf("%s %s: exit %d, want 2", cmd, name, code)
			}
			if want := f + " is not a recipe: give a recipe file (*.hcl) or a directory of them"; !strings.Contains(stderr, want) || strings.Contains(stderr, "lock file") {
				t.Errorf("%s %s: stderr\n%s\nwant %q and no word of the lock file", cmd, name, stderr, want)
			}
		}
	}
}

// TestWrongPinExit2: a build whose input does not match the sha256 written
// in the recipe fails with exit 2 at that attribute, saying to edit it.
func TestWrongPinExit2(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data"), []byte("new bytes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := filepath.Join(dir, "r.hcl")
	src := "input \"data\" {\n  file   = \"data\"\n  sha256 = \"" + strings.Repeat("0", 64) + "\"\n}\n"
	if err := os.WriteFile(r, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"build", "lock"} {
		code, _, stderr := runCLI(t, cmd, "--cache-dir", filepath.Join(dir, "cache"), r)
		if code != 2 {
			t.Errorf("%s: exit %d, want 2; stderr:\n%s", cmd, code, stderr)
		}
		// The progress line of the failed step may come first.
		if want := r + ":3:12: error: Input does not match its sha256 pin:"; !strings.HasPrefix(stderr, want) && !strings.Contains(stderr, "\n"+want) || !strings.Contains(stderr, "edit this sha256 in the recipe") {
			t.Errorf("%s: stderr\n%s\nwant a line starting with %q that says to edit the pin", cmd, stderr, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "cocobuild.lock.hcl")); !os.IsNotExist(err) {
		t.Errorf("lock wrote a lock file that contradicts the recipe's pin (%v)", err)
	}
}
