package tdx

import (
	"strconv"
	"testing"
)

func TestParseMemory(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"2G", 2 << 30, true}, {"1536M", 1536 << 20, true}, {"2048", 2 << 30, true}, {"4g", 4 << 30, true},
		{"1T", 1 << 40, true}, {"512K", 512 << 10, true}, {"", 0, false}, {"0", 0, false}, {"2X", 0, false}, {"-1G", 0, false},
		{strconv.FormatUint(1<<40, 10) + "G", 0, false},
	}
	for _, tc := range tests {
		got, err := ParseMemory(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
