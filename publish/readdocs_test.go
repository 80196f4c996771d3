package publish

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/publish/sign"
)

// writeRelease writes signed documents into a new directory.
func writeRelease(t *testing.T, docs []Document) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "release")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		if err := os.WriteFile(filepath.Join(dir, d.Name), d.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestReadDocumentsRefusesLinks: a document's name that is not a regular
// file is an error, never skipped. Before, rvps.json and rvps.json.sig
// linked to a tampered message were left out and the release verified on
// its statement alone, while Trustee's rvps-tool would read the tampered
// message through the links.
func TestReadDocumentsRefusesLinks(t *testing.T) {
	s := testSigner(t, sign.ECDSAP256)
	docs := signAll(t, testRelease(t, "1.0.0"), s)
	// The tampered message, signed by another key, outside the release.
	other := testSigner(t, sign.ECDSAP256)
	bad := signAll(t, testRelease(t, "1.0.0"), other)
	outside := t.TempDir()
	for _, n := range []string{RVPSFile, RVPSSigFile} {
		if err := os.WriteFile(filepath.Join(outside, n), doc(bad, n).Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The untouched release reads back as signed, an unknown file ignored.
	good := writeRelease(t, docs)
	if err := os.WriteFile(filepath.Join(good, "README"), []byte("notes"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadDocuments(good, testTEEs)
	if err != nil {
		t.Fatalf("ReadDocuments of a release: %v", err)
	}
	if diff := cmp.Diff(docs, got); diff != "" {
		t.Errorf("documents read back (-want +got):\n%s", diff)
	}
	if _, err := Verify(context.Background(), got, s.Public(), verifyAt); err != nil {
		t.Errorf("the release read back does not verify: %v", err)
	}
	cases := []struct {
		name   string
		modify func(t *testing.T, dir string)
		doc    string
		kind   string
	}{
		{"rvps linked to a tampered message", func(t *testing.T, dir string) {
			for _, n := range []string{RVPSFile, RVPSSigFile} {
				os.Remove(filepath.Join(dir, n))
				if err := os.Symlink(filepath.Join(outside, n), filepath.Join(dir, n)); err != nil {
					t.Fatal(err)
				}
			}
		}, RVPSFile, "symbolic link"},
		{"a link inside the release", func(t *testing.T, dir string) {
			os.Rename(filepath.Join(dir, CoRIMFile("snp")), filepath.Join(dir, "copy"))
			if err := os.Symlink("copy", filepath.Join(dir, CoRIMFile("snp"))); err != nil {
				t.Fatal(err)
			}
		}, CoRIMFile("snp"), "symbolic link"},
		{"a directory", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, StatementFile))
			if err := os.Mkdir(filepath.Join(dir, StatementFile), 0o755); err != nil {
				t.Fatal(err)
			}
		}, StatementFile, "directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeRelease(t, docs)
			c.modify(t, dir)
			got, err := ReadDocuments(dir, testTEEs)
			if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), c.doc) || !strings.Contains(err.Error(), c.kind) {
				t.Errorf("got %d documents, error %v; want ErrNotRegular naming %s, a %s", len(got), err, c.doc, c.kind)
			}
		})
	}
}
