package tdx

import (
	"encoding/json"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// vector is one entry of tdx.json.
type vector struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Inputs []struct {
		File string `json:"file"`
		Path string `json:"path"`
	} `json:"inputs"`
	Params   map[string]json.RawMessage `json:"params"`
	Expected map[string]json.RawMessage `json:"expected"`
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	var f struct {
		Vectors []vector `json:"vectors"`
	}
	if err := json.Unmarshal(testenv.ReadVector(t, "tdx.json"), &f); err != nil {
		t.Fatalf("parsing tdx.json: %v", err)
	}
	if len(f.Vectors) == 0 {
		t.Fatal("tdx.json has no vectors")
	}
	return f.Vectors
}

// vectorsOfKind returns the vectors whose kind starts with prefix, failing
// when there are none (so that a renamed kind cannot silently skip tests).
func vectorsOfKind(t testing.TB, prefix string) []vector {
	t.Helper()
	var out []vector
	for _, v := range loadVectors(t) {
		if len(v.Kind) >= len(prefix) && v.Kind[:len(prefix)] == prefix {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		t.Fatalf("tdx.json has no vectors of kind %q", prefix)
	}
	return out
}

// str decodes a string field.
func str(t testing.TB, m map[string]json.RawMessage, key string) string {
	t.Helper()
	raw, ok := m[key]
	if !ok {
		t.Fatalf("vector field %q missing", key)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("vector field %q: %v", key, err)
	}
	return s
}

// decode decodes any field into v.
func decode(t testing.TB, m map[string]json.RawMessage, key string, v any) {
	t.Helper()
	raw, ok := m[key]
	if !ok {
		t.Fatalf("vector field %q missing", key)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("vector field %q: %v", key, err)
	}
}
