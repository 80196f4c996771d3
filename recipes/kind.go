package recipes

import (
	"context"
	"fmt"
	"io"
	"reflect"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/manifest"
)

// Kind is a block type of the recipe language, implemented outside this
// package and registered in a Registry.
type Kind interface {
	// Type is the block type as written in recipes, e.g. "kernel".
	Type() string
	// Schema describes the block body: its attributes and nested blocks.
	Schema() *hcl.BodySchema
	// OutputType is the type of the value that `TYPE.NAME` refers to.
	OutputType() cty.Type
	// Decode turns a block into a Node. ctx resolves var, local, functions
	// and the outputs of the blocks this one refers to; outputs of blocks
	// not built yet are unknown values of their OutputType.
	Decode(b *Block, ctx *hcl.EvalContext) (Node, hcl.Diagnostics)
}

// Node is a decoded block: the steps that build it and how its results
// become the value other blocks see and the entries of the manifest.
type Node interface {
	// Steps lists the steps of the block. Step IDs are local to the block.
	Steps() []*Step
	// Finish is called with the results of every step once they are built.
	Finish(results map[string]*Result) (*Output, error)
}

// Step is one unit of cached work. Its key is the digest of Kind, Version,
// Params and the digests of Inputs and of the results of After.
type Step struct {
	ID      string // unique within the block, e.g. "image"
	Kind    string // the implementation, e.g. "kernel/prebuilt"
	Version string // bumped whenever the implementation's output changes
	Params  any    // JSON-encoded into the key; must be deterministic
	Inputs  []Artifact
	After   []string // IDs of steps of the same block whose results this step uses
	// Probe, when set, runs before the cache is consulted, on every build,
	// and its result joins the key. Steps whose inputs live outside the
	// cache (local files) use it to hash what they read, so that a changed
	// file is never taken from the cache. It may also reject its input.
	Probe func(ctx context.Context) (string, error)
	Run   func(ctx context.Context, sc *StepContext) error
}

// StepContext is what a running step sees.
type StepContext struct {
	// OutDir is an empty directory; every file written below it becomes a
	// file of the step's result.
	OutDir string
	// After holds the results of the steps named in Step.After.
	After map[string]*Result
	// Epoch is the recipe's SOURCE_DATE_EPOCH.
	Epoch int64
	// Log receives the step's detailed log (kept with the result).
	Log io.Writer
	// Progress reports work done out of total (bytes or units); total <= 0
	// means unknown.
	Progress func(done, total int64)
	// Stage reports that the step entered a named stage ("configure",
	// "build 6.12.117"), in which Progress counts unit ("Kbuild commands";
	// "" for bytes); the user sees it beside the step. Never nil.
	Stage func(stage, unit string)
	// Meta is stored with the result; values must be JSON-encodable.
	Meta map[string]any
}

// Result is the outcome of a built step, as stored in the cache.
type Result struct {
	Key   string         `json:"key"`
	Dir   string         `json:"-"` // directory holding Files
	Files []FileDigest   `json:"files"`
	Meta  map[string]any `json:"meta,omitempty"`
}

// FileDigest names a file of a result with its digest.
type FileDigest struct {
	Path   string `json:"path"` // slash-separated, relative to the result directory
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Mode   uint32 `json:"mode"`
}

// File returns the artifact for the result file at path p.
func (r *Result) File(p string) (Artifact, error) {
	for _, f := range r.Files {
		if f.Path == p {
			return Artifact{Path: r.Dir + "/" + p, SHA256: f.SHA256, Size: f.Size}, nil
		}
	}
	return Artifact{}, fmt.Errorf("step result %s has no file %q", r.Key, p)
}

// Artifact is a file produced by a step or input, identified by its digest.
type Artifact struct {
	Origin string // the block that produced it, e.g. "input.ovmf"
	Path   string // where the bytes are (inside the cache)
	SHA256 string
	Size   int64
}

// ArtifactType is the cty capsule type that carries an Artifact through
// expressions, e.g. `image = input.kernel.file`.
var ArtifactType = cty.CapsuleWithOps("artifact", reflect.TypeOf(Artifact{}), &cty.CapsuleOps{
	GoString:     func(v any) string { return fmt.Sprintf("artifact(%s)", v.(*Artifact).SHA256) },
	TypeGoString: func(reflect.Type) string { return "artifact" },
	Equals: func(a, b any) cty.Value {
		return cty.BoolVal(a.(*Artifact).SHA256 == b.(*Artifact).SHA256)
	},
	RawEquals: func(a, b any) bool { return *a.(*Artifact) == *b.(*Artifact) },
})

// ArtifactVal wraps an artifact as a cty value.
func ArtifactVal(a Artifact) cty.Value { return cty.CapsuleVal(ArtifactType, &a) }

// Output is what a finished block gives back.
type Output struct {
	// Value is what `TYPE.NAME` evaluates to; it must conform to the
	// kind's OutputType.
	Value cty.Value
	// Artifacts are copied into the build output and listed in the manifest.
	Artifacts []OutputArtifact
	// Inputs are listed in the manifest's "inputs".
	Inputs []manifest.Input
	// Measurements are listed in the manifest's "measurements".
	Measurements []manifest.Measurement
}

// OutputArtifact is an artifact exported into the output directory.
type OutputArtifact struct {
	Name  string         // e.g. "kernel.guest"
	Kind  string         // e.g. "kernel"
	Path  string         // relative to the output directory, slash-separated
	File  Artifact       // the bytes
	Extra map[string]any // kind-specific manifest fields
}

// Registry holds the block kinds a recipe may use.
type Registry struct {
	kinds map[string]Kind
}

// NewRegistry returns a registry of the given kinds. Two kinds with the same
// type are a programming error and panic.
func NewRegistry(kinds ...Kind) *Registry {
	r := &Registry{kinds: map[string]Kind{}}
	for _, k := range kinds {
		if _, dup := r.kinds[k.Type()]; dup {
			panic("recipes: block kind registered twice: " + k.Type())
		}
		if reserved[k.Type()] {
			panic("recipes: block kind uses a reserved name: " + k.Type())
		}
		r.kinds[k.Type()] = k
	}
	return r
}

// Kind returns the kind registered for a block type.
func (r *Registry) Kind(typ string) (Kind, bool) {
	k, ok := r.kinds[typ]
	return k, ok
}

// Types lists the registered block types, sorted.
func (r *Registry) Types() []string {
	var ts []string
	for t := range r.kinds {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}

// reserved are the block types and reference roots of the language itself.
var reserved = map[string]bool{"recipe": true, "variable": true, "locals": true, "var": true, "local": true}
