package vtpm_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/internal/testkinds"
	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/tee/vtpm"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestMeasureBlockMatchesSystemdMeasure builds a recipe whose tpm measure
// block has the kernel, initrd, cmdline and os-release of the vector
// "ukisample", which Debian 12's systemd-measure made (see
// measure/pcr/testdata/gen.sh): PCR 11 without a phase and after
// enter-initrd, SHA-256 bank. The az-snp-vtpm block has no firmware,
// which PCR 11 does not need.
func TestMeasureBlockMatchesSystemdMeasure(t *testing.T) {
	in := filepath.Join(testenv.ModuleRoot(t), "measure", "pcr", "testdata", "in")
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(in, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	fw := testenv.VectorFile(t, "inputs/debian12_OVMF.fd")
	fwb, err := os.ReadFile(fw)
	if err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`recipe {
  name = "pcr"
}

input "fw" {
  file   = %q
  sha256 = %q
}

input "linux" {
  file   = %q
  sha256 = %q
}

input "initrd" {
  file   = %q
  sha256 = %q
}

measure "tpm" {
  firmware = input.fw
  kernel   = input.linux
  initrd   = input.initrd
  cmdline  = %q
  osrel    = %q
  phases   = ["", "enter-initrd"]
}

measure "snp" {
  tee      = "az-snp-vtpm"
  kernel   = input.linux
  initrd   = input.initrd
  cmdline  = %q
  osrel    = %q
}
`, fw, sha(fwb), filepath.Join(in, "linux"), sha(read("linux")), filepath.Join(in, "initrd"), sha(read("initrd")),
		read("cmdline"), read("osrel"), read("cmdline"), read("osrel"))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := testkinds.Load(t, dir, t.TempDir(), input.Options{}).Build(context.Background(), filepath.Join(dir, "out"), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(in, "..", "want", "ukisample.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(want)), "\n") // no phase, enter-initrd
	vec := func(i int) string { return strings.TrimPrefix(lines[i], "11:sha256=") }
	got := map[string]string{}
	for _, m := range res.Manifest.Measurements {
		got[m.TEE+" "+m.Name] = fmt.Sprint(m.Values["pcr11"])
		// The snp block has no firmware (tee.FirmwareOptional): its
		// entry names none.
		if _, ok := m.Params["firmware_sha256"]; ok != (m.TEE == "tpm") {
			t.Errorf("%s: firmware_sha256 in params: %v, want %v", m.Name, ok, m.TEE == "tpm")
		}
		c, err := manifest.CoverageParam(m.Params)
		if err != nil || !c.Kernel || !c.Initrd || !c.Cmdline || c.Firmware {
			t.Errorf("%s: covers %+v, %v; want kernel, initrd and cmdline, not the firmware", m.Name, c, err)
		}
	}
	if diff := cmp.Diff(map[string]string{
		"tpm tpm/phase=":             vec(0),
		"tpm tpm/phase=enter-initrd": vec(1),
		"az-snp-vtpm snp":            vec(0),
	}, got); diff != "" {
		t.Errorf("pcr11 (-want systemd-measure +got):\n%s", diff)
	}
}

func TestRVPSNames(t *testing.T) {
	for _, c := range []struct{ name, key, want string }{
		{"tpm", "pcr11", "tpm_pcr11"},
		{"az-snp-vtpm", "pcr11", "snp_pcr11"},
		{"az-tdx-vtpm", "pcr11", "tdx_pcr11"},
		{"tpm", "pcr4", "tpm_pcr4"},
		{"tpm", "osrel", ""},
	} {
		if got := (vtpm.TEE{}).RVPSName(c.name, c.key); got != c.want {
			t.Errorf("RVPSName(%q, %q) = %q, want %q", c.name, c.key, got, c.want)
		}
	}
}

// TestFirmwareRequiredElsewhere: only the vTPM TEEs may leave firmware
// out; an snp or tdx block without it is refused where the block is.
func TestFirmwareRequiredElsewhere(t *testing.T) {
	for _, c := range []struct {
		tee  string
		want string
	}{
		{"snp", `The argument "firmware" is required, but no definition was found: snp measurements start from the firmware (firmware = input.NAME).`},
		{"tdx", `The argument "firmware" is required, but no definition was found: tdx measurements start from the firmware (firmware = input.NAME).`},
		{"tpm", ""},
	} {
		dir := t.TempDir()
		src := fmt.Sprintf("recipe {\n  name = \"r\"\n}\n\ninput \"k\" {\n  file   = \"k\"\n  sha256 = %q\n}\n\nmeasure %q {\n  kernel = input.k\n  osrel  = \"ID=x\"\n}\n", sha([]byte("k")), c.tee)
		if c.tee != "tpm" {
			src = strings.Replace(src, "  osrel  = \"ID=x\"\n", "", 1)
		}
		if err := os.WriteFile(filepath.Join(dir, "r.hcl"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "k"), []byte("k"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := builder.Load(dir, testkinds.LoadOptions(t.TempDir(), input.Options{}))
		var got []string
		var de *builder.DiagError
		if errors.As(err, &de) {
			for _, d := range de.Diags {
				if d.Subject == nil {
					t.Errorf("%s: diagnostic without a place: %s", c.tee, d.Detail)
				}
				got = append(got, d.Detail)
			}
		} else if err != nil {
			t.Fatalf("%s: Load: %v", c.tee, err)
		}
		var want []string
		if c.want != "" {
			want = []string{c.want}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: diagnostics (-want +got):\n%s", c.tee, diff)
		}
	}
}
