package input

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/input/internal/fetch"
	"github.com/cocobuild/cocobuild/internal/atomicfile"
	"github.com/cocobuild/cocobuild/internal/filehash"
	"github.com/cocobuild/cocobuild/internal/fsinfo"
	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/recipes"
)

// Cache is the part of the build cache (builder.Cache) the input kind
// keeps its downloads in: blobs named by their sha256, and temporary
// directories on the same file system.
type Cache interface {
	// BlobPath is where the download with digest sha is kept.
	BlobPath(sha string) string
	// RemoveBlob removes the download with digest sha (one whose bytes are
	// not their name's).
	RemoveBlob(sha string) error
	// TempDir makes a new temporary directory in the cache.
	TempDir(prefix string) (string, error)
}

// Options are the settings of an invocation that decide how inputs are
// pinned and fetched.
type Options struct {
	AllowUnpinned bool // build inputs without a sha256 (never for releases)
	Locked        bool // refuse any difference between recipe and lock
	Resolving     bool // `cocobuild lock`: versions and pins are being resolved
	HTTP          *http.Client
}

// config is what the input kind needs from the invocation.
type config struct {
	Options
	cache  Cache
	aptDir string // the state of the private apt configurations of suites
	lock   *Lock  // pins from cocobuild.lock.hcl; may be empty
}

// Kind implements `input "NAME" { … }`: one pinned source of bytes. Make
// it with New; the zero Kind decodes and validates blocks but cannot fetch.
type Kind struct{ cfg *config }

// New returns the input kind of a build whose cache is cache (in the
// directory cacheDir) and whose recipe is in recipeDir: it reads the
// recipe's lock file (LockPath), whose problems are hcl.Diagnostics.
func New(cache Cache, cacheDir, recipeDir string, o Options) (Kind, error) {
	lock, diags := ReadLock(LockPath(recipeDir))
	if diags.HasErrors() {
		return Kind{}, diags
	}
	return Kind{cfg: &config{Options: o, cache: cache, aptDir: filepath.Join(cacheDir, "apt"), lock: lock}}, nil
}

// Lock is the lock file the kind takes pins from (nil for the zero Kind).
func (k Kind) Lock() *Lock {
	if k.cfg == nil {
		return nil
	}
	return k.cfg.lock
}

// Type implements recipes.Kind.
func (Kind) Type() string { return "input" }

// Schema implements recipes.Kind.
func (Kind) Schema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "file"}, {Name: "url"}, {Name: "deb"}, {Name: "suite"}, {Name: "version"}, {Name: "extract"}, {Name: "extract_dir"},
		{Name: "sha256"}, {Name: "description"},
	}}
}

// inputOutputType is what `input.NAME` evaluates to.
var inputOutputType = cty.Object(map[string]cty.Type{
	"artifact": recipes.ArtifactType,
	"sha256":   cty.String,
	"size":     cty.Number,
	"source":   cty.String,
})

// OutputType implements recipes.Kind.
func (Kind) OutputType() cty.Type { return inputOutputType }

var sha256Re = regexp.MustCompile(`^[0-9a-f]{64}$`)

// inputNode is a decoded input block.
type inputNode struct {
	env     *config
	name    string
	file    string // absolute path, for file inputs
	relFile string // as written, for the source string
	url     string
	deb     string
	// suite names the Debian suite the package comes from, when it is not
	// one the host's apt serves (e.g. "forky"); "" for the host's.
	suite   string
	version string
	extract string
	// extractDir names a directory of the package, delivered as a
	// reproducible tar archive of its content.
	extractDir string
	pin        string // sha256 of the fetched bytes; "" when unpinned
	// pinRng is where the pin is written: the sha256 attribute of the
	// recipe, or of the lock file when the pin comes from there (lockPin).
	pinRng  *hcl.Range
	lockPin bool
	// recipeVersion says the version is written in the recipe (not taken
	// from the lock), so `lock -update` keeps it.
	recipeVersion bool
	rng           hcl.Range
}

// source is the input's exact origin, as recorded in the lock and manifest.
func (n *inputNode) source() string {
	switch {
	case n.file != "":
		return "file:" + n.relFile
	case n.url != "":
		return "url:" + n.url
	default:
		return "deb:" + n.debRef() + "=" + n.version
	}
}

// debRef is the package as apt names it: "ovmf", or "ovmf-amdsev/forky"
// from a suite.
func (n *inputNode) debRef() string {
	if n.suite != "" {
		return n.deb + "/" + n.suite
	}
	return n.deb
}

