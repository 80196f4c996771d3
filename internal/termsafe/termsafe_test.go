package termsafe

import (
	"testing"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"vmlinuz-6.12.1 (builder@host)", "vmlinuz-6.12.1 (builder@host)"},
		{`C:\path`, `C:\path`},
		{"größe/日本", "größe/日本"},
		{"\x1b]0;pwned\a", `\x1b]0;pwned\x07`},
		{"\x1b[2Jclear", `\x1b[2Jclear`},
		{"a\nb\tc\rd", `a\nb\tc\rd`},
		{"tab\\\t", `tab\\\t`},
		{"\x7f", `\x7f`},
		{"\xff\xfe", `\xff\xfe`},
		{"\u009b31m", `\u009b31m`},
		{"abc\u202egpj.exe", `abc\u202egpj.exe`},
		{"\u2066x\u2069", `\u2066x\u2069`},
	} {
		if got := Escape(tc.in); got != tc.want {
			t.Errorf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"plain", "\x1b[2J", "\xff", "\u202e", `\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Escape(s)
		if !utf8.ValidString(got) {
			t.Fatalf("Escape(%q) = %q is not UTF-8", s, got)
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f || unsafe(r) {
				t.Fatalf("Escape(%q) = %q keeps %U", s, got, r)
			}
		}
		if !needs(s) && got != s {
			t.Fatalf("Escape(%q) = %q changed a safe string", s, got)
		}
	})
}
