package tee_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/manifest"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// TestMeasureSNPCoverageFollowsFirmware: an SNP entry taken with a kernel
// covers kernel, initrd and cmdline only when the firmware checks them
// against the SEV hashes table (OVMF.amdsev.fd); sid's generic OVMF.fd has
// a hashes table but no checking code (the vectors README's trap), so its
// entry covers the firmware alone and says why. The firmware artifact in
// the manifest carries the inspection.
func TestMeasureSNPCoverageFollowsFirmware(t *testing.T) {
	ri := &recipeInputs{vectors: testenv.Vectors(t), names: map[string]string{}}
	kernel, initrd := ri.ref(t, "inputs/tiny-kernel.bin"), ri.ref(t, "inputs/tiny-initrd.cpio")
	tests := []struct {
		block, firmware string
		covers          bool
		note            string
		vouchesSNP      bool
	}{
		{"amdsev", "inputs/debian-sid_OVMF.amdsev.fd", true, "", true},
		{"generic", "inputs/debian-sid_OVMF.fd", false, "the firmware does not check them against the SEV hashes table (QemuKernelLoaderFsDxe lacks", false},
	}
	var blocks strings.Builder
	for _, tc := range tests {
		fmt.Fprintf(&blocks, "measure %q {\n  tee = \"snp\"\n  firmware = %s\n  kernel = %s\n  initrd = %s\n  cmdline = \"console=ttyS0\"\n}\n\n",
			tc.block, ri.ref(t, tc.firmware), kernel, initrd)
	}
	dir := t.TempDir()
	src := "recipe {\n  name = \"fw-cover\"\n}\n\n" + ri.sb.String() + blocks.String()
	if err := os.WriteFile(filepath.Join(dir, "v.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := load(t, dir, t.TempDir(), input.Options{}).Build(context.Background(), filepath.Join(dir, "out"), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.block, func(t *testing.T) {
			var found bool
			for _, m := range res.Manifest.Measurements {
				if block, _, _ := strings.Cut(m.Name, "/"); block != tc.block {
					continue
				}
				found = true
				b, _ := json.Marshal(m.Params["covers"])
				var cov struct{ Firmware, Kernel, Initrd, Cmdline bool }
				if err := json.Unmarshal(b, &cov); err != nil {
					t.Fatalf("covers %s: %v", b, err)
				}
				want := fmt.Sprintf("firmware true kernel %v initrd %v cmdline %v", tc.covers, tc.covers, tc.covers)
				if got := fmt.Sprintf("firmware %v kernel %v initrd %v cmdline %v", cov.Firmware, cov.Kernel, cov.Initrd, cov.Cmdline); got != want {
					t.Errorf("%s: covers %s, want %s", m.Name, got, want)
				}
				notes, _ := json.Marshal(m.Params["notes"])
				if tc.note != "" && !strings.Contains(string(notes), tc.note) {
					t.Errorf("%s: notes %s, want one containing %q", m.Name, notes, tc.note)
				}
				if tc.note == "" && strings.Contains(string(notes), "not covered") {
					t.Errorf("%s: notes %s say something is not covered", m.Name, notes)
				}
			}
			if !found {
				t.Fatalf("no measurement of block %s", tc.block)
			}
			var art *manifest.Artifact
			for i, a := range res.Manifest.Artifacts {
				if a.Name == "measure."+tc.block+"/firmware" {
					art = &res.Manifest.Artifacts[i]
				}
			}
			if art == nil {
				t.Fatalf("no firmware artifact measure.%s/firmware", tc.block)
			}
			b, _ := json.Marshal(art.Extra["firmware"])
			var rec struct {
				Verifies bool   `json:"verifies_direct_boot"`
				Version  string `json:"edk2_version"`
				Vouches  struct {
					SNP bool `json:"snp_direct_boot"`
				} `json:"vouches"`
			}
			if err := json.Unmarshal(b, &rec); err != nil {
				t.Fatalf("firmware record %s: %v", b, err)
			}
			if rec.Verifies != tc.covers || rec.Vouches.SNP != tc.vouchesSNP || rec.Version != "2026.08+ds-2" {
				t.Errorf("firmware record %s: got verifies %v snp %v version %q, want %v %v 2026.08+ds-2", b, rec.Verifies, rec.Vouches.SNP, rec.Version, tc.covers, tc.vouchesSNP)
			}
		})
	}
}
