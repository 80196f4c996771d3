package recipes

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSecretEnv: every env:// reference counts, wherever the recipe has it:
// a variable's default, a block attribute, a comment, a -var-file file, a
// -var value (also inside a map), but nothing that is not one.
func TestSecretEnv(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.hcl": `
# The key is a file, env://COMMENTED_KEY or dev.
variable "signing_key" {
  default = "env://DEFAULT_KEY"
}
variable "keys" {
  type    = map(string)
  default = {}
}
variable "plain" {
  default = "env:/NOT_A_REF"
}
note "n" {
  text = "env://LITERAL_KEY"
}
`,
		"vars.hcl.in": `plain = "env://VARFILE_KEY"` + "\n",
	})
	r := mustLoad(t, dir, LoadOptions{
		VarFiles: []string{filepath.Join(dir, "vars.hcl.in")},
		Vars:     map[string]string{"keys": `{ feed = "env://CLI_MAP_KEY" }`, "signing_key": "env://CLI_KEY"},
	})
	want := []string{"CLI_KEY", "CLI_MAP_KEY", "COMMENTED_KEY", "DEFAULT_KEY", "LITERAL_KEY", "VARFILE_KEY"}
	if diff := cmp.Diff(want, r.SecretEnv()); diff != "" {
		t.Errorf("SecretEnv (-want +got):\n%s", diff)
	}
}
