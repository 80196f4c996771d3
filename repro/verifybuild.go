package repro

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/publish/sign"
	"github.com/cocobuild/cocobuild/tee"
)

// VerifyBuildReport says whether a rebuild gives what a release published.
type VerifyBuildReport struct {
	Release    string   `json:"release"` // name and version of the published release
	OutDir     string   `json:"out"`
	Checked    []string `json:"checked"`
	Mismatches []string `json:"mismatches"`
	// Notes are the rebuild's notes, such as the warning that a corrupt
	// cache entry was evicted and rebuilt.
	Notes []string `json:"notes"`
}

// OK says the rebuild matches the release.
func (r *VerifyBuildReport) OK() bool { return len(r.Mismatches) == 0 }

// VerifyBuild rebuilds the recipe of l into outDir, without publishing, and
// checks it against a published release (a release directory such as
// OUT/publish/NAME, or its statement.sigstore.json): the signatures with
// pub, every subject against the rebuilt files, every reference value
// against the rebuilt manifest's measurements, and the unsigned contents
// of every document (the statement payload, the RVPS message, the CoRIMs'
// CoMIDs) against those of the release the rebuild makes with the
// published release's settings. It is the check that published values
// really come from this recipe. It signs nothing, needs no private key and
// touches none of the recipe's feeds.
//
// The published release is read before anything is built, within lim
// (limits.Document for each document, nil: the defaults): a document over
// the limit, a named pipe or a device fails at once.
func VerifyBuild(ctx context.Context, l *builder.Loaded, tees tee.Set, against string, lim *limits.Values, outDir string, pub *sign.PublicKey, jobs int, obs builder.Observer) (*VerifyBuildReport, error) {
	docs, err := releaseDocuments(against, tees, lim)
	if err != nil {
		return nil, err
	}
	nl := *l
	nl.SkipPostBuild = true
	res, err := nl.Build(ctx, outDir, jobs, obs)
	if err != nil {
		return nil, fmt.Errorf("rebuilding: %w", err)
	}
	rep := &VerifyBuildReport{OutDir: res.OutDir, Mismatches: []string{}, Notes: append([]string{}, res.Notes...)}
	// Signatures, expiry and the subjects' digests against the rebuilt files.
	// Whether pub is to be trusted is cocobuild verify's question (it refuses
	// the development key without --allow-dev-key); here a development-key
	// release is compared like any other, and the CLI says which key it is.
	v, err := publish.Verify(ctx, docs, pub, publish.VerifyOptions{Artifacts: res.OutDir, SkipExpiry: true, AllowDevKey: true, TEEs: tees})
	if err != nil {
		rep.Mismatches = append(rep.Mismatches, err.Error())
		// Without a verified statement, still say which values differ.
		v = nil
	}
	var published *publish.Release
	if v != nil {
		published = v.Release
		rep.Checked = append(rep.Checked, v.Checked...)
	} else if st, ok := publish.DocumentByName(docs, publish.StatementFile); ok {
		if r, err := publish.VerifyStatement(ctx, st.Data, pub); err == nil {
			published = r
		}
	}
	if published == nil {
		return rep, nil
	}
	rep.Release = published.Name + " " + published.Version
	// The rebuilt manifest, as OUT/manifest.json holds it.
	m := res.Manifest
	// Nothing is signed here: partial coverage is compared, not refused.
	rebuilt, err := publish.NewRelease(m, publish.Options{Name: published.Name, Version: published.Version,
		Expires: published.Expires, Namespace: published.Namespace, DevelopmentKey: published.DevelopmentKey,
		AllowPartialCoverage: true, TEEs: tees})
	if err != nil {
		return nil, err
	}
	// A release pushed with its disk names the disk's OCI manifest among its
	// subjects (publish adds it, last, before signing). A rebuild has no
	// registry to ask: those subjects are taken as published, and said so;
	// the disk's bytes are checked as the file subject they also are.
	for _, s := range published.Subjects {
		if s.IsOCI() {
			rebuilt.Subjects = append(rebuilt.Subjects, s)
			rep.Checked = append(rep.Checked, fmt.Sprintf("subject %s: the pushed disk's OCI manifest, taken as published (a rebuild pushes nothing)", s.Name))
		}
	}
	rep.Mismatches = append(rep.Mismatches, compareEntries(published.Entries, rebuilt.Entries)...)
	if published.Recipe.SHA256 != rebuilt.Recipe.SHA256 {
		rep.Mismatches = append(rep.Mismatches, fmt.Sprintf("recipe digest: published %s, this recipe %s", published.Recipe.SHA256, rebuilt.Recipe.SHA256))
	}
	if len(rep.Mismatches) == 0 {
		rep.Checked = append(rep.Checked, fmt.Sprintf("%d reference values equal the rebuilt measurements", len(published.Entries)))
	}
	if v != nil { // every signature verified: compare what they sign
		checked, mismatches, err := compareUnsigned(ctx, docs, pub, published, rebuilt, tees)
		if err != nil {
			return nil, err
		}
		rep.Checked = append(rep.Checked, checked...)
		rep.Mismatches = append(rep.Mismatches, mismatches...)
	}
	return rep, nil
}

