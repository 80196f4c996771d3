// Package debroot assembles Debian root file systems with mmdebstrap: the
// package set a request resolves to (Resolve, against a suite of the
// archive, whose signed index apt checks every .deb against), and the tree
// of exactly a pinned set (Install, from a local repository of the pinned
// .debs and nothing else). The input kind resolves and pins sets (it owns
// the lock file and the downloads); the rootfs kind installs them. Both
// share the types here.
//
// mmdebstrap runs in its unshare mode when the caller is not root and the
// kernel lets it make user namespaces, in its root mode as root, and not at
// all otherwise (ChooseMode says why). Its output is made reproducible with
// SOURCE_DATE_EPOCH and hooks that remove or normalise what would leak the
// machine, the time or the build directory (see Leaks).
package debroot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Request is what a recipe asks for: a suite and packages.
type Request struct {
	Suite    string   `json:"suite"`
	Arch     string   `json:"arch"` // dpkg's name: amd64, arm64
	Packages []string `json:"packages,omitempty"`
	// Exclude are packages purged after the installation (dpkg --purge
	// --force-depends --force-remove-essential): their files are not in
	// the tree, though they are pinned (apt needed them to resolve).
	Exclude []string `json:"exclude,omitempty"`
	// EssentialOnly installs the Essential:yes set and Packages
	// (mmdebstrap's essential variant); otherwise Priority:required too
	// (its required variant, debootstrap's minbase).
	EssentialOnly bool `json:"essential_only"`
}

// Variant is mmdebstrap's variant for the request.
func (r Request) Variant() string {
	if r.EssentialOnly {
		return "essential"
	}
	return "required"
}

// Digest identifies the request: the lock records it beside the set it
// resolved to, so that a changed request is seen as drift.
func (r Request) Digest() string {
	c := r
	c.Packages = sortedUnique(r.Packages)
	c.Exclude = sortedUnique(r.Exclude)
	b, _ := json.Marshal(c)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func sortedUnique(l []string) []string {
	c := slices.Clone(l)
	slices.Sort(c)
	return slices.Compact(c)
}

// NameRe is what a Debian package name looks like (Debian policy 5.6.1).
var NameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9.+-]+$`)

// Package is one pinned package: name, version, architecture and the
// sha256 of its .deb.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
	SHA256  string `json:"sha256"`
}

func (p Package) String() string { return p.Name + "=" + p.Version + " (" + p.Arch + ")" }

// Set is a resolved request: every package the tree holds, sorted by name
// and architecture.
type Set struct {
	Suite    string    `json:"suite"`
	Request  string    `json:"request"` // Request.Digest of what it was resolved for
	Packages []Package `json:"packages"`
}

// Sort orders the packages by name, then architecture.
func (s *Set) Sort() {
	slices.SortFunc(s.Packages, func(a, b Package) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Arch, b.Arch)
	})
}

// Archive gives the rootfs kind what the input kind knows: the pins of
// the lock file, and the pinned .debs. internal/registry connects them.
type Archive interface {
	// Pinned is the set the lock records for the block at addr when it
	// was resolved for req; nil when the lock has none (or one for another
	// request), which --locked refuses with an error that says so.
	Pinned(addr string, req Request) (*Set, error)
	// Unpinned says whether a build may resolve a set the lock does not
	// have (--allow-unpinned); Resolve then resolves it.
	Unpinned() bool
	// Resolve resolves req against its suite now, keeping the .debs.
	Resolve(ctx context.Context, req Request) (*Set, error)
	// Debs are the paths of the packages' .debs by sha256, each checked:
	// kept from an earlier download, or downloaded from suite by name and
	// version.
	Debs(ctx context.Context, suite string, ps []Package) (map[string]string, error)
}

// Requester is a decoded block that installs Debian packages: `cocobuild
// lock` resolves and pins its request.
type Requester interface {
	// PackageRequest is the block's address and request (ok false when
	// the block installs none).
	PackageRequest() (addr string, req Request, ok bool)
	// ResolvePackages resolves the request now (Archive.Resolve).
	ResolvePackages(ctx context.Context) (*Set, error)
}

// RequesterKind is a block kind whose blocks may install Debian packages:
// `cocobuild lock` decodes them to ask.
type RequesterKind interface {
	InstallsPackages() bool
}

// CheckRequest reports what is wrong with a request, for the recipe's
// diagnostics.
func CheckRequest(r Request) error {
	if !suiteRe.MatchString(r.Suite) {
		return fmt.Errorf("suite %q is not the name of a Debian suite, such as \"bookworm\" or \"trixie\"", r.Suite)
	}
	for _, l := range [][]string{r.Packages, r.Exclude} {
		for _, p := range l {
			if !NameRe.MatchString(p) {
				return fmt.Errorf("%q is not a Debian package name (lowercase letters, digits, '.', '+' and '-')", p)
			}
		}
	}
	for _, p := range r.Exclude {
		if slices.Contains(r.Packages, p) {
			return fmt.Errorf("package %q is both in packages and in exclude", p)
		}
	}
	return nil
}

var suiteRe = regexp.MustCompile(`^[a-z0-9][a-z0-9.+-]*$`)
