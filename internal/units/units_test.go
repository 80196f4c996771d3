package units

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{in: "4096", want: 4096},
		{in: "0", want: 0},
		{in: "512B", want: 512},
		{in: "64MiB", want: 64 << 20},
		{in: "64M", want: 64 << 20},
		{in: " 2 GiB ", want: 2 << 30},
		{in: "1.5GiB", want: 3 << 29},
		{in: "1T", want: 1 << 40},
		{in: "3KiB", want: 3072},
		{in: "", err: "empty size"},
		{in: "MiB", err: "no number"},
		{in: "64MB", err: "decimal units"},
		{in: "1kB", err: "decimal units"},
		{in: "-1", err: "negative"},
		{in: "-1MiB", err: "negative"},
		{in: "0.3B", err: "whole number"},
		{in: "1e3", err: "expected a number"},
		{in: "abc", err: "expected a number"},
		{in: "9999999TiB", err: "too large"},
		{in: "1e400MiB", err: "expected a number"},
	}
	for _, tc := range tests {
		got, err := ParseSize(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSize(%q) = %d, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestFormatSizeRoundTrip(t *testing.T) {
	for _, n := range []int64{0, 1, 511, 4096, 64 << 20, 3 << 29, 1 << 40, 1<<40 + 512} {
		s := FormatSize(n)
		got, err := ParseSize(s)
		if err != nil || got != n {
			t.Errorf("ParseSize(FormatSize(%d) = %q) = %d, %v", n, s, got, err)
		}
	}
	if got, want := FormatSize(64<<20), "64MiB"; got != want {
		t.Errorf("FormatSize(64MiB) = %q, want %q", got, want)
	}
}

func TestAlignUp(t *testing.T) {
	for _, tc := range []struct{ n, a, want int64 }{{0, 4096, 0}, {1, 4096, 4096}, {4096, 4096, 4096}, {4097, 512, 4608}} {
		if got := AlignUp(tc.n, tc.a); got != tc.want {
			t.Errorf("AlignUp(%d, %d) = %d, want %d", tc.n, tc.a, got, tc.want)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"64MiB", "1.5GiB", "4096", "-1", "1e3", "0.5K"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err == nil && n < 0 {
			t.Fatalf("ParseSize(%q) = %d: negative without error", s, n)
		}
	})
}
