package names

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct{ in, wantErr string }{
		{"guest", ""},
		{"Guest-1_a.b", ""},
		{"v1.2.0", ""},
		{"", "cannot be empty"},
		{".", `"." is not a name`},
		{"..", `".." is not a name`},
		{"a b", `"a b" is not a name: use letters, digits`},
		{"a/b", `"a/b" is not a name`},
		{"é", "is not a name"},
	}
	for _, tc := range tests {
		err := Check(tc.in)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("Check(%q) = %v, want error containing %q", tc.in, err, tc.wantErr)
		}
	}
}

func TestCheckPath(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"github.com/acme/guest", true},
		{"guest", true},
		{"", false},
		{"/a", false},
		{"a/", false},
		{"a//b", false},
		{"a/../b", false},
		{"a/b c", false},
	}
	for _, tc := range tests {
		if err := CheckPath(tc.in); (err == nil) != tc.ok {
			t.Errorf("CheckPath(%q) = %v, want ok %v", tc.in, err, tc.ok)
		}
	}
}
