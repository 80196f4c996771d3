package tee

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/measure/ovmf"
)

// TestFirmwareVerdict checks firmwareVerdict against ovmf.Inspect on the two
// firmwares of the SNP trap, with and without its memo: the first call
// stores one file, the second reads it, and a damaged file is recomputed
// and replaced.
func TestFirmwareVerdict(t *testing.T) {
	for _, file := range []string{"debian-sid_OVMF.amdsev.fd", "debian-sid_OVMF.fd"} {
		t.Run(file, func(t *testing.T) {
			fw := testenv.ReadVector(t, "inputs/"+file)
			info, err := ovmf.Inspect(fw)
			if err != nil {
				t.Fatal(err)
			}
			want := ovmf.Verdict{VerifiesDirectBoot: info.VerifiesDirectBoot, DirectBootEvidence: info.DirectBootEvidence,
				MeasuresRTMR: info.MeasuresRTMR, RTMREvidence: info.RTMREvidence}
			dir := t.TempDir()
			for _, d := range []string{"", dir, dir} {
				got, err := firmwareVerdict(fw, d)
				if err != nil {
					t.Fatalf("firmwareVerdict(dir %q): %v", d, err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("firmwareVerdict(dir %q) (-Inspect +got):\n%s", d, diff)
				}
			}
			files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
			if len(files) != 1 {
				t.Fatalf("memo files %q, want one", files)
			}
			// The memo is what a second call answers from.
			if err := os.WriteFile(files[0], []byte(`{"verifies_direct_boot":true,"direct_boot_evidence":"memo","measures_rtmr":true,"rtmr_evidence":"memo"}`), 0o644); err != nil {
				t.Fatal(err)
			}
			if got, _ := firmwareVerdict(fw, dir); got.DirectBootEvidence != "memo" {
				t.Errorf("evidence %q after the memo was rewritten, want %q: the memo was not read", got.DirectBootEvidence, "memo")
			}
			for _, bad := range []string{"", "{", `{"verifies_direct_boot":true}`, `{"verifies_direct_boot":true,"direct_boot_evidence":"x","measures_rtmr":true,"rtmr_evidence":"x","extra":1}`} {
				if err := os.WriteFile(files[0], []byte(bad), 0o644); err != nil {
					t.Fatal(err)
				}
				got, err := firmwareVerdict(fw, dir)
				if err != nil || got != want {
					t.Errorf("with memo %q: %+v, %v; want %+v recomputed", bad, got, err, want)
				}
			}
		})
	}
	if _, err := firmwareVerdict([]byte("not a firmware"), t.TempDir()); err == nil {
		t.Error("firmwareVerdict of a non-firmware: no error")
	}
}
