package input

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/input/internal/fetch"
	"github.com/cocobuild/cocobuild/internal/fsinfo"
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
