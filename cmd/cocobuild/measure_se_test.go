package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// seResult is the part of `measure se --json` the tests read.
type seResult struct {
	OK     bool `json:"ok"`
	Header struct {
		PLD, ALD, TLD, Tag string
		Pages              uint64
	} `json:"header"`
	Recomputed struct {
		PLD, ALD, TLD string
		Pages         uint64
	} `json:"recomputed"`
	Mismatches      []string       `json:"mismatches"`
	ReferenceValues map[string]any `json:"reference_values"`
}

// TestMeasureSE runs `cocobuild measure se` on genprotimg's two images:
// the recomputed PLD, ALD and TLD equal those genprotimg wrote into each
// header (exit 0); an image with one altered kernel byte gets exit 1 and
// the PLD named; a bare header is refused.
func TestMeasureSE(t *testing.T) {
	for _, name := range []string{"se1.img", "se2.img"} {
		code, stdout, stderr := runCLI(t, "measure", "se", "--json", testenv.VectorFile(t, "inputs/se/"+name))
		if code != 0 {
			t.Fatalf("measure se %s: exit %d: %s", name, code, stderr)
		}
		var r seResult
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, stdout)
		}
		got := []any{r.Recomputed.PLD, r.Recomputed.ALD, r.Recomputed.TLD, r.Recomputed.Pages}
		want := []any{r.Header.PLD, r.Header.ALD, r.Header.TLD, r.Header.Pages}
		if !r.OK || len(r.Mismatches) != 0 || !cmp.Equal(got, want) || len(r.Header.PLD) != 128 {
			t.Errorf("%s: ok %v, mismatches %v, recomputed %v, header %v", name, r.OK, r.Mismatches, got, want)
		}
		if r.ReferenceValues["se.tag"] != r.Header.Tag || r.ReferenceValues["se.version"] != float64(256) {
			t.Errorf("%s: reference values %v, want se.tag %s and se.version 256", name, r.ReferenceValues, r.Header.Tag)
		}
		code, text, _ := runCLI(t, "measure", "se", testenv.VectorFile(t, "inputs/se/"+name))
		if code != 0 || strings.Count(text, "equals the header's") != 4 || !strings.Contains(text, "se.tag           "+r.Header.Tag) {
			t.Errorf("%s text: exit %d:\n%s", name, code, text)
		}
	}

	b := bytes.Clone(testenv.ReadVector(t, "inputs/se/se1.img"))
	b[0x15000+7] ^= 0x10
	dir := t.TempDir()
	damaged := filepath.Join(dir, "damaged.img")
	if err := os.WriteFile(damaged, b, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"measure", "se", damaged}, 1, "the recomputed pld differ from the SE header's"},
		{[]string{"measure", "se", testenv.VectorFile(t, "inputs/se/secure_guest.hdr")}, 1, "bare SE header"},
		{[]string{"measure", "se", testenv.VectorFile(t, "inputs/se/kernel.img")}, 1, "no Secure Execution header"},
		{[]string{"measure", "se", filepath.Join(dir, "missing")}, 2, "no such file"},
		{[]string{"measure", "se"}, 2, "one IMAGE"},
	}
	for _, tc := range tests {
		code, _, stderr := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
	code, stdout, _ := runCLI(t, "measure", "se", "--json", damaged)
	var r seResult
	if err := json.Unmarshal([]byte(stdout), &r); code != 1 || err != nil || r.OK || !cmp.Equal(r.Mismatches, []string{"pld"}) {
		t.Errorf("measure se --json damaged: exit %d, %v, %+v; want exit 1, ok false, mismatches [pld]", code, err, r)
	}
}

// TestInspectSE: inspect shows the header of an SE image and of a bare
// header; the s390-tools test header's digests are those of EXP_HDR
// (rust/pv/src/brcb.rs; measure/se checks all of them).
func TestInspectSE(t *testing.T) {
	for _, tc := range []struct{ file, typ, tag string }{
		{"secure_guest.hdr", "se-header", "92309d4589b9a85b427f8753171d1520"},
		{"se1.img", "se-image", ""},
	} {
		code, stdout, stderr := runCLI(t, "inspect", "--json", testenv.VectorFile(t, "inputs/se/"+tc.file))
		if code != 0 {
			t.Fatalf("inspect %s: exit %d: %s", tc.file, code, stderr)
		}
		var rep inspectReport
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Type != tc.typ || rep.SE == nil || rep.SE.Version != 0x100 || len(rep.SE.HostKeyHashes) != 1 || (tc.tag != "" && rep.SE.Tag != tc.tag) {
			t.Errorf("inspect %s: %+v, want %s version 0x100 with one host key hash", tc.file, rep, tc.typ)
		}
		code, text, _ := runCLI(t, "inspect", testenv.VectorFile(t, "inputs/se/"+tc.file))
		if code != 0 || !strings.Contains(text, "SE header") || !strings.Contains(text, "host key 1") {
			t.Errorf("inspect %s text: exit %d:\n%s", tc.file, code, text)
		}
	}
}

// TestMeasureSEHeaderKey: with the header key genprotimg was given, the
// tag verifies and the image's kernel, initrd and cmdline are the inputs
// genprotimg was given (their sha256); another key is refused.
func TestMeasureSEHeaderKey(t *testing.T) {
	img := testenv.VectorFile(t, "inputs/se/se1.img")
	code, stdout, stderr := runCLI(t, "measure", "se", "--json", "--header-key", testenv.VectorFile(t, "inputs/se/hdr.key"), img)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r struct {
		Opened struct {
			TagVerified bool `json:"tag_verified"`
			Contents    map[string]struct {
				Size   int    `json:"size"`
				SHA256 string `json:"sha256"`
			} `json:"contents"`
		} `json:"opened"`
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for k, c := range r.Opened.Contents {
		got[k] = c.SHA256
	}
	want := map[string]string{}
	for k, f := range map[string]string{"kernel": "kernel.img", "initrd": "initrd.img", "cmdline": "parm"} {
		want[k] = testenv.SHA256Hex(testenv.ReadVector(t, "inputs/se/"+f))
	}
	if d := cmp.Diff(want, got); d != "" || !r.Opened.TagVerified {
		t.Errorf("tag verified %v; contents (-want +got):\n%s", r.Opened.TagVerified, d)
	}
	wrong := filepath.Join(t.TempDir(), "wrong.key")
	if err := os.WriteFile(wrong, bytes.Repeat([]byte{7}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, "measure", "se", "--header-key", wrong, img); code != 1 || !strings.Contains(stderr, "tag does not verify") {
		t.Errorf("another header key: exit %d, %q; want exit 1 and the tag refused", code, stderr)
	}
}
