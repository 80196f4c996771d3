package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// EnvSpy puts a wrapper for each named tool first on PATH (with t.Setenv):
// the wrapper writes the environment it was started with to a file and then
// execs the real tool, found on PATH now (a missing tool fails in CI and
// skips elsewhere, as Tool does). The returned function gives, for a tool,
// the environment of each of its runs so far, in no particular order.
func EnvSpy(t testing.TB, tools ...string) func(tool string) []map[string]string {
	t.Helper()
	envBin := Tool(t, "env", "coreutils")
	dir := t.TempDir()
	wrap, seen := filepath.Join(dir, "bin"), filepath.Join(dir, "seen")
	for _, d := range []string{wrap, seen} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range tools {
		real := Tool(t, name, name)
		// env -0: values may span lines (PEM keys); $$ keeps runs apart.
		script := fmt.Sprintf("#!/bin/sh\n%s -0 > %s/%s.$$\nexec %s \"$@\"\n", envBin, seen, name, real)
		if err := os.WriteFile(filepath.Join(wrap, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", wrap+string(os.PathListSeparator)+os.Getenv("PATH"))
	return func(tool string) []map[string]string {
		t.Helper()
		files, err := filepath.Glob(filepath.Join(seen, tool+".*"))
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(files)
		var runs []map[string]string
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			env := map[string]string{}
			for _, kv := range strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00") {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
			runs = append(runs, env)
		}
		return runs
	}
}
