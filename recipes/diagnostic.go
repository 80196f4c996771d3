package recipes

import "github.com/hashicorp/hcl/v2"

// Diag is the error diagnostic every block kind reports: a summary, a
// detail that says what to do, and the range of the offending text.
func Diag(summary, detail string, rng hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: rng.Ptr()}
}
