package repro

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestReproSecrets: repro's two builds get none of the variables that
// env:// references in the recipe, its -var-file files (every spelling of
// the flag) or its other arguments name.
func TestReproSecrets(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{
		"r.hcl":      "variable \"k\" {\n  default = \"env://RECIPE_KEY\"\n}\n",
		"one.hcl.in": "k = \"env://VARFILE_ONE\"\n",
		"two.hcl.in": "k = \"env://VARFILE_TWO\"\n",
		"off.hcl.in": "k = \"env://NOT_PASSED\"\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"--var-file", filepath.Join(dir, "one.hcl.in"), "-var-file=" + filepath.Join(dir, "two.hcl.in"), "-var", "k=env://CLI_KEY"}
	got := reproSecrets(filepath.Join(dir, "r.hcl"), args)
	want := []string{"CLI_KEY", "RECIPE_KEY", "VARFILE_ONE", "VARFILE_TWO"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("reproSecrets (-want +got):\n%s", diff)
	}
}
