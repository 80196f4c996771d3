package recipes

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// WriteDiagnostics prints diagnostics as "file:line:col: severity: summary:
// detail", each followed by the offending source line and a caret marker.
// files maps file names to their sources (Recipe.Files).
//
// This is not hcl.NewDiagnosticTextWriter's layout, on purpose: that writer
// prints "Error: summary", then "on FILE line N, in BLOCK:" without the
// column, the lines without a caret (it marks the range only with ANSI
// colour), then the detail; editors and the tests read the one-line
// file:line:col form. It also prints the values of the variables in the
// diagnostic's expression, which may hold what a recipe keeps out of its
// outputs.
func WriteDiagnostics(w io.Writer, files map[string][]byte, diags hcl.Diagnostics) error {
	for _, d := range diags {
		if _, err := io.WriteString(w, FormatDiagnostic(files, d)); err != nil {
			return err
		}
	}
	return nil
}

// FormatDiagnostic renders one diagnostic; see WriteDiagnostics.
func FormatDiagnostic(files map[string][]byte, d *hcl.Diagnostic) string {
	var b strings.Builder
	sev := "error"
	if d.Severity == hcl.DiagWarning {
		sev = "warning"
	}
	msg := d.Summary
	if d.Detail != "" {
		msg += ": " + d.Detail
	}
	if d.Subject == nil {
		fmt.Fprintf(&b, "%s: %s\n", sev, msg)
		return b.String()
	}
	s := d.Subject
	fmt.Fprintf(&b, "%s:%d:%d: %s: %s\n", s.Filename, s.Start.Line, s.Start.Column, sev, msg)
	if line, ok := sourceLine(files[s.Filename], s.Start.Line); ok {
		prefix := fmt.Sprintf("%5d | ", s.Start.Line)
		fmt.Fprintf(&b, "%s%s\n", prefix, line)
		width := 1
		if s.End.Line == s.Start.Line && s.End.Column > s.Start.Column {
			width = s.End.Column - s.Start.Column
		}
		pad := strings.Repeat(" ", len(prefix)-2) + "| "
		lead := []rune(line)
		var ind strings.Builder
		for i := 0; i < s.Start.Column-1 && i < len(lead); i++ {
			if lead[i] == '\t' {
				ind.WriteByte('\t')
			} else {
				ind.WriteByte(' ')
			}
		}
		fmt.Fprintf(&b, "%s%s%s\n", pad, ind.String(), strings.Repeat("^", width))
	}
	return b.String()
}

func sourceLine(src []byte, n int) (string, bool) {
	if src == nil || n < 1 {
		return "", false
	}
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for i := 1; sc.Scan(); i++ {
		if i == n {
			return strings.TrimRight(sc.Text(), "\r"), true
		}
	}
	return "", false
}
