package recipes

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"sort"
	"sync"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/cocobuild/cocobuild/manifest"
)

// The kinds of Source.
const (
	SourceRecipe  = "recipe"   // a .hcl file of the recipe
	SourceVarFile = "var-file" // a -var-file file
	SourceLock    = "lock"     // the lock file, cocobuild.lock.hcl
	SourceFile    = "file"     // a file read by a function (file, templatefile, …)
	SourceVar     = "var"      // a variable's value as resolved
)

// sourceSet collects the sources of a recipe as it is loaded and
// evaluated. Functions that read files record into it while blocks are
// decoded, possibly from several goroutines.
type sourceSet struct {
	mu  sync.Mutex
	set map[manifest.Source]bool
}

func (s *sourceSet) add(src manifest.Source) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.set == nil {
		s.set = map[manifest.Source]bool{}
	}
	s.set[src] = true
}

func (s *sourceSet) addBytes(kind, path string, b []byte) {
	sum := sha256.Sum256(b)
	s.add(manifest.Source{Kind: kind, Path: path, SHA256: hex.EncodeToString(sum[:])})
}

// list returns the sources sorted by kind, path, name and digest.
func (s *sourceSet) list() []manifest.Source {
	s.mu.Lock()
	out := make([]manifest.Source, 0, len(s.set))
	for src := range s.set {
		out = append(out, src)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.SHA256 < b.SHA256
	})
	return out
}

// Sources lists what decided the build, sorted: the recipe files, the
// -var-file files, the lock file, the files read by functions, and every
// variable's resolved value. Functions in block bodies run when the blocks
// are decoded, so the list is complete once every block has been decoded
// (after Validate for paths the recipe names directly, after a build for
// all).
func (r *Recipe) Sources() []manifest.Source { return r.sources.list() }

// Digest is the recipe digest: the sha256 of the sorted list of Sources,
// each as "kind\x00path-or-name\x00sha256\n" (sha256 "-" for a variable
// that is not a build input). It depends on nothing of the
// host: the same recipe, files and variables in another directory give the
// same digest.
func (r *Recipe) Digest() string {
	h := sha256.New()
	for _, s := range r.Sources() {
		id := s.Path
		if s.Kind == SourceVar {
			id = s.Name
		}
		sum := s.SHA256
		if s.NotBuildInput {
			sum = "-"
		}
		fmt.Fprintf(h, "%s\x00%s\x00%s\n", s.Kind, id, sum)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// recordVariables records the digest of every resolved variable, and the
// names of those that are not build inputs.
func (r *Recipe) recordVariables() error {
	for n, v := range r.vars {
		if r.notInputs[n] {
			r.sources.add(manifest.Source{Kind: SourceVar, Name: n, NotBuildInput: true})
			continue
		}
		b, err := ctyjson.Marshal(v, cty.DynamicPseudoType)
		if err != nil {
			return fmt.Errorf("variable %q: %w", n, err)
		}
		sum := sha256.Sum256(b)
		r.sources.add(manifest.Source{Kind: SourceVar, Name: n, SHA256: hex.EncodeToString(sum[:])})
	}
	return nil
}

// sourcePath names a file for the manifest: its slash-separated path
// relative to the recipe's directory dir when it lies inside it, else its
// base name (a -var-file kept elsewhere), never a host path.
func sourcePath(dir, path string) string {
	absDir, err1 := filepath.Abs(dir)
	abs, err2 := filepath.Abs(path)
	if err1 == nil && err2 == nil {
		if rel, err := filepath.Rel(absDir, abs); err == nil && filepath.IsLocal(rel) {
			return filepath.ToSlash(rel)
		}
	}
	return filepath.Base(path)
}
