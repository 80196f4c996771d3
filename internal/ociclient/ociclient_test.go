package ociclient

import "testing"

func TestPlainHTTP(t *testing.T) {
	for _, tc := range []struct {
		registry string
		want     bool
	}{
		{"localhost:5000", true},
		{"localhost", true},
		{"127.0.0.1:5000", true},
		{"127.1.2.3", true},
		{"[::1]:5000", true},
		{"registry.example:5000", false},
		{"10.0.0.1:5000", false},
		{"[2001:db8::1]:443", false},
	} {
		if got := PlainHTTP(tc.registry); got != tc.want {
			t.Errorf("PlainHTTP(%q) = %v, want %v", tc.registry, got, tc.want)
		}
	}
}