// Decode implements recipes.Kind.
func (k Kind) Decode(b *recipes.Block, ctx *hcl.EvalContext) (recipes.Node, hcl.Diagnostics) {
	content, diags := b.Body.Content(k.Schema())
	if diags.HasErrors() {
		return nil, diags
	}
	n := &inputNode{env: k.cfg, name: b.Name, rng: b.DefRange}
	str := func(name string, dst *string) {
		if a, ok := content.Attributes[name]; ok {
			diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.String, dst)...)
		}
	}
	str("file", &n.relFile)
	str("url", &n.url)
	str("deb", &n.deb)
	str("suite", &n.suite)
	str("version", &n.version)
	str("extract", &n.extract)
	str("extract_dir", &n.extractDir)
	str("sha256", &n.pin)
	if a, ok := content.Attributes["sha256"]; ok {
		n.pinRng = a.Expr.Range().Ptr()
	}
	n.recipeVersion = n.version != ""
	if diags.HasErrors() {
		return nil, diags
	}
	var sources []string
	for _, s := range []string{"file", "url", "deb"} {
		if _, ok := content.Attributes[s]; ok {
			sources = append(sources, s)
		}
	}
	if len(sources) != 1 {
		detail := "Give one of file, url or deb."
		if len(sources) > 1 {
			detail = fmt.Sprintf("This input has %s; give exactly one source.", strings.Join(sources, " and "))
		}
		return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Input needs exactly one source", Detail: detail, Subject: b.DefRange.Ptr()})
	}
	attrRange := func(name string) *hcl.Range { return content.Attributes[name].Expr.Range().Ptr() }
	if _, ok := content.Attributes["version"]; ok && n.deb == "" {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unexpected version",
			Detail: "version goes with deb: it is the Debian package version.", Subject: attrRange("version")})
	}
	if _, ok := content.Attributes["suite"]; ok {
		switch {
		case n.deb == "":
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unexpected suite",
				Detail: "suite goes with deb: it names the Debian suite the package comes from, such as \"forky\".", Subject: attrRange("suite")})
		case !fetch.SuiteRe.MatchString(n.suite):
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid suite",
				Detail: "suite is the name of a Debian suite, such as \"forky\" or \"unstable\".", Subject: attrRange("suite")})
		}
	}
	if _, ok := content.Attributes["extract"]; ok {
		if n.deb == "" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unexpected extract",
				Detail: "extract names a file inside a Debian package: it goes with deb.", Subject: attrRange("extract")})
		} else if c := path.Clean(strings.TrimPrefix(n.extract, "/")); c == "." || strings.HasPrefix(c, "../") {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid extract path",
				Detail: "extract is a path inside the package, such as \"boot/vmlinuz-6.1.0-56-cloud-amd64\".", Subject: attrRange("extract")})
		}
	}
	if _, ok := content.Attributes["extract_dir"]; ok {
		switch c := path.Clean(strings.TrimPrefix(n.extractDir, "/")); {
		case n.deb == "":
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unexpected extract_dir",
				Detail: "extract_dir names a directory inside a Debian package: it goes with deb.", Subject: attrRange("extract_dir")})
		case n.extract != "":
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Both extract and extract_dir",
				Detail: "An input delivers one thing: give extract (one file) or extract_dir (a directory, as a tar archive), not both; use two inputs for both.", Subject: attrRange("extract_dir")})
		case c == "." || c == ".." || strings.HasPrefix(c, "../"):
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid extract_dir path",
				Detail: "extract_dir is a directory inside the package, such as \"lib/modules/6.1.0-56-cloud-amd64\".", Subject: attrRange("extract_dir")})
		}
	}
	if n.url != "" && !strings.HasPrefix(n.url, "https://") && !strings.HasPrefix(n.url, "http://") {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid URL",
			Detail: "url must start with https:// or http://.", Subject: attrRange("url")})
	}
	if _, ok := content.Attributes["sha256"]; ok && !sha256Re.MatchString(n.pin) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid sha256",
			Detail: "sha256 is 64 lowercase hexadecimal digits.", Subject: attrRange("sha256")})
	}
	if n.relFile != "" {
		n.file = n.relFile
		if !filepath.IsAbs(n.file) {
			n.file = filepath.Join(filepath.Dir(b.DefRange.Filename), n.relFile)
		}
		if d := checkInputFile(n.file, n.relFile, attrRange("file")); d != nil {
			diags = append(diags, d)
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	diags = append(diags, n.applyLock(content)...)
	if diags.HasErrors() {
		return nil, diags
	}
	return n, diags
}

// checkInputFile reports a file input that is missing or not a regular
// file, at its file attribute, so that validate finds it before a build.
func checkInputFile(file, rel string, rng *hcl.Range) *hcl.Diagnostic {
	where := ""
	if !filepath.IsAbs(rel) {
		where = fmt.Sprintf(" (a relative file is relative to the recipe's directory, %s)", filepath.Dir(file))
	}
	st, err := os.Stat(file)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Input file not found",
			Detail: fmt.Sprintf("%s does not exist%s.", file, where), Subject: rng}
	case err != nil:
		return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read input file", Detail: err.Error() + ".", Subject: rng}
	case !st.Mode().IsRegular():
		return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Input is not a file",
			Detail: fmt.Sprintf("%s is a %s; an input file is one regular file (a directory goes into a rootfs with from { dir = \"…\" }).", file, fsinfo.Kind(st.Mode())), Subject: rng}
	}
	return nil
}

