package recipes

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/manifest"
)

// digestFixture is a recipe that uses every kind of source: recipe files,
// a var file, -var, the lock file, files read by functions in locals and
// in a block (read only when blocks are decoded).
func digestFixture() map[string]string {
	return map[string]string{
		"r.hcl": `
variable "release" {
  default = "1"
}
variable "key" {
  default = "env://SECRET_KEY"
}
variable "console" {
  default = "ttyS0"
}
variable "feeds" {
  type        = list(string)
  default     = []
  build_input = false
}
locals {
  cmdline = templatefile("t.tpl", { console = var.console })
  motd    = file("data/motd.txt")
}
note "a" {
  text = "${local.cmdline} ${local.motd} ${filesha256("blk.txt")} ${var.release} ${var.key}"
}
`,
		"more.hcl":           `note "b" { text = "b" }`,
		"t.tpl":              "console=${console}",
		"data/motd.txt":      "hello",
		"blk.txt":            "block input",
		"prod.vars":          `console = "hvc0"`,
		"cocobuild.lock.hcl": "# lock\n",
	}
}

// loadFixture writes files into a new directory, loads it with the var
// file prod.vars (when present) and -var vars, validates it (which decodes
// every block) and returns the recipe.
func loadFixture(t *testing.T, files map[string]string, vars map[string]string) *Recipe {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var opts LoadOptions
	opts.Vars = vars
	if _, ok := files["prod.vars"]; ok {
		opts.VarFiles = []string{filepath.Join(dir, "prod.vars")}
	}
	r := mustLoad(t, dir, opts)
	if d := r.Validate(); d.HasErrors() {
		t.Fatalf("Validate: %v", d)
	}
	return r
}

func sum(s string) string {
	b := sha256.Sum256([]byte(s))
	return hex.EncodeToString(b[:])
}

func TestRecipeSourcesListed(t *testing.T) {
	r := loadFixture(t, digestFixture(), map[string]string{"release": "7"})
	got := r.Sources()
	f := digestFixture()
	varSum := func(v string) string { return sum(`{"value":"` + v + `","type":"string"}`) }
	want := []manifest.Source{
		{Kind: SourceFile, Path: "blk.txt", SHA256: sum(f["blk.txt"])},
		{Kind: SourceFile, Path: "data/motd.txt", SHA256: sum(f["data/motd.txt"])},
		{Kind: SourceFile, Path: "t.tpl", SHA256: sum(f["t.tpl"])},
		{Kind: SourceLock, Path: "cocobuild.lock.hcl", SHA256: sum(f["cocobuild.lock.hcl"])},
		{Kind: SourceRecipe, Path: "more.hcl", SHA256: sum(f["more.hcl"])},
		{Kind: SourceRecipe, Path: "r.hcl", SHA256: sum(f["r.hcl"])},
		{Kind: SourceVar, Name: "console", SHA256: varSum("hvc0")},
		{Kind: SourceVar, Name: "feeds", NotBuildInput: true},
		{Kind: SourceVar, Name: "key", SHA256: varSum("env://SECRET_KEY")},
		{Kind: SourceVar, Name: "release", SHA256: varSum("7")},
		{Kind: SourceVarFile, Path: "prod.vars", SHA256: sum(f["prod.vars"])},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sources (-want +got):\n%s", diff)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{r.Dir, "SECRET_KEY", "hvc0", os.TempDir()} {
		if strings.Contains(string(b), leak) {
			t.Errorf("the sources' JSON holds %q: %s", leak, b)
		}
	}
}

// TestRecipeDigestCoversEverySource changes one input at a time: each
// change must change the digest; the same inputs in another directory
// give the same digest.
func TestRecipeDigestCoversEverySource(t *testing.T) {
	base := loadFixture(t, digestFixture(), map[string]string{"release": "7"}).Digest()
	if again := loadFixture(t, digestFixture(), map[string]string{"release": "7"}).Digest(); again != base {
		t.Fatalf("the same inputs in another directory: digest %s, want %s", again, base)
	}
	for _, tc := range []struct {
		name   string
		change func(files, vars map[string]string)
	}{
		{"recipe file content", func(f, _ map[string]string) { f["more.hcl"] = `note "b" { text = "c" }` }},
		{"recipe file name", func(f, _ map[string]string) { f["other.hcl"] = f["more.hcl"]; delete(f, "more.hcl") }},
		{"variable default", func(f, _ map[string]string) {
			f["r.hcl"] = strings.Replace(f["r.hcl"], `default = "ttyS0"`, `default = "ttyS1"`, 1)
		}},
		{"-var value", func(_, v map[string]string) { v["release"] = "8" }},
		{"-var given as the default", func(_, v map[string]string) { v["key"] = "env://SECRET_KEY" }},
		{"-var of a variable that is not a build input", func(_, v map[string]string) { v["feeds"] = `["dir:out/feed"]` }},
		{"var file content", func(f, _ map[string]string) { f["prod.vars"] = `console = "hvc1"` }},
		{"var file comment", func(f, _ map[string]string) { f["prod.vars"] += "\n# note\n" }},
		{"lock file content", func(f, _ map[string]string) { f["cocobuild.lock.hcl"] = "# lock 2\n" }},
		{"lock file removed", func(f, _ map[string]string) { delete(f, "cocobuild.lock.hcl") }},
		{"templatefile template", func(f, _ map[string]string) { f["t.tpl"] = "console=${console} quiet" }},
		{"file() content", func(f, _ map[string]string) { f["data/motd.txt"] = "hello!" }},
		{"file read while decoding a block", func(f, _ map[string]string) { f["blk.txt"] = "block input 2" }},
	} {
		files, vars := digestFixture(), map[string]string{"release": "7"}
		tc.change(files, vars)
		got := loadFixture(t, files, vars).Digest()
		// "-var given as the default" gives the value the default gives:
		// the digest covers values as resolved, not where they came from.
		// A variable declared build_input = false is left out.
		if tc.name == "-var given as the default" || tc.name == "-var of a variable that is not a build input" {
			if got != base {
				t.Errorf("%s: digest changed (%s, want %s)", tc.name, got, base)
			}
			continue
		}
		if got == base {
			t.Errorf("%s: digest unchanged (%s)", tc.name, got)
		}
	}
}

