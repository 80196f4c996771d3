// Package manifest is the model of OUT/manifest.json, the contract between
// building and publishing: what a build made (artifacts), from what (the
// recipe and its pinned inputs), and the launch measurements computed from
// it, with what each measurement covers. builder writes it, publish and the
// CLI read it. Its keys only grow; readers ignore keys they do not know.
//
// The package imports nothing of cocobuild's, so that every other package
// (recipes included) may refer to it.
package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// Manifest is OUT/manifest.json: what a build made, from what, and the
// measurements computed from it.
type Manifest struct {
	Cocobuild    string        `json:"cocobuild"`
	Recipe       Recipe        `json:"recipe"`
	Epoch        int64         `json:"epoch"`
	Inputs       []Input       `json:"inputs"`
	Artifacts    []Artifact    `json:"artifacts"`
	Measurements []Measurement `json:"measurements"`
}

// Recipe identifies the recipe a build came from, by name and digest.
type Recipe struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"` // the digest of Sources (recipes.Recipe.Digest)
	// Sources are what decided the build (recipe files, var files, the
	// lock file, files read by functions, variables), sorted.
	Sources []Source `json:"sources,omitempty"`
}

// Source is one thing that decided a build, as the manifest lists it under
// "recipe": a file named by its slash-separated path relative to the
// recipe's directory, or a variable named by its name, with the sha256 of
// its content. A variable's digest is that of its value and type as cty
// JSON ({"value":…,"type":…}); values never appear in clear, so a secret
// given as a variable stays out of the manifest. A variable declared
// build_input = false (where to deliver, which key signs, where a tool is
// on this host) is listed without a digest: its value is left out.
type Source struct {
	Kind   string `json:"kind"`
	Path   string `json:"path,omitempty"` // files: relative to the recipe's directory
	Name   string `json:"name,omitempty"` // variables
	SHA256 string `json:"sha256,omitempty"`
	// NotBuildInput marks a variable declared build_input = false.
	NotBuildInput bool `json:"not_build_input,omitempty"`
}

// Input is a pinned input of the build.
type Input struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Artifact is one file of the output directory; Extra holds the fields
// specific to its kind, written beside the common ones.
type Artifact struct {
	Name   string
	Kind   string
	Path   string // relative to the output directory, slash-separated
	SHA256 string
	Size   int64
	Extra  map[string]any
}

// Measurement is a launch measurement: the values a TEE reports for the
// parameters they hold for. Params["covers"] says what the values commit
// to (see CoverageParam).
type Measurement struct {
	TEE    string         `json:"tee"`
	Name   string         `json:"name"`
	Params map[string]any `json:"params"`
	Values map[string]any `json:"values"`
}

// MarshalJSON writes the common and kind-specific fields as one object.
func (a Artifact) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	for k, v := range a.Extra {
		m[k] = v
	}
	m["name"], m["kind"], m["path"], m["sha256"], m["size"] = a.Name, a.Kind, a.Path, a.SHA256, a.Size
	return json.Marshal(m)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (a *Artifact) UnmarshalJSON(b []byte) error {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	str := func(k string) string { s, _ := m[k].(string); delete(m, k); return s }
	a.Name, a.Kind, a.Path, a.SHA256 = str("name"), str("kind"), str("path"), str("sha256")
	a.Size = 0
	if f, ok := m["size"].(float64); ok {
		a.Size = int64(f)
	}
	delete(m, "size")
	a.Extra = nil
	if len(m) > 0 {
		a.Extra = m
	}
	return nil
}

// Encode returns the manifest as manifest.json holds it: indented JSON with
// a final newline.
func (m *Manifest) Encode() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ErrNotManifest says a document is JSON but not a cocobuild manifest.json.
var ErrNotManifest = errors.New("not a cocobuild manifest.json (no recipe digest or cocobuild version)")

// Parse decodes manifest.json. A document without the recipe's digest or
// the cocobuild version is refused (ErrNotManifest).
func Parse(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("reading the manifest: %w", err)
	}
	if m.Recipe.SHA256 == "" || m.Cocobuild == "" {
		return nil, fmt.Errorf("reading the manifest: %w", ErrNotManifest)
	}
	return &m, nil
}

// Read reads and parses the manifest.json at path.
func Read(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}
