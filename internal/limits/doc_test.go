package limits

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestLimitsDoc checks that docs/limits.md lists every limit with its
// default and description, in order, as --help does.
func TestLimitsDoc(t *testing.T) {
	_, self, _, _ := runtime.Caller(0)
	doc, err := os.ReadFile(filepath.Join(filepath.Dir(self), "..", "..", "docs", "limits.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "<!-- limits table: internal/limits.All, checked by TestLimitsDoc -->\n")
	if !ok {
		t.Fatal("docs/limits.md has no limits table marker")
	}
	table, _, _ = strings.Cut(table, "<!-- end of limits table -->")
	var want []string
	for _, l := range All {
		want = append(want, "| `"+l.Name+"` | "+l.Format(l.Default)+" | "+l.Doc+" |")
	}
	got := strings.Split(strings.TrimSpace(table), "\n")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("docs/limits.md's table differs from internal/limits.All (-want +got):\n%s", diff)
	}
}
