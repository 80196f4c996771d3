package procgroup

import (
	"context"
	"os"
	"testing"

	"github.com/cocobuild/cocobuild/internal/childenv"
	"github.com/cocobuild/cocobuild/internal/testenv"
)

// TestProcgroupEnv runs a tool through Command, as every process-group site
// does (make, the go command, apt-get, qemu, the u-root helper): it must
// not see COSIGN_PASSWORD, a name the context carries or a PEM private key,
// and must see the rest, with what the caller appends.
func TestProcgroupEnv(t *testing.T) {
	runs := testenv.EnvSpy(t, "true")
	secrets := testenv.SetSecrets(t, "PROCGROUP_TEST_KEY")
	t.Setenv("PROCGROUP_TEST_KEEP", "keep-marker")
	ctx := childenv.WithSecrets(context.Background(), "PROCGROUP_TEST_KEY")
	cmd := Command(ctx, "true")
	cmd.Env = append(cmd.Env, "PROCGROUP_TEST_ADDED=1")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	envs := runs("true")
	testenv.CheckNoSecrets(t, "true", envs, secrets)
	testenv.CheckKept(t, "true", envs, map[string]string{"PROCGROUP_TEST_KEEP": "keep-marker", "PROCGROUP_TEST_ADDED": "1", "PATH": os.Getenv("PATH")})
}
