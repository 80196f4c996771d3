package procgroup

import (
	"context"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/internal/childenv"
	"github.com/cocobuild/cocobuild/internal/testenv"
)

// TestProcgroupEnv runs env(1) through Command, as every process-group
// site does (make, the go command, apt-get, qemu, the u-root helper, the
// repro builds): it must not see COSIGN_PASSWORD, a name the context
// carries or a PEM private key, and must see the rest, with what the
// caller appends.
func TestProcgroupEnv(t *testing.T) {
	envBin := testenv.Tool(t, "env", "coreutils")
	t.Setenv("COSIGN_PASSWORD", "pw-marker")
	t.Setenv("PROCGROUP_TEST_KEY", "named-marker")
	t.Setenv("PROCGROUP_TEST_PEM", "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI\n-----END EC PRIVATE KEY-----\n")
	t.Setenv("PROCGROUP_TEST_KEEP", "keep-marker")
	ctx := childenv.WithSecrets(context.Background(), "PROCGROUP_TEST_KEY")
	cmd := Command(ctx, envBin)
	cmd.Env = append(cmd.Env, "PROCGROUP_TEST_ADDED=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("env: %v", err)
	}
	got := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			got[k] = v
		}
	}
	for _, k := range []string{"COSIGN_PASSWORD", "PROCGROUP_TEST_KEY", "PROCGROUP_TEST_PEM"} {
		if v, ok := got[k]; ok {
			t.Errorf("the child got %s=%q, want it left out", k, v)
		}
	}
	for k, want := range map[string]string{"PROCGROUP_TEST_KEEP": "keep-marker", "PROCGROUP_TEST_ADDED": "1"} {
		if got[k] != want {
			t.Errorf("the child got %s=%q, want %q", k, got[k], want)
		}
	}
	if got["PATH"] == "" {
		t.Error("the child got no PATH, want the caller's")
	}
}
