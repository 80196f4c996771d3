package tee

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cocobuild/cocobuild/internal/atomicfile"
	"github.com/cocobuild/cocobuild/measure/ovmf"
)

// FirmwareVerdict is ovmf.VerdictOf with a memo in the user's cache
// ($XDG_CACHE_HOME/cocobuild/firmware, beside the build cache), so that
// measuring the same firmware again does not decompress it again. Without
// a cache directory it inspects every time.
func FirmwareVerdict(fw []byte) (ovmf.Verdict, error) {
	dir := ""
	if d, err := os.UserCacheDir(); err == nil {
		dir = filepath.Join(d, "cocobuild", "firmware")
	}
	return firmwareVerdict(fw, dir)
}

// maxVerdictFile bounds what firmwareVerdict reads back from its memo.
const maxVerdictFile = 64 << 10

// firmwareVerdict returns ovmf.VerdictOf(fw); when dir is not "" the
// verdict is remembered there, in a file named by the SHA-256 of fw and
// ovmf.ModelVersion, and read back by later calls on the same bytes. A memo
// file that cannot be read or parsed is recomputed and replaced; a failure
// to store one is ignored (the verdict is still returned). Errors are
// VerdictOf's and are never remembered.
func firmwareVerdict(fw []byte, dir string) (ovmf.Verdict, error) {
	var path string
	if dir != "" {
		sum := sha256.Sum256(fw)
		path = filepath.Join(dir, hex.EncodeToString(sum[:])+"-v"+ovmf.ModelVersion+".json")
		if v, err := readVerdict(path); err == nil {
			return v, nil
		}
	}
	v, err := ovmf.VerdictOf(fw)
	if err != nil {
		return ovmf.Verdict{}, err
	}
	if path != "" {
		if b, err := json.Marshal(v); err == nil && os.MkdirAll(dir, 0o755) == nil {
			_ = atomicfile.WriteFile(path, append(b, '\n'), 0o644) // a memo only
		}
	}
	return v, nil
}

// readVerdict reads a memo file: a regular file of at most maxVerdictFile
// bytes holding a Verdict with both evidence strings and no other field.
func readVerdict(path string) (ovmf.Verdict, error) {
	var v ovmf.Verdict
	f, err := os.Open(path)
	if err != nil {
		return v, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return v, errors.New("not a regular file")
	}
	b, err := io.ReadAll(io.LimitReader(f, maxVerdictFile+1))
	if err != nil {
		return v, err
	}
	if len(b) > maxVerdictFile {
		return v, fmt.Errorf("over %d bytes", maxVerdictFile)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return ovmf.Verdict{}, err
	}
	if dec.More() {
		return ovmf.Verdict{}, errors.New("trailing data")
	}
	if v.DirectBootEvidence == "" || v.RTMREvidence == "" {
		return ovmf.Verdict{}, errors.New("evidence missing") // Inspect always gives both
	}
	return v, nil
}
