package kernel

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// TestDescribeDebianKernel reads Debian's signed cloud kernel and checks
// the Authenticode digest against osslsigncode's.
func TestDescribeDebianKernel(t *testing.T) {
	tool := testenv.Tool(t, "osslsigncode", "osslsigncode")
	path := testenv.VectorFile(t, "inputs/vmlinuz-6.1.0-56-cloud-amd64")
	d, err := Describe(testenv.ReadVector(t, "inputs/vmlinuz-6.1.0-56-cloud-amd64"))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(tool, "verify", "-in", path).CombinedOutput() // fails on the untrusted chain; the digest is still printed
	m := regexp.MustCompile(`Calculated message digest\s*:\s*([0-9A-Fa-f]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("osslsigncode printed no calculated digest:\n%s", out)
	}
	if got, want := d.Authenticode["sha256"], strings.ToLower(string(m[1])); got != want {
		t.Errorf("Authenticode sha256 %s, osslsigncode says %s", got, want)
	}
	if len(d.Authenticode["sha384"]) != 96 {
		t.Errorf("sha384 digest %q", d.Authenticode["sha384"])
	}
	if d.Signatures != 1 {
		t.Errorf("%d signatures, want 1 (Debian signs its kernels)", d.Signatures)
	}
	var names []string
	for _, s := range d.Sections {
		names = append(names, s.Name)
	}
	if !strings.Contains(strings.Join(names, " "), ".text") {
		t.Errorf("sections %q lack .text", names)
	}
	if d.Release != "6.1.0-56-cloud-amd64" || !slices.Contains(d.XLoadFlagNames, "XLF_KERNEL_64") {
		t.Errorf("release %q xloadflags %v", d.Release, d.XLoadFlagNames)
	}
	var text bytes.Buffer
	if err := d.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"release        6.1.0-56-cloud-amd64", "boot protocol  2.15", "sha256  " + d.Authenticode["sha256"], ".text"} {
		if !strings.Contains(text.String(), w) {
			t.Errorf("text lacks %q:\n%s", w, text.String())
		}
	}
}

// TestDescribeNotPE: a bzImage without an EFI stub has no PE view, and a
// broken PE header is reported, not fatal.
func TestDescribeNotPE(t *testing.T) {
	b := testenv.FakeBzImage("6.12.0-test", 0x2000)
	b[0], b[1] = 0, 0
	d, err := Describe(b)
	if err != nil {
		t.Fatal(err)
	}
	if d.PE || d.Sections != nil || d.Authenticode != nil {
		t.Errorf("PE %v sections %v authenticode %v for an image without MZ", d.PE, d.Sections, d.Authenticode)
	}
	b = testenv.FakeBzImage("6.12.0-test", 0x2000) // MZ without a PE header
	d, err = Describe(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("6.12.0-test", d.Release); diff != "" || d.AuthenticodeErr == "" {
		t.Errorf("release diff %s, authenticode error %q; want the release and an error", diff, d.AuthenticodeErr)
	}
	if _, err := Describe([]byte("not a kernel")); err == nil {
		t.Error("Describe accepted a non-kernel")
	}
}

func FuzzDescribe(f *testing.F) {
	b := testenv.ReadVector(f, "inputs/vmlinuz-6.1.0-56-cloud-amd64")
	f.Add(b[:0x4000])
	f.Add(testenv.FakeBzImage("6.12.0", 0x1000))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Describe(b)
		if err != nil {
			return
		}
		d.WriteText(&bytes.Buffer{})
	})
}

// TestWriteTextEscapes: a version string that would set the terminal's
// title and clear the screen is printed escaped; JSON keeps it exact.
func TestWriteTextEscapes(t *testing.T) {
	hostile := "6.1\x1b]0;pwned\a\x1b[2J"
	d, err := Describe(testenv.FakeBzImage(hostile, 0x2000))
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := d.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(text.String(), "\x1b\a") {
		t.Errorf("text output holds raw ESC or BEL:\n%q", text.String())
	}
	if want := `6.1\x1b]0;pwned\x07\x1b[2J`; !strings.Contains(text.String(), want) {
		t.Errorf("text output lacks the escaped release %q:\n%s", want, text.String())
	}
	j, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var back Description
	if err := json.Unmarshal(j, &back); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(back.Version, hostile) {
		t.Errorf("JSON version %q, want it to start with the exact %q", back.Version, hostile)
	}
}
