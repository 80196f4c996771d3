package archcheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/cocobuild/cocobuild"

// pkgFiles maps each package directory of the module (slash-separated,
// relative to the module root) to its non-test Go files, parsed.
func pkgFiles(t *testing.T) map[string][]*ast.File {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	out := map[string][]*ast.File{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "out" || n == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		rel = filepath.ToSlash(rel)
		out[rel] = append(out[rel], f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 10 {
		t.Fatalf("found %d packages under %s: not the module root", len(out), root)
	}
	return out
}

// imports lists the module packages a package imports (relative paths).
func imports(files []*ast.File) []string {
	var out []string
	for _, f := range files {
		for _, is := range f.Imports {
			p, _ := strconv.Unquote(is.Path.Value)
			if rest, ok := strings.CutPrefix(p, module+"/"); ok && !slices.Contains(out, rest) {
				out = append(out, rest)
			}
		}
	}
	slices.Sort(out)
	return out
}

// top is the first path element: the layer a package belongs to.
func top(p string) string { return strings.SplitN(p, "/", 2)[0] }

// within reports whether p is dir or below it.
func within(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// blockKinds are the packages that implement block kinds; none imports
// another (a mechanism two of them need belongs in internal/ or recipes).
var blockKinds = []string{"input", "kernel", "initramfs", "rootfs", "disk", "seimage", "tee", "publish"}

func TestImportDirection(t *testing.T) {
	pkgs := pkgFiles(t)
	for dir, files := range pkgs {
		for _, imp := range imports(files) {
			if within(imp, "cmd") {
				t.Errorf("%s imports %s: nothing imports the CLI", dir, imp)
			}
			switch {
			case within(dir, "measure"):
				if !within(imp, "measure") {
					t.Errorf("%s imports %s: measure models import only measure packages", dir, imp)
				}
			case dir == "manifest":
				if imp != "internal/version" {
					t.Errorf("manifest imports %s: the manifest model imports nothing of ours", imp)
				}
			case within(dir, "recipes"):
				if !within(imp, "manifest") && !within(imp, "recipes") && !within(imp, "internal") {
					t.Errorf("%s imports %s: the language knows no block kind, engine or TEE", dir, imp)
				}
			case within(dir, "builder"):
				for _, k := range append([]string{"repro"}, blockKinds...) {
					if within(imp, k) {
						t.Errorf("%s imports %s: the engine knows no block kind (cmd composes the registry)", dir, imp)
					}
				}
			case slices.Contains(blockKinds, top(dir)):
				if within(imp, "builder") || within(imp, "repro") {
					t.Errorf("%s imports %s: block kinds do not import the engine", dir, imp)
				}
				for _, k := range blockKinds {
					if k == top(dir) || !within(imp, k) {
						continue
					}
					// publish reads the TEE registrations' facts through tee.
					if top(dir) == "publish" && imp == "tee" {
						continue
					}
					t.Errorf("%s imports %s: a sideways import between block kinds; move what both need to internal/ or recipes", dir, imp)
				}
			}
		}
	}
}

// teeNames are the TEE names the registrations answer to.
var teeNames = []string{"snp", "seves", "sev", "tdx", "se"}

// TestNoTEENamesOutsideRegistrations: builder, publish, repro, launch and cmd iterate the
// registered TEEs; a string literal naming one is a switch that adding a
// TEE would have to find.
func TestNoTEENamesOutsideRegistrations(t *testing.T) {
	for dir, files := range pkgFiles(t) {
		if !within(dir, "builder") && !within(dir, "publish") && !within(dir, "cmd/cocobuild") && !within(dir, "repro") && !within(dir, "launch") {
			continue
		}
		for _, f := range files {
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				s, _ := strconv.Unquote(lit.Value)
				if slices.Contains(teeNames, s) {
					t.Errorf("%s: the literal %q names a TEE; ask the tee.Set instead", dir, s)
				}
				return true
			})
		}
	}
}

// TestOneListOfTEEs: the TEE registrations (tee/NAME) are imported by
// internal/tees, whose All is the one list of them, and by nothing else
// but their own subpackages; so adding a TEE cannot miss a second list.
func TestOneListOfTEEs(t *testing.T) {
	for dir, files := range pkgFiles(t) {
		for _, imp := range imports(files) {
			if !within(imp, "tee") || imp == "tee" || strings.Count(imp, "/") != 1 {
				continue
			}
			if dir == "internal/tees" || within(dir, imp) {
				continue
			}
			t.Errorf("%s imports the TEE registration %s: use internal/tees.All, the one list of TEEs", dir, imp)
		}
	}
}
