package builder

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cocobuild/cocobuild/internal/version"
	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/recipes"
)

// NewManifest collects the manifest of a finished build.
func NewManifest(r *recipes.Recipe, rep *Report) (*manifest.Manifest, error) {
	m := &manifest.Manifest{
		Cocobuild:    version.Version,
		Recipe:       manifest.Recipe{Name: r.Name, SHA256: r.Digest(), Sources: r.Sources()},
		Epoch:        r.Epoch,
		Inputs:       []manifest.Input{},
		Artifacts:    []manifest.Artifact{},
		Measurements: []manifest.Measurement{},
	}
	paths := map[string]string{}
	for _, b := range r.Blocks {
		out, ok := rep.Outputs[b.Addr()]
		if !ok {
			return nil, fmt.Errorf("%s was not built", b.Addr())
		}
		m.Inputs = append(m.Inputs, out.Inputs...)
		m.Measurements = append(m.Measurements, out.Measurements...)
		for _, a := range out.Artifacts {
			p := path.Clean(a.Path)
			if p != a.Path || strings.HasPrefix(p, "../") || path.IsAbs(p) || p == "manifest.json" {
				return nil, fmt.Errorf("%s: artifact path %q is not a clean relative path", b.Addr(), a.Path)
			}
			if prev, dup := paths[p]; dup {
				return nil, fmt.Errorf("%s and %s both write %s", prev, a.Name, p)
			}
			paths[p] = a.Name
			m.Artifacts = append(m.Artifacts, manifest.Artifact{Name: a.Name, Kind: a.Kind, Path: p,
				SHA256: a.File.SHA256, Size: a.File.Size, Extra: a.Extra})
		}
	}
	sort.Slice(m.Inputs, func(i, j int) bool { return m.Inputs[i].Name < m.Inputs[j].Name })
	sort.Slice(m.Artifacts, func(i, j int) bool { return m.Artifacts[i].Name < m.Artifacts[j].Name })
	sort.SliceStable(m.Measurements, func(i, j int) bool {
		if m.Measurements[i].TEE != m.Measurements[j].TEE {
			return m.Measurements[i].TEE < m.Measurements[j].TEE
		}
		return m.Measurements[i].Name < m.Measurements[j].Name
	})
	return m, nil
}

// outputStage is a new output directory being assembled beside out (so out
// is never half-written; files of an earlier build that this build does not
// make are gone afterwards); commit swaps it in.
type outputStage struct {
	out, tmp string
	written  map[string]bool // artifact paths copied in
	done     bool
	// record is where the delivery record of out is kept ("" for none);
	// prev is the last build's.
	record string
	prev   delivered
	linked int // artifacts linked from the previous output, unchanged
}

// newOutputStage makes the directory the new output is assembled in, in
// out's parent (so that commit is a rename). With a cache, the delivery
// record of out is read from it and written after the commit.
func newOutputStage(out string, cache *Cache) (*outputStage, error) {
	out = filepath.Clean(out)
	parent := filepath.Dir(out)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(out)+".tmp-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	st := &outputStage{out: out, tmp: tmp, written: map[string]bool{}}
	if cache != nil {
		st.record = deliveredPath(cache.Dir, out)
		st.prev = readDelivered(st.record)
	}
	return st, nil
}

// addArtifacts copies into the stage every artifact of m not copied yet,
// from the files the blocks' outputs in rep name, hashing each as it is
// copied: bytes other than the digest m states are a *CorruptError, and
// nothing of them stays in the stage. An artifact the previous build left
// in out, unchanged since (see delivered), is linked in instead.
func (st *outputStage) addArtifacts(m *manifest.Manifest, rep *Report) error {
	srcs := map[string]string{}
	for _, o := range rep.Outputs {
		for _, a := range o.Artifacts {
			srcs[path.Clean(a.Path)] = a.File.Path
		}
	}
	for _, a := range m.Artifacts {
		if st.written[a.Path] {
			continue
		}
		dst := filepath.Join(st.tmp, filepath.FromSlash(a.Path))
		if err := mkdirAll(st.tmp, filepath.Dir(dst)); err != nil {
			return err
		}
		if old := filepath.Join(st.out, filepath.FromSlash(a.Path)); st.prev.unchanged(old, a.Path, a.SHA256) && os.Link(old, dst) == nil {
			st.written[a.Path] = true
			st.linked++
			continue
		}
		if err := copyVerified(srcs[a.Path], dst, 0o644, a.SHA256); err != nil {
			var ce *CorruptError
			if errors.As(err, &ce) {
				return fmt.Errorf("%s (artifact %s): %w", a.Path, a.Name, err)
			}
			return fmt.Errorf("writing %s: %w", a.Path, err)
		}
		st.written[a.Path] = true
	}
	return nil
}

// commit writes manifest.json and swaps the stage in as out; an earlier
// output directory is moved aside first and removed afterwards. An out
// that exists and is not a directory is refused, not replaced.
func (st *outputStage) commit(m *manifest.Manifest) error {
	b, err := m.Encode()
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(st.tmp, "manifest.json"), b, 0o644); err != nil {
		return err
	}
	old := ""
	if fi, err := os.Stat(st.out); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s exists and is not a directory: remove it or build into another output directory (-o)", st.out)
		}
		old = st.tmp + ".old"
		if err := os.Rename(st.out, old); err != nil {
			return fmt.Errorf("moving the previous %s aside: %w", st.out, err)
		}
	}
	if err := os.Rename(st.tmp, st.out); err != nil {
		if old != "" {
			os.Rename(old, st.out)
		}
		return fmt.Errorf("moving the new output into %s: %w", st.out, err)
	}
	st.done = true
	if old != "" {
		os.RemoveAll(old)
	}
	if st.record != "" {
		recordDelivered(st.record, st.out, m)
	}
	return nil
}

// abort removes the stage unless it was committed.
func (st *outputStage) abort() {
	if !st.done {
		os.RemoveAll(st.tmp)
	}
}

// mkdirAll creates dir and its parents below root with mode 0755 whatever
// the umask, so that directory modes never depend on the caller.
func mkdirAll(root, dir string) error {
	rel, err := filepath.Rel(root, dir)
	if err != nil || rel == "." {
		return err
	}
	cur := root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, part)
		if err := os.Mkdir(cur, 0o755); err != nil && !os.IsExist(err) {
			return err
		}
		if err := os.Chmod(cur, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes a new file with exactly mode perm, whatever the umask.
func writeFile(path string, data []byte, perm os.FileMode) error {
	if err := os.WriteFile(path, data, perm); err != nil {
		return err
	}
	return os.Chmod(path, perm)
}
