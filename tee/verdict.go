package tee

import (
	"os"
	"path/filepath"

	"github.com/cocobuild/cocobuild/measure/ovmf"
)

// FirmwareVerdict is ovmf.InspectVerdict with its memo in the user's cache
// ($XDG_CACHE_HOME/cocobuild/firmware, beside the build cache), so that
// measuring the same firmware again does not decompress it again. Without
// a cache directory it inspects every time.
func FirmwareVerdict(fw []byte) (ovmf.Verdict, error) {
	dir := ""
	if d, err := os.UserCacheDir(); err == nil {
		dir = filepath.Join(d, "cocobuild", "firmware")
	}
	return ovmf.InspectVerdict(fw, dir)
}
