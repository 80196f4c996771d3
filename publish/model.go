package publish

import (
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/semver"

	"github.com/cocobuild/cocobuild/internal/names"
	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/tee"
)

// Release is the reference-value model: what a release of a recipe's
// reference values states, signed in every format. It is the predicate of
// the in-toto statement.
type Release struct {
	// Name names the series of releases (the publish block's name).
	Name string `json:"name"`
	// Version is the release's semantic version; a feed only takes newer ones.
	Version string `json:"version"`
	// Recipe is the recipe the build came from, with its digest.
	Recipe manifest.Recipe `json:"recipe"`
	// Cocobuild is the version of cocobuild that built it.
	Cocobuild string `json:"cocobuild"`
	// Issued is the recipe epoch (SOURCE_DATE_EPOCH), not the wall clock.
	Issued time.Time `json:"issued"`
	// Expires is when verifiers stop accepting these reference values.
	Expires time.Time `json:"expires"`
	// Namespace prefixes the rvps:/// names of the values.
	Namespace string `json:"namespace"`
	// DevelopmentKey says the release was signed with the development key.
	DevelopmentKey bool `json:"development_key,omitempty"`
	// PartialCoverage says the publisher allowed reference values that do not
	// vouch for the whole guest (allow_partial_coverage): the entries whose
	// Coverage lacks a part are accepted for guests that differ in it.
	PartialCoverage bool `json:"partial_coverage,omitempty"`
	// Subjects are the build's artifacts (the in-toto subjects).
	Subjects []Subject `json:"subjects"`
	// Inputs are the pinned inputs of the build.
	Inputs []manifest.Input `json:"inputs"`
	// Entries are the reference values, one per measurement of the manifest.
	Entries []Entry `json:"reference_values"`
}

