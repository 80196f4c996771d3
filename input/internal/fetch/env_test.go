package fetch

import (
	"testing"

	"github.com/cocobuild/cocobuild/internal/childenv"
	"github.com/cocobuild/cocobuild/internal/testenv"
)

// TestAptCandidateEnv runs AptCandidate on a wrapper of the host's
// apt-cache that records its environment: apt gets no COSIGN_PASSWORD, no
// variable the context names as an env:// key, no PEM private key, and
// the rest with LC_ALL=C. (AptDownload and SuiteApt.Update run apt-get
// through procgroup.Command, whose environment TestProcgroupEnv checks.)
func TestAptCandidateEnv(t *testing.T) {
	testenv.Tool(t, "apt-cache", "apt")
	runs := testenv.EnvSpy(t, "apt-cache")
	secrets := testenv.SetSecrets(t, "FETCH_TEST_KEY")
	t.Setenv("FETCH_TEST_KEEP", "keep-marker")
	ctx := childenv.WithSecrets(t.Context(), "FETCH_TEST_KEY")
	if _, err := AptCandidate(ctx, "hostname"); err != nil {
		t.Fatal(err)
	}
	envs := runs("apt-cache")
	testenv.CheckNoSecrets(t, "apt-cache", envs, secrets)
	testenv.CheckKept(t, "apt-cache", envs, map[string]string{"FETCH_TEST_KEEP": "keep-marker", "LC_ALL": "C"})
}
