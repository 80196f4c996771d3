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
		a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, extraKinds: testKinds(),
			childEnv: []string{"COCOBUILD_TEST_MAIN=1"}}
		ctx, stop := interruptContext()
		code := runApp(ctx, a, os.Args[1:])
		stop()
		os.Exit(code)
	}
	// verify remembers the feeds it has seen: not in the user's state.
	state, err := os.MkdirTemp("", "cocobuild-test-state-")
	if err != nil {
		panic(err)
	}
	os.Setenv(stateEnv, state)
	code := m.Run()
	os.RemoveAll(state)
	os.Exit(code)
}

// runCLI runs the CLI in-process and returns its exit code and output.
func runCLI(t testing.TB, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	a := &app{stdin: bytes.NewReader(nil), stdout: &out, stderr: &errb, extraKinds: testKinds(), childEnv: []string{"COCOBUILD_TEST_MAIN=1"}}
	code = runApp(context.Background(), a, args)
	return code, out.String(), errb.String()
}