// Subject is an artifact of the build.
type Subject struct {
	Name   string `json:"name"` // path in the build output
	Kind   string `json:"kind"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Entry is one measurement: the values a TEE reports when it launches the
// guest with the given parameters.
type Entry struct {
	TEE  string `json:"tee"`
	Name string `json:"name"`
	// Values are lowercase hex, keyed as in the manifest (launch_measurement,
	// mrtd, rtmr0, ...).
	Values map[string]string `json:"values"`
	// Params are the parameters the values hold for.
	Params map[string]any `json:"params"`
	// DerivedFrom are the artifacts and inputs the values are computed from.
	DerivedFrom []Derived `json:"derived_from"`
	// Coverage is what the values commit to, from the measurement's
	// params.covers; nil in releases made before cocobuild recorded it.
	Coverage *Coverage `json:"coverage,omitempty"`
	// Recipe, Version and Expires repeat the release's, so that an entry
	// taken out of its release still says where it belongs.
	Recipe  string    `json:"recipe_sha256"`
	Version string    `json:"version"`
	Expires time.Time `json:"expires"`
}

// Coverage is what an entry's values commit to: the parts of the guest
// (firmware, kernel, initrd, cmdline) a TEE's report changes with, and the
// parts a guest needs covered that they leave out. An entry with Lacks
// vouches for any guest that differs only in those parts.
type Coverage struct {
	Covers []string `json:"covers"`
	Lacks  []string `json:"lacks,omitempty"`
}

// Partial says the entry leaves out a part of the guest.
func (c *Coverage) Partial() bool { return c != nil && len(c.Lacks) > 0 }

// String is "firmware, kernel, initrd, cmdline" or, when partial,
// "firmware only; lacks kernel, cmdline".
func (c *Coverage) String() string {
	if c == nil {
		return "coverage not recorded"
	}
	covers := strings.Join(c.Covers, ", ")
	if len(c.Covers) == 0 {
		covers = "nothing"
	}
	if !c.Partial() {
		return "covers " + covers
	}
	if len(c.Covers) == 1 {
		covers += " only"
	}
	return "covers " + covers + "; lacks " + strings.Join(c.Lacks, ", ")
}

// Derived names an artifact or input by digest.
type Derived struct {
	Param  string `json:"param"`          // the parameter that names it, e.g. firmware_sha256
	Name   string `json:"name,omitempty"` // the artifact or input, when the manifest has it
	SHA256 string `json:"sha256"`
}

// Options are the release settings of a publish block or command.
type Options struct {
	Name           string
	Version        string
	Expires        time.Time
	Namespace      string // default: Name
	DevelopmentKey bool
	// AllowPartialCoverage signs measurements that do not cover the whole
	// guest (see Coverage) instead of refusing them with a
	// *PartialCoverageError; the release then says so (PartialCoverage).
	AllowPartialCoverage bool
	// TEEs are the TEEs the measurements may be of: they say what an
	// entry that does not cover the whole guest lacks, and the documents
	// hold their names and CoRIMs.
	TEEs tee.Set
}

// NewRelease builds the release of a manifest's measurements. Its
// subjects are the manifest's artifacts but the documents of an earlier
// release (IsReferenceValues).
func NewRelease(m *manifest.Manifest, o Options) (*Release, error) {
	if err := checkTEEs(o.TEEs); err != nil {
		return nil, err
	}
	if err := checkName(o.Name); err != nil {
		return nil, err
	}
	v, err := CanonicalVersion(o.Version)
	if err != nil {
		return nil, err
	}
	issued := time.Unix(m.Epoch, 0).UTC()
	if o.Expires.IsZero() {
		return nil, errors.New("no expiry: set expires to an RFC 3339 time such as 2027-01-01T00:00:00Z")
	}
	expires := o.Expires.UTC()
	if !expires.After(issued) {
		return nil, fmt.Errorf("expires %s is not after the recipe epoch %s", expires.Format(time.RFC3339), issued.Format(time.RFC3339))
	}
	if len(m.Measurements) == 0 {
		return nil, errors.New("the manifest has no measurements: add a measure block to the recipe, there is nothing to publish")
	}
	ns := o.Namespace
	if ns == "" {
		ns = o.Name
	}
	if err := checkNamespace(ns); err != nil {
		return nil, err
	}
	r := &Release{Name: o.Name, Version: v, Recipe: m.Recipe, Cocobuild: m.Cocobuild, Issued: issued, Expires: expires,
		Namespace: ns, DevelopmentKey: o.DevelopmentKey, Subjects: []Subject{}, Inputs: append([]manifest.Input{}, m.Inputs...), Entries: []Entry{}}
	names := map[string]string{} // digest -> artifact or input name
	for _, in := range m.Inputs {
		names[in.SHA256] = "input." + in.Name
	}
	for _, a := range m.Artifacts {
		if IsReferenceValues(a) {
			// The documents of a release the recipe's publish block already
			// made are not the build's artifacts: never signed again.
			continue
		}
		if err := checkSubjectName(a.Path); err != nil {
			return nil, fmt.Errorf("artifact %s: %w", a.Name, err)
		}
		if !isHex(a.SHA256, 32) {
			return nil, fmt.Errorf("artifact %s: sha256 %q is not 64 lowercase hex digits", a.Name, a.SHA256)
		}
		r.Subjects = append(r.Subjects, Subject{Name: a.Path, Kind: a.Kind, SHA256: a.SHA256, Size: a.Size})
		names[a.SHA256] = a.Name
	}
	sort.Slice(r.Subjects, func(i, j int) bool { return r.Subjects[i].Name < r.Subjects[j].Name })
	sort.Slice(r.Inputs, func(i, j int) bool { return r.Inputs[i].Name < r.Inputs[j].Name })
	if len(r.Subjects) == 0 {
		return nil, errors.New("the manifest lists no artifacts: the statement would have no subjects")
	}
	seen := map[string]bool{}
	var gaps []CoverageGap
	for _, mm := range m.Measurements {
		if _, ok := o.TEEs.Lookup(mm.TEE); !ok {
			return nil, fmt.Errorf("measurement %s is for TEE %q, which this cocobuild does not know (it knows %s): publish it with a cocobuild that does", mm.Name, mm.TEE, strings.Join(o.TEEs.Names(), ", "))
		}
		e := Entry{TEE: mm.TEE, Name: mm.Name, Values: map[string]string{}, Params: mm.Params, DerivedFrom: []Derived{},
			Recipe: m.Recipe.SHA256, Version: v, Expires: expires}
		if e.Params == nil {
			e.Params = map[string]any{}
		}
		if e.TEE == "" || e.Name == "" {
			return nil, fmt.Errorf("measurement %q of TEE %q: a measurement needs both", mm.Name, mm.TEE)
		}
		if seen[e.TEE+"\x00"+e.Name] {
			return nil, fmt.Errorf("measurement %s/%s appears twice in the manifest", e.TEE, e.Name)
		}
		seen[e.TEE+"\x00"+e.Name] = true
		for k, val := range mm.Values {
			s, ok := val.(string)
			if !ok {
				continue // not a digest (e.g. a nested report): the statement's params keep the manifest's detail
			}
			s = strings.ToLower(strings.TrimPrefix(s, "0x"))
			if !isHex(s, 0) {
				return nil, fmt.Errorf("measurement %s/%s: value %s = %q is not hex", e.TEE, e.Name, k, val)
			}
			e.Values[k] = s
		}
		if len(e.Values) == 0 {
			return nil, fmt.Errorf("measurement %s/%s has no hex values", e.TEE, e.Name)
		}
		for k, val := range mm.Params {
			s, ok := val.(string)
			if !ok || !strings.HasSuffix(k, "_sha256") || !isHex(s, 32) {
				continue
			}
			e.DerivedFrom = append(e.DerivedFrom, Derived{Param: k, Name: names[s], SHA256: s})
		}
		sort.Slice(e.DerivedFrom, func(i, j int) bool { return e.DerivedFrom[i].Param < e.DerivedFrom[j].Param })
		cov, gap := entryCoverage(mm, o.TEEs)
		e.Coverage = cov
		if gap != nil {
			gaps = append(gaps, *gap)
		}
		r.Entries = append(r.Entries, e)
	}
	if len(gaps) > 0 {
		if !o.AllowPartialCoverage {
			sortGaps(gaps)
			return nil, &PartialCoverageError{Gaps: gaps}
		}
		r.PartialCoverage = true
	}
	sort.SliceStable(r.Entries, func(i, j int) bool {
		if r.Entries[i].TEE != r.Entries[j].TEE {
			return r.Entries[i].TEE < r.Entries[j].TEE
		}
		return r.Entries[i].Name < r.Entries[j].Name
	})
	return r, nil
}

// Check validates a release read back from a signed document.
func (r *Release) Check() error {
	if err := checkName(r.Name); err != nil {
		return err
	}
	if _, err := CanonicalVersion(r.Version); err != nil {
		return err
	}
	if r.Expires.IsZero() {
		return errors.New("release has no expiry")
	}
	if len(r.Entries) == 0 {
		return errors.New("release has no reference values")
	}
	for _, s := range r.Subjects {
		if s.IsOCI() {
			if err := checkOCISubject(s); err != nil {
				return err
			}
			continue
		}
		if err := checkSubjectName(s.Name); err != nil {
			return err
		}
	}
	for _, e := range r.Entries {
		if e.Coverage.Partial() && !r.PartialCoverage {
			return fmt.Errorf("reference value %s/%s %s, but the release does not say it allows partial coverage", e.TEE, e.Name, e.Coverage)
		}
		for k, v := range e.Values {
			if !isHex(v, 0) {
				return fmt.Errorf("reference value %s/%s %s = %q is not lowercase hex", e.TEE, e.Name, k, v)
			}
		}
		if e.Version != r.Version || e.Recipe != r.Recipe.SHA256 || !e.Expires.Equal(r.Expires) {
			return fmt.Errorf("reference value %s/%s names another release (version %s, recipe %s)", e.TEE, e.Name, e.Version, e.Recipe)
		}
	}
	return nil
}

// ErrSubjectOutside is the error of a subject path that leaves the build
// output.
var ErrSubjectOutside = errors.New("subject outside the build output")

// checkSubjectName checks a subject's path: relative to the build output,
// slash-separated, and inside it (no "..", no absolute path).
func checkSubjectName(p string) error {
	if p == "" || strings.Contains(p, "\\") || !filepath.IsLocal(filepath.FromSlash(p)) || path.Clean(p) != p {
		return fmt.Errorf("%w: subject path %q must name a file inside the build output, relative and slash-separated, without \"..\"", ErrSubjectOutside, p)
	}
	return nil
}

// CanonicalVersion checks a semantic version (with or without a leading v)
// and returns it without the v.
func CanonicalVersion(v string) (string, error) {
	s := strings.TrimPrefix(v, "v")
	if s == "" || !semver.IsValid("v"+s) || semver.Canonical("v"+s) != "v"+strings.SplitN(s, "+", 2)[0] {
		return "", fmt.Errorf("version %q is not a semantic version MAJOR.MINOR.PATCH (e.g. 1.2.0)", v)
	}
	return s, nil
}

// CompareVersions compares two release versions as semantic versions:
// -1, 0 or +1. Invalid versions sort first.
func CompareVersions(a, b string) int {
	return semver.Compare("v"+strings.TrimPrefix(a, "v"), "v"+strings.TrimPrefix(b, "v"))
}

// checkName checks a release name (names.Check).
func checkName(n string) error {
	if err := names.Check(n); err != nil {
		return fmt.Errorf("release name: %w", err)
	}
	return nil
}

// checkNamespace checks a release namespace (names.CheckPath).
func checkNamespace(ns string) error {
	if err := names.CheckPath(ns); err != nil {
		return fmt.Errorf("namespace: %w", err)
	}
	return nil
}

// isHex reports whether s is lowercase hex of n bytes (any even length when
// n is 0).
// checkTEEs refuses an empty set of TEEs: a caller that forgot them would
// get documents without their TEEs' names and CoRIMs.
func checkTEEs(tees tee.Set) error {
	if len(tees.Names()) == 0 {
		return errors.New("publish: no TEEs given (the tee.Set that cmd/cocobuild registers): the documents would not name the values")
	}
	return nil
}

func isHex(s string, n int) bool {
	if s == "" || len(s)%2 != 0 || n > 0 && len(s) != 2*n {
		return false
	}
	if strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// IsReferenceValues says whether a manifest artifact is a document of a
// release a publish block made (kind ArtifactKindReferenceValues, or below
// publish/ in the output directory): a build's output, never a subject.
func IsReferenceValues(a manifest.Artifact) bool {
	return a.Kind == ArtifactKindReferenceValues || strings.HasPrefix(path.Clean(a.Path), "publish/")
}

// DocumentByName finds the document of docs named name (rvps.json,
// statement.sigstore.json, ...).
func DocumentByName(docs []Document, name string) (Document, bool) {
	for _, d := range docs {
		if d.Name == name {
			return d, true
		}
	}
	return Document{}, false
}

// SubjectFile is the file below dir of a subject of r for cosign
// verify-blob-attestation, and its size: the disk image, or else the first
// file subject ("" when r has none).
func SubjectFile(r *Release, dir string) (string, int64) {
	var pick *Subject
	for i, s := range r.Subjects {
		if s.IsOCI() {
			continue
		}
		if pick == nil || s.Kind == "disk" {
			pick = &r.Subjects[i]
		}
		if s.Kind == "disk" {
			break
		}
	}
	if pick == nil {
		return "", 0
	}
	return filepath.Join(dir, filepath.FromSlash(pick.Name)), pick.Size
}
