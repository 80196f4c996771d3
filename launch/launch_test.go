package launch

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cocobuild/cocobuild/internal/tees"
	"github.com/cocobuild/cocobuild/manifest"
)

func entry(tee, name string, kernel bool) manifest.Measurement {
	p := map[string]any{"firmware_sha256": "ff"}
	if kernel {
		p["kernel_sha256"] = "aa"
	}
	return manifest.Measurement{TEE: tee, Name: name, Params: p}
}

// TestSelect checks which entry a launch takes: the named one, else the
// first (of the TEE) that boots a kernel, else the first (of the TEE).
func TestSelect(t *testing.T) {
	m := &manifest.Manifest{Measurements: []manifest.Measurement{
		entry("snp", "snp/a", false), entry("snp", "snp/b", false),
		entry("tdx", "tdx/a", true), entry("tdx", "tdx/b", true),
	}}
	for _, tc := range []struct {
		name, tee string
		want      string
		err       string
	}{
		{"", "", "tdx/a", ""},
		{"", "snp", "snp/a", ""},
		{"", "tdx", "tdx/a", ""},
		{"snp/b", "", "snp/b", ""},
		{"tdx/b", "tdx", "tdx/b", ""},
		{"nope", "", "", "no measurement \"nope\"; the manifest has:\n  snp/a\n  snp/b\n  tdx/a\n  tdx/b"},
		{"", "seves", "", "the manifest has no seves measurement"},
	} {
		e, err := Select(m, tc.name, tc.tee, tees.All())
		if tc.err != "" {
			var ue *UsageError
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.As(err, &ue) {
				t.Errorf("Select(%q, %q): got error %v, want a usage error with %q", tc.name, tc.tee, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Select(%q, %q): %v", tc.name, tc.tee, err)
			continue
		}
		if e.Name != tc.want {
			t.Errorf("Select(%q, %q): got %s, want %s", tc.name, tc.tee, e.Name, tc.want)
		}
	}
	// An emulated boot takes a TDX entry before an SEV one that boots a
	// kernel through the SEV hashes table; an SEV one when it is all there is.
	direct := &manifest.Manifest{Measurements: []manifest.Measurement{
		entry("snp", "snp/a", true), entry("tdx", "tdx/a", false), entry("tdx", "tdx/b", true),
	}}
	snpOnly := &manifest.Manifest{Measurements: []manifest.Measurement{entry("snp", "snp/a", false), entry("snp", "snp/b", true)}}
	for _, tc := range []struct {
		m         *manifest.Manifest
		tee, want string
	}{{direct, "", "tdx/b"}, {direct, "snp", "snp/a"}, {snpOnly, "", "snp/b"}} {
		if e, err := Select(tc.m, "", tc.tee, tees.All()); err != nil || e.Name != tc.want {
			t.Errorf("Select(%v, \"\", %q): got %v, %v; want %s", Names(tc.m), tc.tee, e, err, tc.want)
		}
	}
	if _, err := Select(&manifest.Manifest{}, "", "", tees.All()); err == nil || !strings.Contains(err.Error(), "add a measure block") {
		t.Errorf("Select with no measurements: got %v, want an error saying to add a measure block", err)
	}
}

func TestQEMUMemory(t *testing.T) {
	for _, tc := range []struct {
		in   uint64
		want string
	}{{2 << 30, "2G"}, {1536 << 20, "1536M"}, {1 << 40, "1T"}, {3 << 10, "3K"}} {
		if got := qemuMemory(tc.in); got != tc.want {
			t.Errorf("qemuMemory(%d): got %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestWatcher checks line matching across writes, without carriage
// returns and terminal control sequences, and the console tail.
func TestWatcher(t *testing.T) {
	var out strings.Builder
	matches := 0
	w := &watcher{out: &out, expect: regexp.MustCompile(`^agent: release \d`), onMatch: func() { matches++ }}
	for _, chunk := range []string{"\x1b[2J\x1b[01;01Hboot\r\n", "agent: rel", "ease 1\r\n", "agent: release 2\n"} {
		w.Write([]byte(chunk))
	}
	if w.matched != "agent: release 1" || matches != 1 {
		t.Errorf("matched %q (%d times), want %q once", w.matched, matches, "agent: release 1")
	}
	if want := "\x1b[2J\x1b[01;01Hboot\nagent: release 1\nagent: release 2\n"; out.String() != want || w.tail() != want {
		t.Errorf("console: got %q, tail %q, want %q", out.String(), w.tail(), want)
	}
	w2 := &watcher{expect: regexp.MustCompile(`login: $`), onMatch: func() {}}
	w2.Write([]byte("host login: "))
	w2.flush()
	if w2.matched != "host login: " {
		t.Errorf("the last line without a newline: matched %q, want %q", w2.matched, "host login: ")
	}
}

// TestRunEndsOnKVMError: with KVM, QEMU's "KVM internal error" (the guest
// is stopped, QEMU stays) ends the run at once with KVMError set, never
// as a match; without KVM, the same line is console output like any.
func TestRunEndsOnKVMError(t *testing.T) {
	sh := "printf 'boot\\nKVM internal error. Suberror: 1\\nRAX=0\\nagent: release 1\\n'; sleep 30"
	for _, kvm := range []bool{true, false} {
		start := time.Now()
		res, err := Run(context.Background(), &Plan{Argv: []string{"sh", "-c", sh}}, RunOptions{Expect: regexp.MustCompile(`release`), Timeout: 20 * time.Second, KVM: kvm})
		if err != nil {
			t.Fatal(err)
		}
		if kvm {
			if res.KVMError != "KVM internal error. Suberror: 1" || res.Matched != "" || res.OK(true) || time.Since(start) > 10*time.Second {
				t.Errorf("KVM: KVMError %q, matched %q after %v; want the KVM error at once and no match", res.KVMError, res.Matched, time.Since(start))
			}
			continue
		}
		if res.KVMError != "" || res.Matched != "agent: release 1" {
			t.Errorf("TCG: KVMError %q, matched %q; want no KVM error and the release line", res.KVMError, res.Matched)
		}
	}
}
