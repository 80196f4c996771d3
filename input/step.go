package input

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/input/internal/fetch"
	"github.com/cocobuild/cocobuild/internal/atomicfile"
	"github.com/cocobuild/cocobuild/internal/filecopy"
	"github.com/cocobuild/cocobuild/internal/filehash"
	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/recipes"
)

// outName is the file name of the input inside its step result.
func (n *inputNode) outName() string {
	switch {
	case n.extract != "":
		return path.Base(n.extract)
	case n.extractDir != "":
		return path.Base(path.Clean(n.extractDir)) + ".tar"
	case n.file != "":
		return filepath.Base(n.file)
	case n.url != "":
		if b := path.Base(strings.SplitN(strings.SplitN(n.url, "?", 2)[0], "#", 2)[0]); b != "." && b != "/" && b != "" {
			return b
		}
		return "download"
	default:
		return n.deb + ".deb"
	}
}

// Steps implements recipes.Node: one step that fetches, verifies and extracts.
func (n *inputNode) Steps() []*recipes.Step {
	s := &recipes.Step{
		ID: "fetch", Kind: "input", Version: "1",
		Params: n.params(),
		Run:    n.run,
	}
	if n.file != "" || n.pin == "" {
		// Local files can change under the same name, and unpinned sources
		// under the same URL: hash them on every build.
		s.Probe = n.probe
	}
	return []*recipes.Step{s}
}

// params are the step parameters; extract_dir joins them only when set, so
// that the keys of existing inputs do not change.
func (n *inputNode) params() map[string]string {
	p := map[string]string{"source": n.source(), "sha256": n.pin, "extract": n.extract, "name": n.outName()}
	if n.extractDir != "" {
		p["extract_dir"] = path.Clean(strings.TrimPrefix(n.extractDir, "/"))
	}
	return p
}

// probe hashes a local file (or fetches an unpinned source) before the cache is consulted.
func (n *inputNode) probe(ctx context.Context) (string, error) {
	if n.file != "" {
		// Remembered while the file is unchanged, so a rebuild does not
		// hash it again.
		abs, err := filepath.Abs(n.file)
		if err != nil {
			return "", err
		}
		sum, err := recipes.Memoize(ctx, "file-sha256 "+abs, func() (string, []string, error) {
			sum, _, err := filehash.SHA256(abs)
			return sum, []string{abs}, err
		})
		if err != nil {
			return "", fmt.Errorf("input %q: %w", n.name, err)
		}
		if n.pin != "" && sum != n.pin {
			return "", n.mismatch(sum)
		}
		return sum, nil
	}
	p, _, err := n.fetchBlob(ctx, nil)
	if err != nil {
		return "", err
	}
	return filepath.Base(p), nil
}

// fetchBlob brings the source's bytes into the blob cache, verified, and
// returns the blob's path and its digest.
func (n *inputNode) fetchBlob(ctx context.Context, progress func(done, total int64)) (string, int64, error) {
	if n.env == nil || n.env.cache == nil {
		return "", 0, fmt.Errorf("input %q: no cache to fetch into (make the input kind with input.New)", n.name)
	}
	c := n.env.cache
	if n.pin != "" {
		// A download kept in the cache is used only if its bytes are
		// still the pin's (it is hashed once, when the input step runs);
		// otherwise it is removed and fetched again.
		blob := c.BlobPath(n.pin)
		if st, err := os.Stat(blob); err == nil {
			// Hashed once, when the input step runs: a blob whose bytes
			// are not its name's is removed and fetched again.
			got, _, err := filehash.SHA256(blob)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return "", 0, err
			}
			if err == nil && got == n.pin {
				return blob, st.Size(), nil
			}
			if err := c.RemoveBlob(n.pin); err != nil {
				return "", 0, fmt.Errorf("input %q: the download kept in the cache, %s, has sha256 %s, not its pin's; removing it: %w", n.name, blob, got, err)
			}
		}
	}
	tmp, err := c.TempDir("fetch")
	if err != nil {
		return "", 0, err
	}
	defer os.RemoveAll(tmp)
	var got string
	switch {
	case n.url != "":
		f, err := os.Create(filepath.Join(tmp, "blob"))
		if err != nil {
			return "", 0, err
		}
		h := sha256.New()
		_, err = fetch.HTTP(ctx, n.env.HTTP, n.url, io.MultiWriter(f, h), progress)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", 0, fmt.Errorf("input %q: %w", n.name, err)
		}
		got = hex.EncodeToString(h.Sum(nil))
		if err := os.Rename(f.Name(), filepath.Join(tmp, got)); err != nil {
			return "", 0, err
		}
	case n.deb != "":
		deb, err := n.aptDownload(ctx, tmp)
		if errors.Is(err, fetch.ErrVersionGone) {
			return "", 0, n.versionGone(ctx, err)
		}
		if err != nil {
			return "", 0, fmt.Errorf("input %q: %w", n.name, err)
		}
		got, _, err = filehash.SHA256(deb)
		if err != nil {
			return "", 0, err
		}
		if err := os.Rename(deb, filepath.Join(tmp, got)); err != nil {
			return "", 0, err
		}
	}
	if n.pin != "" && got != n.pin {
		return "", 0, n.mismatch(got)
	}
	if err := os.Chmod(filepath.Join(tmp, got), 0o444); err != nil {
		return "", 0, err
	}
	dst := c.BlobPath(got)
	if err := os.Rename(filepath.Join(tmp, got), dst); err != nil {
		return "", 0, fmt.Errorf("storing download: %w", err)
	}
	st, err := os.Stat(dst)
	if err != nil {
		return "", 0, err
	}
	return dst, st.Size(), nil
}

