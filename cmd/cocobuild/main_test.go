package main

import (
	"bytes"
	"context"
	"os"
	"testing"
)

// The test binary doubles as cocobuild: with COCOBUILD_TEST_MAIN=1 it runs
// the CLI, so that tests can run, interrupt and kill real processes.
func TestMain(m *testing.M) {
	if os.Getenv("COCOBUILD_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// runCLI runs the CLI in-process and returns its exit code and output.
func runCLI(t testing.TB, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, bytes.NewReader(nil), &out, &errb)
	return code, out.String(), errb.String()
}
