package testenv_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/publish"
)

// makeVar returns the value of a "NAME = value" line of the Makefile.
func makeVar(t *testing.T, mk, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + name + `\s*\??=\s*(.*)$`).FindStringSubmatch(mk)
	if m == nil {
		t.Fatalf("the Makefile sets no %s", name)
	}
	return strings.TrimSpace(m[1])
}

// TestMakefileAgrees checks that `make tools` installs the versions the
// tests require, and that the predicate type the demo's cosign hint names
// is the statement's.
func TestMakefileAgrees(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.ModuleRoot(t), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	mk := string(b)
	var want []string
	for _, g := range testenv.GoTools {
		if !strings.HasPrefix(g.Package, g.Module+"/") {
			t.Errorf("package %s is not in module %s", g.Package, g.Module)
		}
		want = append(want, g.Package+"@"+g.Version)
	}
	got := strings.Fields(makeVar(t, mk, "GO_TOOLS"))
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Makefile GO_TOOLS = %q, testenv.GoTools %q", got, want)
	}
	if got := makeVar(t, mk, "PREDICATE_TYPE"); got != publish.PredicateType {
		t.Errorf("Makefile PREDICATE_TYPE = %q, want %q", got, publish.PredicateType)
	}
}

// TestGoToolPinned finds the pinned clients (where make tools put them)
// and reads their versions from their build information.
func TestGoToolPinned(t *testing.T) {
	for name := range testenv.GoTools {
		p := testenv.GoTool(t, name)
		if filepath.Base(p) != name {
			t.Errorf("GoTool(%s) = %s", name, p)
		}
	}
}
