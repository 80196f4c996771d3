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
	t.Setenv("COSIGN_PASSWORD", "pw-marker")
	t.Setenv("FETCH_TEST_KEY", "named-marker")
	t.Setenv("FETCH_TEST_PEM", "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\neyJrZGYiOnsibmFtZSI6InNjcnlwdCJ9\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
	t.Setenv("FETCH_TEST_KEEP", "keep-marker")
	ctx := childenv.WithSecrets(t.Context(), "FETCH_TEST_KEY")
	if _, err := AptCandidate(ctx, "hostname"); err != nil {
		t.Fatal(err)
	}
	envs := runs("apt-cache")
	if len(envs) != 1 {
		t.Fatalf("apt-cache ran %d times, want 1", len(envs))
	}
	env := envs[0]
	for _, k := range []string{"COSIGN_PASSWORD", "FETCH_TEST_KEY", "FETCH_TEST_PEM"} {
		if v, ok := env[k]; ok {
			t.Errorf("apt-cache got %s=%q, want it left out", k, v)
		}
	}
	for k, want := range map[string]string{"FETCH_TEST_KEEP": "keep-marker", "LC_ALL": "C"} {
		if env[k] != want {
			t.Errorf("apt-cache got %s=%q, want %q", k, env[k], want)
		}
	}
}
