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
	t.Setenv("COSIGN_PASSWORD", "pw-marker")
	t.Setenv("QEMUACPI_TEST_KEY", "named-marker")
	t.Setenv("QEMUACPI_TEST_PEM", "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMG\n-----END PRIVATE KEY-----\n")
	t.Setenv("QEMUACPI_TEST_KEEP", "keep-marker")
	ctx := childenv.WithSecrets(t.Context(), "QEMUACPI_TEST_KEY")
	if _, _, err := Probe(ctx, DefaultQEMU); err != nil {
		t.Fatal(err)
	}
	envs := runs(DefaultQEMU)
	if len(envs) != 2 {
		t.Fatalf("QEMU ran %d times, want 2 (--version, -machine help)", len(envs))
	}
	for _, env := range envs {
		for _, k := range []string{"COSIGN_PASSWORD", "QEMUACPI_TEST_KEY", "QEMUACPI_TEST_PEM"} {
			if v, ok := env[k]; ok {
				t.Errorf("QEMU got %s=%q, want it left out", k, v)
			}
		}
		if env["QEMUACPI_TEST_KEEP"] != "keep-marker" {
			t.Errorf("QEMU got QEMUACPI_TEST_KEEP=%q, want keep-marker", env["QEMUACPI_TEST_KEEP"])
		}
	}
}
