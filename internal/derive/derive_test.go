package derive

import (
	"strings"
	"testing"
)

// TestUUID checks UUID against Python's uuid.uuid5 over the same namespace
// and name (computed with python3 -c 'import uuid; print(uuid.uuid5(
// uuid.UUID("5b0c0c0b-7b1d-4b8e-9c0d-636f636f6275"), PURPOSE+"\x00"+DIGEST))').
func TestUUID(t *testing.T) {
	tests := []struct{ purpose, digest, want string }{
		{"partition", strings.Repeat("ab", 32), "a6fbc1be-d6a9-55e8-89ec-452750ac02ef"},
		{"verity superblock", strings.Repeat("0", 64), "d8f70292-fdb9-5df5-813c-86bf2c121522"},
	}
	for _, tc := range tests {
		if got := UUID(tc.purpose, tc.digest).String(); got != tc.want {
			t.Errorf("UUID(%q, %q) = %s, want %s", tc.purpose, tc.digest, got, tc.want)
		}
	}
	if UUID("p", "a") == UUID("q", "a") {
		t.Error("UUID ignores the purpose")
	}
	if got := UUID("p", "a").Version(); got != 5 {
		t.Errorf("UUID version %d, want 5", got)
	}
}