// compareUnsigned compares the unsigned contents of a release's documents,
// whose signatures are verified, with those of the rebuilt release: the
// statement payload, the RVPS message and the unsigned CoRIM (its CoMIDs)
// of each TEE.
func compareUnsigned(ctx context.Context, docs []publish.Document, pub *sign.PublicKey, published, rebuilt *publish.Release, tees tee.Set) (checked, mismatches []string, err error) {
	st, _ := publish.DocumentByName(docs, publish.StatementFile)
	got, err := publish.VerifyBundle(ctx, st.Data, pub, publish.PayloadType)
	if err != nil {
		return nil, nil, err
	}
	want, err := publish.EncodeStatement(rebuilt)
	if err != nil {
		return nil, nil, err
	}
	if bytes.Equal(got, want) {
		checked = append(checked, fmt.Sprintf("%s: the statement payload equals the rebuild's, byte for byte", publish.StatementFile))
	} else {
		mismatches = append(mismatches, fmt.Sprintf("%s: the statement payload differs from the rebuild's (in %s)", publish.StatementFile, strings.Join(releaseFieldsDiffer(published, rebuilt), ", ")))
	}
	if d, ok := publish.DocumentByName(docs, publish.RVPSFile); ok {
		want, err := publish.EncodeRVPS(rebuilt, tees)
		if err != nil {
			return nil, nil, err
		}
		if bytes.Equal(d.Data, want) {
			checked = append(checked, fmt.Sprintf("%s: the RVPS message equals the rebuild's, byte for byte", publish.RVPSFile))
		} else {
			mismatches = append(mismatches, fmt.Sprintf("%s: the RVPS message differs from the rebuild's", publish.RVPSFile))
		}
	}
	for _, name := range tees.CoRIMNames() {
		d, ok := publish.DocumentByName(docs, publish.CoRIMFile(name))
		if !ok {
			continue
		}
		got, err := publish.CoRIMPayload(d.Data)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", d.Name, err)
		}
		want, err := publish.UnsignedCoRIM(rebuilt, tees, name)
		if err != nil {
			return nil, nil, fmt.Errorf("the rebuild's CoRIM for %s: %w", name, err)
		}
		switch {
		case want == nil:
			mismatches = append(mismatches, fmt.Sprintf("%s: published, but the rebuild has no %s reference values", d.Name, name))
		case bytes.Equal(got, want):
			checked = append(checked, fmt.Sprintf("%s: the unsigned CoRIM (its CoMIDs) equals the rebuild's, byte for byte", d.Name))
		default:
			mismatches = append(mismatches, fmt.Sprintf("%s: the unsigned CoRIM (its CoMIDs) differs from the rebuild's", d.Name))
		}
	}
	return checked, mismatches, nil
}

// releaseFieldsDiffer names the fields of the statement's predicate in
// which two releases differ.
func releaseFieldsDiffer(a, b *publish.Release) []string {
	fields := func(r *publish.Release) map[string]json.RawMessage {
		var m map[string]json.RawMessage
		if j, err := json.Marshal(r); err == nil {
			json.Unmarshal(j, &m)
		}
		return m
	}
	fa, fb := fields(a), fields(b)
	var out []string
	for k, va := range fa {
		if !bytes.Equal(va, fb[k]) {
			out = append(out, k)
		}
	}
	for k := range fb {
		if _, ok := fa[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		out = []string{"its encoding"}
	}
	return out
}

func compareEntries(published, rebuilt []publish.Entry) []string {
	key := func(e publish.Entry) string { return e.TEE + " " + e.Name }
	rb := map[string]publish.Entry{}
	for _, e := range rebuilt {
		rb[key(e)] = e
	}
	var out []string
	seen := map[string]bool{}
	for _, p := range published {
		seen[key(p)] = true
		r, ok := rb[key(p)]
		if !ok {
			out = append(out, fmt.Sprintf("%s: published, but the rebuild has no such measurement", key(p)))
			continue
		}
		names := make([]string, 0, len(p.Values))
		for n := range p.Values {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if p.Values[n] != r.Values[n] {
				out = append(out, fmt.Sprintf("%s %s: published %s, rebuilt %s", key(p), n, p.Values[n], r.Values[n]))
			}
		}
		if p.Coverage != nil && p.Coverage.String() != r.Coverage.String() {
			out = append(out, fmt.Sprintf("%s coverage: published %s, rebuilt %s", key(p), p.Coverage, r.Coverage))
		}
	}
	for _, r := range rebuilt {
		if !seen[key(r)] {
			out = append(out, fmt.Sprintf("%s: measured by the rebuild, but not published", key(r)))
		}
	}
	return out
}

// releaseDocuments reads the published release: a release directory, or
// its statement alone, each document within the document limit of lim and
// only when it is a regular file.
func releaseDocuments(against string, tees tee.Set, lim *limits.Values) ([]publish.Document, error) {
	st, err := os.Stat(against)
	if err != nil {
		return nil, fmt.Errorf("%w: give a release directory (OUT/publish/NAME) or its %s", err, publish.StatementFile)
	}
	if st.IsDir() {
		return publish.ReadDocumentsWithin(against, tees, lim)
	}
	b, err := lim.ReadFile(against, limits.Document)
	if err != nil {
		return nil, err
	}
	return []publish.Document{{Name: publish.StatementFile, Data: b}}, nil
}
