package builder

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/hcl/v2"

	"github.com/cocobuild/cocobuild/recipes"
)

// placedError is a step error that knows its place in a file beside the
// recipe.
type placedError struct {
	d     *hcl.Diagnostic
	files map[string][]byte
}

func (e *placedError) Error() string                      { return "placed" }
func (e *placedError) Diagnostic() *hcl.Diagnostic        { return e.d }
func (e *placedError) DiagnosticFiles() map[string][]byte { return e.files }

// TestDiagnose: errors that say where in the recipe (or a file beside it)
// they come from become a *DiagError with the sources to show them
// against; others stay as they are.
func TestDiagnose(t *testing.T) {
	recipe := map[string][]byte{"r.hcl": []byte("input \"x\" {}\n")}
	l := &Loaded{Recipe: &recipes.Recipe{Files: recipe}}
	at := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "here", Subject: &hcl.Range{Filename: "x.lock"}}
	plain := errors.New("plain")
	cases := []struct {
		name      string
		err       error
		wantDiags hcl.Diagnostics
		wantFiles []string
	}{
		{"plain error", plain, nil, nil},
		{"diagnostics", fmt.Errorf("step: %w", hcl.Diagnostics{at}), hcl.Diagnostics{at}, []string{"r.hcl"}},
		{"placed, beside the recipe", fmt.Errorf("step: %w", &placedError{d: at, files: map[string][]byte{"x.lock": []byte("pin")}}),
			hcl.Diagnostics{at}, []string{"r.hcl", "x.lock"}},
		{"placed nowhere", &placedError{}, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := l.Diagnose(c.err)
			var de *DiagError
			if !errors.As(got, &de) {
				if c.wantDiags != nil {
					t.Fatalf("Diagnose(%v) = %v, want a *DiagError", c.err, got)
				}
				if got != c.err {
					t.Errorf("Diagnose(%v) = %v, want the error as it was", c.err, got)
				}
				return
			}
			if c.wantDiags == nil {
				t.Fatalf("Diagnose(%v) = %v, want the error as it was", c.err, got)
			}
			if len(de.Diags) != 1 || de.Diags[0] != at {
				t.Errorf("diagnostics %v, want %v", de.Diags, c.wantDiags)
			}
			var files []string
			for f := range de.Files {
				files = append(files, f)
			}
			if diff := cmp.Diff(c.wantFiles, files, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
			if !errors.Is(got, c.err) {
				t.Errorf("the *DiagError does not wrap %v", c.err)
			}
		})
	}
}
