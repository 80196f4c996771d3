package publish

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/publish/sign"
)

// partialManifest is testManifest as measured on firmware that does not
// commit to what it boots: the SNP entries without a kernel (as on Debian
// 12's OVMF, which has no SEV hashes table), cover the firmware only; the
// 4G TDX entry has an initrd but RTMR2 could not be computed.
func partialManifest() *manifest.Manifest {
	m := testManifest()
	for i := range m.Measurements[:2] {
		delete(m.Measurements[i].Params, "kernel_sha256")
		m.Measurements[i].Params["covers"] = covers(true, false, false, false)
	}
	p := m.Measurements[4].Params
	p["initrd_sha256"] = digest256("initrd")
	p["covers"] = covers(true, true, false, false)
	p["not_computable"] = map[string]any{"rtmr2": "the firmware does not measure into RTMRs"}
	delete(m.Measurements[4].Values, "rtmr2")
	return m
}

func TestPartialCoverageIsRefused(t *testing.T) {
	cases := []struct {
		name   string
		change func(m *manifest.Manifest)
		want   []CoverageGap // TEE, Name, Covers, Lacks; Why checked for a phrase
		why    []string
	}{
		{"full coverage", func(*manifest.Manifest) {}, nil, nil},
		{"no initrd needs no initrd coverage", func(m *manifest.Manifest) {
			m.Measurements[3].Params["covers"] = covers(true, true, false, true)
		}, nil, nil},
		{"initrd given but not covered", func(m *manifest.Manifest) {
			m.Measurements[3].Params["initrd_sha256"] = digest256("initrd")
			m.Measurements[3].Params["covers"] = covers(true, true, false, true)
		}, []CoverageGap{{TEE: "tdx", Name: "tdx/memory=2G", Covers: []string{"firmware", "kernel", "cmdline"}, Lacks: []string{"initrd"}}},
			[]string{"cannot be computed"}},
		{"SNP without a kernel", func(m *manifest.Manifest) {
			delete(m.Measurements[1].Params, "kernel_sha256")
			m.Measurements[1].Params["covers"] = covers(true, false, false, false)
		}, []CoverageGap{{TEE: "snp", Name: "snp/vcpus=2", Covers: []string{"firmware"}, Lacks: []string{"kernel", "cmdline"}}},
			[]string{"no kernel was measured", "kernel = kernel.NAME", "OVMF.amdsev.fd"}},
		{"SEV firmware that does not check the blobs", func(m *manifest.Manifest) {
			m.Measurements[0].Params["covers"] = covers(true, false, false, false)
		}, []CoverageGap{{TEE: "snp", Name: "snp/vcpus=1", Covers: []string{"firmware"}, Lacks: []string{"kernel", "cmdline"}}},
			[]string{"the firmware does not make the launch digest commit to them"}},
		{"TDX register not computable", func(m *manifest.Manifest) {
			m.Measurements[4].Params["covers"] = covers(true, false, true, true)
			m.Measurements[4].Params["not_computable"] = map[string]any{"rtmr1": "no CC measurement driver"}
		}, []CoverageGap{{TEE: "tdx", Name: "tdx/memory=4G", Covers: []string{"firmware", "initrd", "cmdline"}, Lacks: []string{"kernel"}}},
			[]string{"rtmr1: no CC measurement driver", "RTMRs"}},
		{"coverage not recorded", func(m *manifest.Manifest) {
			delete(m.Measurements[2].Params, "covers")
		}, []CoverageGap{{TEE: "seves", Name: "seves/vcpus=1", Covers: []string{}, Lacks: []string{"firmware", "kernel", "cmdline"}}},
			[]string{"does not say what it covers", "rebuild"}},
		{"coverage incomplete", func(m *manifest.Manifest) {
			m.Measurements[2].Params["covers"] = map[string]any{"firmware": true, "kernel": true, "cmdline": true}
		}, []CoverageGap{{TEE: "seves", Name: "seves/vcpus=1", Covers: []string{}, Lacks: []string{"firmware", "kernel", "cmdline"}}},
			[]string{"does not say whether it covers the initrd"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := testManifest()
			c.change(m)
			r, err := NewRelease(m, Options{TEEs: testTEEs, Name: "s", Version: "1.0.0", Expires: testExpires})
			pc, refused := IsPartialCoverage(err)
			if c.want == nil {
				if err != nil {
					t.Fatalf("got error %v, want a release", err)
				}
				if r.PartialCoverage || len(r.PartialEntries()) > 0 {
					t.Errorf("got partial coverage %v, want none", r.PartialEntries())
				}
				return
			}
			if !refused {
				t.Fatalf("got %v, want a *PartialCoverageError", err)
			}
			var got []CoverageGap
			for _, g := range pc.Gaps {
				for _, w := range c.why {
					if !strings.Contains(g.Why, w) {
						t.Errorf("%s: why %q lacks %q", g.Name, g.Why, w)
					}
				}
				g.Why = ""
				got = append(got, g)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("gaps (-want +got):\n%s", diff)
			}
			for _, g := range c.want {
				if !strings.Contains(err.Error(), "\n    "+g.Name) {
					t.Errorf("the error does not name %s:\n%v", g.Name, err)
				}
			}
			// Allowed, the release says so and keeps what each entry lacks.
			r, err = NewRelease(m, Options{TEEs: testTEEs, Name: "s", Version: "1.0.0", Expires: testExpires, AllowPartialCoverage: true})
			if err != nil {
				t.Fatal(err)
			}
			if !r.PartialCoverage {
				t.Error("got partial_coverage false with partial entries, want true")
			}
			var lacking []string
			for _, e := range r.PartialEntries() {
				lacking = append(lacking, e.Name+": "+strings.Join(e.Coverage.Lacks, ","))
			}
			var want []string
			for _, g := range c.want {
				want = append(want, g.Name+": "+strings.Join(g.Lacks, ","))
			}
			if diff := cmp.Diff(want, lacking); diff != "" {
				t.Errorf("partial entries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPartialCoverageInEveryDocument(t *testing.T) {
	ctx := context.Background()
	s := testSigner(t, sign.ECDSAP256)
	r, err := NewRelease(partialManifest(), Options{TEEs: testTEEs, Name: "s", Version: "1.0.0", Expires: testExpires, AllowPartialCoverage: true})
	if err != nil {
		t.Fatal(err)
	}
	docs := signAll(t, r, s)

	// The statement: the predicate read back says it.
	got, err := VerifyStatement(ctx, doc(docs, StatementFile).Data, s.Public())
	if err != nil {
		t.Fatal(err)
	}
	if !got.PartialCoverage {
		t.Error("statement: partial_coverage is not set")
	}
	wantCov := map[string]string{
		"seves/vcpus=1": "covers firmware, kernel, initrd, cmdline",
		"snp/vcpus=1":   "covers firmware only; lacks kernel, cmdline",
		"snp/vcpus=2":   "covers firmware only; lacks kernel, cmdline",
		"tdx/memory=2G": "covers firmware, kernel, initrd, cmdline",
		"tdx/memory=4G": "covers firmware, kernel; lacks initrd, cmdline",
	}
	gotCov := map[string]string{}
	for _, e := range got.Entries {
		gotCov[e.Name] = e.Coverage.String()
	}
	if diff := cmp.Diff(wantCov, gotCov); diff != "" {
		t.Errorf("statement coverage (-want +got):\n%s", diff)
	}

	// The RVPS payload lists the partial entries with their values.
	p, err := DecodeRVPS(doc(docs, RVPSFile).Data)
	if err != nil {
		t.Fatal(err)
	}
	wantRVPS := []any{
		map[string]any{"name": "snp/vcpus=1", "tee": "snp", "covers": []any{"firmware"}, "lacks": []any{"kernel", "cmdline"},
			"values": map[string]any{"launch_measurement": digest384("snp1")}},
		map[string]any{"name": "snp/vcpus=2", "tee": "snp", "covers": []any{"firmware"}, "lacks": []any{"kernel", "cmdline"},
			"values": map[string]any{"launch_measurement": digest384("snp2")}},
		map[string]any{"name": "tdx/memory=4G", "tee": "tdx", "covers": []any{"firmware", "kernel"}, "lacks": []any{"initrd", "cmdline"},
			"values": map[string]any{"mrtd": digest384("mrtd"), "rtmr0": digest384("r0b"), "rtmr1": digest384("r1")}},
	}
	if diff := cmp.Diff(wantRVPS, p[RVPSPartialCoverageName]); diff != "" {
		t.Errorf("RVPS %s (-want +got):\n%s", RVPSPartialCoverageName, diff)
	}
	// The policy names are untouched by it.
	if l, ok := p["snp_launch_measurement"].([]any); !ok || len(l) != 2 {
		t.Errorf("snp_launch_measurement = %v, want the two digests", p["snp_launch_measurement"])
	}

	// The CoRIMs note it on the triples of the partial entries only.
	for tee, want := range map[string][]string{
		"snp": {"covers firmware only; lacks kernel, cmdline", "covers firmware only; lacks kernel, cmdline"},
		"tdx": {"none", "covers firmware, kernel; lacks initrd, cmdline"},
	} {
		cv, err := VerifyCoRIM(doc(docs, CoRIMFile(tee)).Data, s.Public(), testTEEs)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range cv.Coverage {
			if c == nil {
				got = append(got, "none")
			} else {
				got = append(got, c.String())
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s CoRIM coverage (-want +got):\n%s", tee, diff)
		}
	}

	// Verify reads them all and finds them consistent.
	v, err := Verify(ctx, docs, s.Public(), verifyAt)
	if err != nil {
		t.Fatal(err)
	}
	if sum := v.Release.CoverageSummary(); !strings.Contains(sum, "PARTIAL") || !strings.Contains(sum, "3 of 5") {
		t.Errorf("coverage summary %q, want PARTIAL, 3 of 5", sum)
	}

	// A full release's documents carry no partial-coverage notes.
	full := signAll(t, testRelease(t, "1.0.0"), s)
	fp, _ := DecodeRVPS(doc(full, RVPSFile).Data)
	if _, ok := fp[RVPSPartialCoverageName]; ok {
		t.Errorf("a full-coverage RVPS payload has %s", RVPSPartialCoverageName)
	}
	fc, err := VerifyCoRIM(doc(full, CoRIMFile("snp")).Data, s.Public(), testTEEs)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range fc.Coverage {
		if c != nil {
			t.Errorf("a full-coverage CoRIM notes %s", c)
		}
	}
}

// TestCoverageTamperIsCaught signs documents whose coverage disagrees with
// the statement's: Verify must refuse them.
func TestCoverageTamperIsCaught(t *testing.T) {
	ctx := context.Background()
	s := testSigner(t, sign.ECDSAP256)
	partial, err := NewRelease(partialManifest(), Options{TEEs: testTEEs, Name: "s", Version: "1.0.0", Expires: testExpires, AllowPartialCoverage: true})
	if err != nil {
		t.Fatal(err)
	}
	pdocs := signAll(t, partial, s)
	// The same values claimed as fully covering: the statement of another
	// release, the CoRIM of the partial one.
	claimed := *partial
	claimed.PartialCoverage = false
	claimed.Entries = append([]Entry(nil), partial.Entries...)
	for i := range claimed.Entries {
		claimed.Entries[i].Coverage = &Coverage{Covers: []string{"firmware", "kernel", "initrd", "cmdline"}}
	}
	cdocs := signAll(t, &claimed, s)
	mixed := replaceDoc(cdocs, doc(pdocs, CoRIMFile("snp")))
	if _, err := Verify(ctx, mixed, s.Public(), verifyAt); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "coverage") {
		t.Errorf("a CoRIM noting partial coverage beside a full statement: got %v, want a coverage mismatch", err)
	}
	mixed = replaceDoc(replaceDoc(replaceDoc(cdocs, doc(pdocs, RVPSFile)), doc(pdocs, RVPSSigFile)), doc(pdocs, RVPSBundleFile))
	if _, err := Verify(ctx, mixed, s.Public(), verifyAt); !errors.Is(err, ErrMismatch) {
		t.Errorf("an RVPS message listing partial coverage beside a full statement: got %v, want a mismatch", err)
	}
	// A statement whose entries lack parts but which does not say it allows
	// partial coverage is not a release.
	bad := *partial
	bad.PartialCoverage = false
	if err := bad.Check(); err == nil || !strings.Contains(err.Error(), "partial coverage") {
		t.Errorf("Check of partial entries without partial_coverage: got %v, want an error", err)
	}
}
