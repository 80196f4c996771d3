package ovmf

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
)

// Verdict is the part of Inspect's answer that the measure commands print
// with a measurement: whether the firmware checks directly booted blobs
// against the SEV hashes table, and whether it measures into RTMRs.
type Verdict struct {
	VerifiesDirectBoot bool   `json:"verifies_direct_boot"`
	DirectBootEvidence string `json:"direct_boot_evidence"`
	MeasuresRTMR       bool   `json:"measures_rtmr"`
	RTMREvidence       string `json:"rtmr_evidence"`
}

// maxVerdictFile bounds what InspectVerdict reads back from its memo.
const maxVerdictFile = 64 << 10

// InspectVerdict returns Inspect's Verdict on fw. Inspect decompresses the
// firmware's DXE volume (about 16 MiB of LZMA, a quarter of a second), so
// when dir is not "" the verdict is remembered there, in a file named by
// the SHA-256 of fw and ModelVersion, and read back by later calls on the
// same bytes: the verdict depends on nothing else. A memo file that cannot
// be read or parsed is recomputed and replaced; a failure to store one is
// ignored (the verdict is still returned). Errors are those of Inspect and
// are never remembered.
func InspectVerdict(fw []byte, dir string) (Verdict, error) {
	var path string
	if dir != "" {
		sum := sha256.Sum256(fw)
		path = filepath.Join(dir, hex.EncodeToString(sum[:])+"-v"+ModelVersion+".json")
		if v, err := readVerdict(path); err == nil {
			return v, nil
		}
	}
	info, err := Inspect(fw)
	if err != nil {
		return Verdict{}, err
	}
	v := Verdict{VerifiesDirectBoot: info.VerifiesDirectBoot, DirectBootEvidence: info.DirectBootEvidence,
		MeasuresRTMR: info.MeasuresRTMR, RTMREvidence: info.RTMREvidence}
	if path != "" {
		if b, err := json.Marshal(v); err == nil && os.MkdirAll(dir, 0o755) == nil {
			_ = atomicfile.WriteFile(path, append(b, '\n'), 0o644) // a memo only
		}
	}
	return v, nil
}

// readVerdict reads a memo file: a regular file of at most maxVerdictFile
// bytes holding a Verdict with both evidence strings and no other field.
func readVerdict(path string) (Verdict, error) {
	var v Verdict
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
		return Verdict{}, err
	}
	if dec.More() {
		return Verdict{}, errors.New("trailing data")
	}
	if v.DirectBootEvidence == "" || v.RTMREvidence == "" {
		return Verdict{}, errors.New("evidence missing") // Inspect always gives both
	}
	return v, nil
}
