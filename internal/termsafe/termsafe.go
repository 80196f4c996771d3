// Package termsafe escapes strings that come from inputs cocobuild did not
// make (a bzImage's version string, archive entry names, file names in a
// diff) before text output prints them, so that an input cannot move the
// cursor, clear the screen, set the window title or reorder what the
// reader sees. JSON output keeps such strings exact: encoding/json escapes
// control characters itself.
package termsafe

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Escape returns s with every byte or rune that a terminal would act on
// rather than show written as a Go escape: C0 controls (\t, \n and ESC
// among them), DEL, C1 controls, the Unicode bidirectional overrides and
// isolates, and bytes that are not UTF-8 (\xff). A backslash is doubled
// only when s needs escaping, so plain names print unchanged and escaped
// ones read back unambiguously.
func Escape(s string) string {
	if !needs(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafe(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// needs says whether s holds anything Escape rewrites (a backslash alone
// does not count).
func needs(s string) bool {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || r < 0x20 || r == 0x7f || unsafe(r) {
			return true
		}
		i += n
	}
	return false
}

// unsafe are the runes above ASCII a terminal acts on or that reorder
// text: C1 controls (0x9b is a CSI on some terminals), the bidirectional
// embeddings, overrides and isolates, and the line and paragraph
// separators.
func unsafe(r rune) bool {
	return (r >= 0x80 && r <= 0x9f) ||
		(r >= 0x202a && r <= 0x202e) ||
		(r >= 0x2066 && r <= 0x2069) ||
		r == 0x200e || r == 0x200f || r == 0x061c ||
		r == 0x2028 || r == 0x2029
}
