package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func sample() *Manifest {
	return &Manifest{
		Cocobuild: "0.1.0-dev",
		Recipe:    Recipe{Name: "sample", SHA256: strings.Repeat("a", 64)},
		Epoch:     1700000000,
		Inputs:    []Input{{Name: "ovmf", Source: "deb:ovmf=1", SHA256: strings.Repeat("b", 64), Size: 10}},
		Artifacts: []Artifact{{Name: "disk.guest", Kind: "disk", Path: "disk/guest.raw", SHA256: strings.Repeat("c", 64), Size: 4096,
			Extra: map[string]any{"format": "raw", "partitions": float64(2)}}},
		Measurements: []Measurement{{TEE: "tee1", Name: "n", Params: map[string]any{"covers": map[string]any{"firmware": true}},
			Values: map[string]any{"digest": "00ff"}}},
	}
}

// TestEncode: the keys, their order and the indentation of manifest.json,
// the extra fields of an artifact sorted in among the common ones.
func TestEncode(t *testing.T) {
	b, err := sample().Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "cocobuild": "0.1.0-dev",
  "recipe": {
    "name": "sample",
    "sha256": "` + strings.Repeat("a", 64) + `"
  },
  "epoch": 1700000000,
  "inputs": [
    {
      "name": "ovmf",
      "source": "deb:ovmf=1",
      "sha256": "` + strings.Repeat("b", 64) + `",
      "size": 10
    }
  ],
  "artifacts": [
    {
      "format": "raw",
      "kind": "disk",
      "name": "disk.guest",
      "partitions": 2,
      "path": "disk/guest.raw",
      "sha256": "` + strings.Repeat("c", 64) + `",
      "size": 4096
    }
  ],
  "measurements": [
    {
      "tee": "tee1",
      "name": "n",
      "params": {
        "covers": {
          "firmware": true
        }
      },
      "values": {
        "digest": "00ff"
      }
    }
  ]
}
`
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("Encode (-want +got):\n%s", diff)
	}
}

// TestParseReadsWhatEncodeWrites: Parse and Read give back the manifest
// Encode wrote, extra artifact fields included.
func TestParseReadsWhatEncodeWrites(t *testing.T) {
	m := sample()
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("Parse(Encode(m)) differs (-want +got):\n%s", diff)
	}
	p := filepath.Join(t.TempDir(), "manifest.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("Read differs (-want +got):\n%s", diff)
	}
}

// TestParseRefuses: what is not a cocobuild manifest is refused.
func TestParseRefuses(t *testing.T) {
	cases := []struct {
		name, doc   string
		notManifest bool
	}{
		{"not JSON", "{", false},
		{"no recipe digest", `{"cocobuild":"0.1.0"}`, true},
		{"no cocobuild version", `{"recipe":{"sha256":"aa"}}`, true},
		{"artifact not an object", `{"cocobuild":"0.1.0","recipe":{"sha256":"aa"},"artifacts":[1]}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.doc))
			if err == nil {
				t.Fatalf("Parse(%s): no error, want one", c.doc)
			}
			if got := errors.Is(err, ErrNotManifest); got != c.notManifest {
				t.Errorf("Parse(%s) = %v: errors.Is ErrNotManifest is %v, want %v", c.doc, err, got, c.notManifest)
			}
		})
	}
}
