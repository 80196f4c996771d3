package builder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/publish/sign"
)

// VerifyBuildReport says whether a rebuild gives what a release published.
type VerifyBuildReport struct {
	Release    string   `json:"release"` // name and version of the published release
	OutDir     string   `json:"out"`
	Checked    []string `json:"checked"`
	Mismatches []string `json:"mismatches"`
}

// OK says the rebuild matches the release.
func (r *VerifyBuildReport) OK() bool { return len(r.Mismatches) == 0 }

// VerifyBuild rebuilds the recipe into outDir and checks it against a
// published release (a release directory such as OUT/publish/NAME, or its
// statement.sigstore.json): the signatures with pub, every subject against
// the rebuilt files, and every reference value against the rebuilt
// manifest's measurements. It is the check that published values really come
// from this recipe.
func (l *Loaded) VerifyBuild(ctx context.Context, against, outDir string, pub *sign.PublicKey, jobs int, obs Observer) (*VerifyBuildReport, error) {
	docs, err := releaseDocuments(against)
	if err != nil {
		return nil, err
	}
	res, err := l.Build(ctx, outDir, jobs, obs)
	if err != nil {
		return nil, fmt.Errorf("rebuilding: %w", err)
	}
	rep := &VerifyBuildReport{OutDir: res.OutDir, Mismatches: []string{}}
	// Signatures, expiry and the subjects' digests against the rebuilt files.
	// Whether pub is to be trusted is cocobuild verify's question (it refuses
	// the development key without --allow-dev-key); here a development-key
	// release is compared like any other, and the CLI says which key it is.
	v, err := publish.Verify(ctx, docs, pub, publish.VerifyOptions{Artifacts: res.OutDir, SkipExpiry: true, AllowDevKey: true})
	if err != nil {
		rep.Mismatches = append(rep.Mismatches, err.Error())
		// Without a verified statement, still say which values differ.
		v = nil
	}
	var published *publish.Release
	if v != nil {
		published = v.Release
		rep.Checked = append(rep.Checked, v.Checked...)
	} else if st, ok := docByName(docs, publish.StatementFile); ok {
		if r, err := publish.VerifyStatement(ctx, st.Data, pub); err == nil {
			published = r
		}
	}
	if published == nil {
		return rep, nil
	}
	rep.Release = published.Name + " " + published.Version
	mb, err := os.ReadFile(filepath.Join(res.OutDir, "manifest.json"))
	if err != nil {
		return nil, err
	}
	m, err := publish.ParseManifest(mb)
	if err != nil {
		return nil, err
	}
	// Nothing is signed here: partial coverage is compared, not refused.
	rebuilt, err := publish.NewRelease(m, publish.Options{Name: published.Name, Version: published.Version,
		Expires: published.Expires, Namespace: published.Namespace, DevelopmentKey: published.DevelopmentKey,
		AllowPartialCoverage: true})
	if err != nil {
		return nil, err
	}
	rep.Mismatches = append(rep.Mismatches, compareEntries(published.Entries, rebuilt.Entries)...)
	if published.Recipe.SHA256 != rebuilt.Recipe.SHA256 {
		rep.Mismatches = append(rep.Mismatches, fmt.Sprintf("recipe digest: published %s, this recipe %s", published.Recipe.SHA256, rebuilt.Recipe.SHA256))
	}
	if len(rep.Mismatches) == 0 {
		rep.Checked = append(rep.Checked, fmt.Sprintf("%d reference values equal the rebuilt measurements", len(published.Entries)))
	}
	return rep, nil
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

func releaseDocuments(against string) ([]publish.Document, error) {
	st, err := os.Stat(against)
	if err != nil {
		return nil, fmt.Errorf("%w: give a release directory (OUT/publish/NAME) or its %s", err, publish.StatementFile)
	}
	if st.IsDir() {
		return publish.ReadDocuments(against)
	}
	b, err := os.ReadFile(against)
	if err != nil {
		return nil, err
	}
	return []publish.Document{{Name: publish.StatementFile, Data: b}}, nil
}

func docByName(docs []publish.Document, name string) (publish.Document, bool) {
	for _, d := range docs {
		if d.Name == name {
			return d, true
		}
	}
	return publish.Document{}, false
}