// applyLock fills the version and pin from the lock file and checks drift.
func (n *inputNode) applyLock(content *hcl.BodyContent) hcl.Diagnostics {
	var lp Pin
	var inLock bool
	if n.env != nil && n.env.lock != nil {
		lp, inLock = n.env.lock.Pins[n.name]
	}
	if n.deb != "" && n.version == "" && inLock {
		if v, ok := strings.CutPrefix(lp.Source, "deb:"+n.debRef()+"="); ok {
			n.version = v
		}
	}
	locked := n.env != nil && n.env.Locked
	switch {
	case inLock && lp.Source == n.source():
		if n.pin == "" {
			n.pin, n.lockPin = lp.SHA256, true
			if r, ok := n.env.lock.ranges[n.name]; ok {
				n.pinRng = &r
			}
		} else if n.pin != lp.SHA256 && locked {
			return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Recipe and lock disagree",
				Detail:  fmt.Sprintf("Input %q pins sha256 %s in the recipe but %s in %s; run `cocobuild lock` to update the lock.", n.name, n.pin, lp.SHA256, recipes.LockFileName),
				Subject: content.Attributes["sha256"].Expr.Range().Ptr()}}
		}
	case locked && inLock:
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Recipe and lock disagree",
			Detail:  fmt.Sprintf("Input %q is %s in the recipe but %s in %s; run `cocobuild lock` to update the lock.", n.name, n.source(), lp.Source, recipes.LockFileName),
			Subject: n.rng.Ptr()}}
	case locked:
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Input missing from the lock",
			Detail:  fmt.Sprintf("--locked: input %q has no entry in %s; run `cocobuild lock`.", n.name, recipes.LockFileName),
			Subject: n.rng.Ptr()}}
	}
	if n.env != nil && n.env.Resolving {
		return nil
	}
	if n.deb != "" && n.version == "" {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Debian package without a version",
			Detail:  fmt.Sprintf("Input %q: give version = \"…\", or run `cocobuild lock` to record the version apt serves now.", n.name),
			Subject: n.rng.Ptr()}}
	}
	if n.pin == "" && (n.env == nil || !n.env.AllowUnpinned) {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Input is not pinned",
			Detail:  fmt.Sprintf("Input %q (%s) has no sha256: add sha256 = \"…\" to the block, or run `cocobuild lock` to record it in %s (or build with --allow-unpinned, never for a release).", n.name, n.source(), recipes.LockFileName),
			Subject: n.rng.Ptr()}}
	}
	return nil
}

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

func (n *inputNode) mismatch(got string) error {
	e := &PinMismatchError{Input: n.name, Source: n.source(), Want: n.pin, Got: got, Subject: n.pinRng, InLock: n.lockPin}
	if n.env != nil && n.env.lock != nil && n.env.lock.src != nil {
		e.lockPath, e.lockSrc = n.env.lock.Path, n.env.lock.src
	}
	return e
}

// PinMismatchError reports bytes whose digest is not the pinned one.
type PinMismatchError struct {
	Input, Source, Want, Got string
	// Subject is the sha256 attribute that holds the pin: in the recipe,
	// or in the lock file when InLock.
	Subject *hcl.Range
	InLock  bool

	lockPath string // the lock file and its bytes, to show the pin in it
	lockSrc  []byte
}

