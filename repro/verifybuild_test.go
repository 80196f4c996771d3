package repro

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/internal/testkinds"
	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/publish/sign"
)

// unsignedRelease is a release of two TEEs' values, as NewRelease makes it.
func unsignedRelease(t *testing.T, cocobuild, mrtd string) *publish.Release {
	t.Helper()
	d := func(c string, n int) string { return strings.Repeat(c, n) }
	m := &manifest.Manifest{
		Cocobuild: cocobuild,
		Recipe:    manifest.Recipe{Name: "r", SHA256: d("1", 64)},
		Epoch:     1700000000,
		Artifacts: []manifest.Artifact{{Name: "kernel.guest", Kind: "kernel", Path: "kernel/guest/vmlinuz", SHA256: d("2", 64), Size: 3}},
		Measurements: []manifest.Measurement{
			{TEE: "snp", Name: "snp", Params: map[string]any{}, Values: map[string]any{"launch_measurement": d("a", 96)}},
			{TEE: "tdx", Name: "tdx", Params: map[string]any{}, Values: map[string]any{"mrtd": mrtd, "rtmr0": d("c", 96)}},
		},
	}
	r, err := publish.NewRelease(m, publish.Options{TEEs: testkinds.TEEs(), Name: "r", Version: "1.0.0", Expires: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), AllowPartialCoverage: true})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestCompareUnsigned: verify-build compares the unsigned contents of a
// release's documents with the rebuild's: equal ones are listed as
// checked; a statement that differs only outside the reference values
// (the cocobuild version) is a mismatch naming the field, while the RVPS
// message and CoRIMs still match; other values differ in every document.
func TestCompareUnsigned(t *testing.T) {
	ctx := context.Background()
	s, err := sign.Generate(sign.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	published := unsignedRelease(t, "1.0.0", strings.Repeat("b", 96))
	docs, err := publish.Sign(ctx, published, s, publish.AllFormats, testkinds.TEEs())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name       string
		rebuilt    *publish.Release
		mismatches []string
	}{
		{"identical", unsignedRelease(t, "1.0.0", strings.Repeat("b", 96)), nil},
		{"another cocobuild", unsignedRelease(t, "1.1.0", strings.Repeat("b", 96)),
			[]string{"statement.sigstore.json: the statement payload differs from the rebuild's (in cocobuild)"}},
		{"another mrtd", unsignedRelease(t, "1.0.0", strings.Repeat("d", 96)), []string{
			"statement.sigstore.json: the statement payload differs from the rebuild's (in reference_values)",
			"rvps.json: the RVPS message differs from the rebuild's",
			"corim-tdx.cbor: the unsigned CoRIM (its CoMIDs) differs from the rebuild's",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			checked, mismatches, err := compareUnsigned(ctx, docs, s.Public(), published, c.rebuilt, testkinds.TEEs())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.mismatches, mismatches); diff != "" {
				t.Errorf("mismatches (-want +got):\n%s", diff)
			}
			// statement, RVPS message, two CoRIMs: each checked or a mismatch.
			if got := len(checked) + len(mismatches); got != 4 {
				t.Errorf("%d documents compared (%q, %q), want 4", got, checked, mismatches)
			}
		})
	}
}
