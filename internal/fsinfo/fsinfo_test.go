package fsinfo

import (
	"os"
	"testing"
)

func TestKind(t *testing.T) {
	for _, tc := range []struct {
		mode os.FileMode
		want string
	}{
		{os.ModeSymlink | 0o777, "symbolic link"},
		{os.ModeDir | 0o755, "directory"},
		{os.ModeNamedPipe | 0o644, "named pipe"},
		{os.ModeSocket, "socket"},
		{os.ModeDevice | os.ModeCharDevice, "device"},
		{os.ModeIrregular, "special file"},
	} {
		if got := Kind(tc.mode); got != tc.want {
			t.Errorf("Kind(%v) = %q, want %q", tc.mode, got, tc.want)
		}
	}
}