// TestVarFileOutsideRecipeDir: a var file kept elsewhere is named by its
// base name, so the digest does not depend on where it is.
func TestVarFileOutsideRecipeDir(t *testing.T) {
	var digests []string
	for i := 0; i < 2; i++ {
		dir := writeFiles(t, map[string]string{"r.hcl": `variable "v" { default = "1" }`})
		elsewhere := writeFiles(t, map[string]string{"my.vars": `v = "2"`})
		r := mustLoad(t, dir, LoadOptions{VarFiles: []string{filepath.Join(elsewhere, "my.vars")}})
		want := manifest.Source{Kind: SourceVarFile, Path: "my.vars", SHA256: sum(`v = "2"`)}
		found := false
		for _, s := range r.Sources() {
			found = found || s == want
		}
		if !found {
			t.Errorf("sources %+v, want %+v among them", r.Sources(), want)
		}
		digests = append(digests, r.Digest())
	}
	if digests[0] != digests[1] {
		t.Errorf("digests %s and %s for the same var file in two places", digests[0], digests[1])
	}
}

// TestFileFunctionsConfined: the file functions read only inside the
// recipe's directory, and fileexists is false for a directory.
func TestFileFunctionsConfined(t *testing.T) {
	outside := writeFiles(t, map[string]string{"secret.txt": "s"})
	for _, tc := range []struct {
		expr    string
		wantErr string // "" for success
		want    string // the value, as GoString
	}{
		{`file("in.txt")`, "", `cty.StringVal("in")`},
		{`filebase64("in.txt")`, "", `cty.StringVal("aW4=")`},
		{`file("./sub/../in.txt")`, "", `cty.StringVal("in")`},
		{`file("../secret.txt")`, "is not inside the recipe directory", ""},
		{`file("` + filepath.Join(outside, "secret.txt") + `")`, "is not inside the recipe directory", ""},
		{`file("link.txt")`, "path escapes", ""},
		{`filesha256("link.txt")`, "path escapes", ""},
		{`templatefile("../secret.txt", {})`, "is not inside the recipe directory", ""},
		{`file("~/in.txt")`, "no such file", ""},
		{`fileexists("in.txt")`, "", "cty.True"},
		{`fileexists("sub")`, "", "cty.False"},
		{`fileexists("missing")`, "", "cty.False"},
		{`fileexists("/etc/passwd")`, "is not inside the recipe directory", ""},
		{`file("bad.bin")`, "contents of bad.bin are not valid UTF-8", ""},
	} {
		dir := writeFiles(t, map[string]string{"in.txt": "in", "bad.bin": "\xff\xfe"})
		if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(dir, "link.txt")); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "r.hcl"), []byte("locals {\n  x = "+tc.expr+"\n}\nnote \"n\" {\n  text = \"${local.x}\"\n}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r, diags := Load(dir, NewRegistry(noteKind{}), LoadOptions{})
		if tc.wantErr != "" {
			if !diags.HasErrors() || !strings.Contains(diags.Error(), tc.wantErr) {
				t.Errorf("%s: diagnostics %v, want an error with %q", tc.expr, diags, tc.wantErr)
			}
			for _, d := range diags {
				if strings.Contains(d.Detail, dir) {
					t.Errorf("%s: the error names the recipe's host path: %s", tc.expr, d.Detail)
				}
			}
			continue
		}
		if diags.HasErrors() {
			t.Errorf("%s: %v", tc.expr, diags)
			continue
		}
		if got := r.locals["x"].GoString(); got != tc.want {
			t.Errorf("%s = %s, want %s", tc.expr, got, tc.want)
		}
	}
}
