package qemuacpi

import (
	"testing"

	"github.com/cocobuild/cocobuild/internal/childenv"
	"github.com/cocobuild/cocobuild/internal/testenv"
)

// TestProbeEnv runs Probe on a wrapper of the host's QEMU that records its
// environment: QEMU gets no COSIGN_PASSWORD, no variable the context names
// as an env:// key, no PEM private key, and the rest.
func TestProbeEnv(t *testing.T) {
	testenv.Tool(t, DefaultQEMU, "qemu-system-x86")
	runs := testenv.EnvSpy(t, DefaultQEMU)
	secrets := testenv.SetSecrets(t, "QEMUACPI_TEST_KEY")
	t.Setenv("QEMUACPI_TEST_KEEP", "keep-marker")
	ctx := childenv.WithSecrets(t.Context(), "QEMUACPI_TEST_KEY")
	if _, _, err := Probe(ctx, DefaultQEMU); err != nil {
		t.Fatal(err)
	}
	envs := runs(DefaultQEMU)
	if len(envs) != 2 {
		t.Errorf("QEMU ran %d times, want 2 (--version, -machine help)", len(envs))
	}
	testenv.CheckNoSecrets(t, DefaultQEMU, envs, secrets)
	testenv.CheckKept(t, DefaultQEMU, envs, map[string]string{"QEMUACPI_TEST_KEEP": "keep-marker"})
}