func (e *PinMismatchError) Error() string {
	msg := fmt.Sprintf("input %q (%s): sha256 mismatch: expected %s, got %s; if the new bytes are the ones you want, ", e.Input, e.Source, e.Want, e.Got)
	switch {
	case e.InLock:
		return msg + "run `cocobuild lock -update` to record them"
	case e.Subject != nil:
		return msg + fmt.Sprintf("edit the sha256 at %s:%d:%d", e.Subject.Filename, e.Subject.Start.Line, e.Subject.Start.Column)
	}
	return msg + "update the pin"
}

// DiagnosticFiles are the sources Diagnostic points into beyond the
// recipe's: the lock file, when it was read.
func (e *PinMismatchError) DiagnosticFiles() map[string][]byte {
	if e.lockSrc == nil {
		return nil
	}
	return map[string][]byte{e.lockPath: e.lockSrc}
}

// Diagnostic shows the mismatch at the sha256 attribute that holds the pin;
// nil when the pin's place is unknown.
func (e *PinMismatchError) Diagnostic() *hcl.Diagnostic {
	if e.Subject == nil {
		return nil
	}
	detail := fmt.Sprintf("input %q (%s): expected %s, got %s. ", e.Input, e.Source, e.Want, e.Got)
	if e.InLock {
		detail += "This pin was recorded by `cocobuild lock`; if the new bytes are the ones you want, run `cocobuild lock -update`."
	} else {
		detail += "If the new bytes are the ones you want, edit this sha256 in the recipe (`cocobuild lock -update` does not change a pin written in the recipe)."
	}
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Input does not match its sha256 pin", Detail: detail, Subject: e.Subject}
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
		sum, size, err := copyHashed(n.file, dst)
		if err != nil {
			return fmt.Errorf("input %q: %w", n.name, err)
		}
		if n.pin != "" && sum != n.pin {
			return n.mismatch(sum) // the file changed since the probe
		}
		sc.Meta["fetched_sha256"], sc.Meta["fetched_size"] = sum, size
		return nil
	}
	blob, size, err := n.fetchBlob(ctx, sc.Progress)
	if err != nil {
		return err
	}
	sc.Meta["fetched_sha256"], sc.Meta["fetched_size"] = filepath.Base(blob), size
	if n.extract == "" && n.extractDir == "" {
		return copyFile(blob, dst)
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

// copyHashed copies src to dst and returns the digest of what it copied.
func copyHashed(src, dst string) (string, int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", 0, err
	}
	h := sha256.New()
	size, err := io.Copy(io.MultiWriter(out, h), in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return hex.EncodeToString(h.Sum(nil)), size, err
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

// ResolvePin fetches the input (into the cache) and returns its pin; for a
// Debian package without a version, or with update, it first asks apt for
// the version it serves now.
func ResolvePin(ctx context.Context, node recipes.Node, update bool) (string, Pin, error) {
	n, ok := node.(*inputNode)
	if !ok {
		return "", Pin{}, fmt.Errorf("not an input block")
	}
	if n.deb != "" && !n.recipeVersion && (n.version == "" || update) {
		v, err := n.aptCandidate(ctx)
		if err != nil {
			return n.name, Pin{}, fmt.Errorf("input %q: %w", n.name, err)
		}
		if n.version != v {
			n.version = v
			if n.pinRng == nil || n.lockPin {
				n.pin = ""
			}
		}
	}
	// A pin written in the recipe stays: the bytes must match it, and
	// the lock never records a digest that contradicts it.
	if update && (n.pinRng == nil || n.lockPin) {
		n.pin = ""
	}
	if n.file != "" {
		sum, _, err := filehash.SHA256(n.file)
		if err != nil {
			return n.name, Pin{}, fmt.Errorf("input %q: %w", n.name, err)
		}
		if n.pin != "" && sum != n.pin {
			return n.name, Pin{}, n.mismatch(sum)
		}
		return n.name, Pin{Source: n.source(), SHA256: sum}, nil
	}
	blob, _, err := n.fetchBlob(ctx, nil)
	if err != nil {
		return n.name, Pin{}, err
	}
	return n.name, Pin{Source: n.source(), SHA256: filepath.Base(blob)}, nil
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

// copyFile copies src to dst (a new file) with mode 0644 whatever the
// umask: the mode is part of the step's result.
func copyFile(src, dst string) error {
	if _, _, err := copyHashed(src, dst); err != nil {
		return err
	}
	return os.Chmod(dst, 0o644)
}