func (n *inputNode) run(ctx context.Context, sc *recipes.StepContext) error {
	dst := filepath.Join(sc.OutDir, n.outName())
	if n.file != "" {
		c, err := filecopy.Copy(n.file, dst, 0o644)
		if err != nil {
			return fmt.Errorf("input %q: %w", n.name, err)
		}
		if n.pin != "" && c.SHA256 != n.pin {
			return n.mismatch(c.SHA256) // the file changed since the probe
		}
		sc.Meta["fetched_sha256"], sc.Meta["fetched_size"] = c.SHA256, c.Size
		return nil
	}
	blob, size, err := n.fetchBlob(ctx, sc.Progress)
	if err != nil {
		return err
	}
	sc.Meta["fetched_sha256"], sc.Meta["fetched_size"] = filepath.Base(blob), size
	if n.extract == "" && n.extractDir == "" {
		_, err := filecopy.Copy(blob, dst, 0o644)
		return err
	}
	f, err := os.Open(blob)
	if err != nil {
		return err
	}
	defer f.Close()
	if n.extractDir != "" {
		return atomicfile.Write(dst, 0o644, func(w io.Writer) error {
			bw := bufio.NewWriterSize(w, 1<<20)
			if err := fetch.DebDir(f, size, n.extractDir, bw, time.Unix(sc.Epoch, 0)); err != nil {
				return fmt.Errorf("input %q: %s=%s: %w", n.name, n.deb, n.version, err)
			}
			return bw.Flush()
		})
	}
	data, err := fetch.DebFile(f, size, n.extract)
	if err != nil {
		return fmt.Errorf("input %q: %s=%s: %w", n.name, n.deb, n.version, err)
	}
	return os.WriteFile(dst, data, 0o644)
}

// Finish implements recipes.Node.
func (n *inputNode) Finish(results map[string]*recipes.Result) (*recipes.Output, error) {
	res := results["fetch"]
	a, err := res.File(n.outName())
	if err != nil {
		return nil, err
	}
	a.Origin = "input." + n.name
	fetchedSHA, _ := res.Meta["fetched_sha256"].(string)
	fetchedSize, _ := res.Meta["fetched_size"].(float64)
	return &recipes.Output{
		Value: cty.ObjectVal(map[string]cty.Value{
			"artifact": recipes.ArtifactVal(a),
			"sha256":   cty.StringVal(a.SHA256),
			"size":     cty.NumberIntVal(a.Size),
			"source":   cty.StringVal(n.source()),
		}),
		Inputs: []manifest.Input{{Name: n.name, Source: n.source(), SHA256: fetchedSHA, Size: int64(fetchedSize)}},
	}, nil
}

// suiteApt is the private apt configuration of the input's suite, with
// its state in the cache.
func (n *inputNode) suiteApt() (*fetch.SuiteApt, error) {
	a, err := fetch.OpenSuite(os.DirFS("/"), n.env.aptDir, n.suite)
	if err != nil {
		return nil, fmt.Errorf("input %q: %w", n.name, err)
	}
	return a, nil
}

// aptDownload fetches the input's .deb into dir: from its suite through
// the private configuration, or with the host's apt.
func (n *inputNode) aptDownload(ctx context.Context, dir string) (string, error) {
	if n.suite == "" {
		return fetch.AptDownload(ctx, n.deb, n.version, dir)
	}
	a, err := n.suiteApt()
	if err != nil {
		return "", err
	}
	return a.Download(ctx, n.deb, n.version, dir)
}

// aptCandidate is the version of the input's package that apt serves now.
func (n *inputNode) aptCandidate(ctx context.Context) (string, error) {
	if n.suite == "" {
		return fetch.AptCandidate(ctx, n.deb)
	}
	a, err := n.suiteApt()
	if err != nil {
		return "", err
	}
	return a.Candidate(ctx, n.deb)
}

// versionGone is the error for a pinned version the archive no longer
// serves: it says so, names the version it serves now when it has one,
// and the fixes.
func (n *inputNode) versionGone(ctx context.Context, err error) error {
	where, checked := "the package archive", ""
	var v string
	var cerr error
	if n.suite != "" {
		where, checked = "suite "+n.suite+" of the package archive", "its lists were fetched again to check"
		if a, aerr := n.suiteApt(); aerr == nil {
			v, cerr = a.CachedCandidate(ctx, n.deb)
		}
	} else {
		v, cerr = fetch.AptCandidate(ctx, n.deb)
	}
	var notes []string
	if checked != "" {
		notes = append(notes, checked)
	}
	if cerr == nil && v != "" {
		notes = append(notes, "it serves "+v+" now")
	}
	note := ""
	if len(notes) > 0 {
		note = " (" + strings.Join(notes, "; ") + ")"
	}
	fix := "run `cocobuild lock -update` to move to the version it serves now"
	if n.recipeVersion {
		ver := "…"
		if cerr == nil && v != "" {
			ver = v
		}
		fix = fmt.Sprintf("pin a version it has (version = %q and the sha256 of that version's .deb)", ver)
	}
	return fmt.Errorf("input %q: Debian package %s=%s is no longer in %s%s: %w. To fix it, %s, or use file = \"…\" with a saved copy of the bytes", n.name, n.deb, n.version, where, note, err, fix)
}
