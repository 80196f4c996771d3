package main

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// pcrVectors is the directory of the vectors made with Debian 12's
// systemd-measure (systemd 252.38-1~deb12u1) by measure/pcr/testdata/gen.sh,
// committed with the inputs they were made from.
func pcrVectors(t *testing.T) string {
	return filepath.Join(testenv.ModuleRoot(t), "measure", "pcr", "testdata")
}

// pcrCaseArgs reads a vector's systemd-measure arguments, with the input
// paths made absolute.
func pcrCaseArgs(t *testing.T, dir, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "want", name+".args"))
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	for i, a := range args {
		args[i] = strings.Replace(a, "=in/", "="+filepath.Join(dir, "in")+"/", 1)
	}
	return args
}

// TestMeasurePCRMatchesSystemdMeasure: for every vector, measure pcr
// prints what systemd-measure calculate printed, byte for byte: the text on
// stdout and the phases on stderr, --json=short and --json=pretty.
func TestMeasurePCRMatchesSystemdMeasure(t *testing.T) {
	dir := pcrVectors(t)
	cases, _ := filepath.Glob(filepath.Join(dir, "want", "*.args"))
	if len(cases) < 8 {
		t.Fatalf("%d vectors in %s, want at least 8", len(cases), dir)
	}
	for _, c := range cases {
		name := strings.TrimSuffix(filepath.Base(c), ".args")
		t.Run(name, func(t *testing.T) {
			args := pcrCaseArgs(t, dir, name)
			want := func(suffix string) string {
				b, err := os.ReadFile(filepath.Join(dir, "want", name+suffix))
				if err != nil {
					t.Fatal(err)
				}
				return string(b)
			}
			for _, v := range []struct {
				extra          []string
				stdout, stderr string
			}{
				{nil, ".txt", ".stderr"},
				{[]string{"calculate", "--json=off"}, ".txt", ".stderr"},
				{[]string{"--json=short"}, ".short.json", ""},
				{[]string{"--json"}, ".short.json", ""},
				{[]string{"--json=pretty"}, ".pretty.json", ""},
			} {
				code, out, errOut := runCLI(t, append(append([]string{"measure", "pcr"}, v.extra...), args...)...)
				if code != 0 {
					t.Fatalf("measure pcr %v %q: exit %d, stderr %s", v.extra, args, code, errOut)
				}
				if w := want(v.stdout); out != w {
					t.Errorf("measure pcr %v: stdout\n%s\nwant (systemd-measure %s)\n%s", v.extra, out, v.stdout, w)
				}
				if v.stderr != "" {
					if w := want(v.stderr); errOut != w {
						t.Errorf("measure pcr %v: stderr\n%s\nwant (systemd-measure)\n%s", v.extra, errOut, w)
					}
				}
			}
		})
	}
}

// systemdMeasure is Debian's systemd-measure (package systemd), which is
// not on PATH; the test fails in CI when it is missing.
func systemdMeasure(t *testing.T) string {
	const p = "/usr/lib/systemd/systemd-measure"
	if _, err := os.Stat(p); err != nil {
		if testenv.InCI() {
			t.Fatalf("%s not found: apt-get install systemd", p)
		}
		t.Skipf("%s not found: apt-get install systemd", p)
	}
	return p
}

// TestMeasurePCRAgainstLiveSystemdMeasure compares measure pcr with the
// installed systemd-measure on random sections, banks and phases.
func TestMeasurePCRAgainstLiveSystemdMeasure(t *testing.T) {
	sm := systemdMeasure(t)
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(19, 11))
	flags := []string{"linux", "osrel", "cmdline", "initrd", "splash", "dtb", "pcrpkey"}
	banks := []string{"sha1", "SHA256", "sha384", "SHA512", "sha2-256"}
	phases := []string{"enter-initrd", "enter-initrd:leave-initrd", "", "a::b", ":sysinit:", "ready"}
	for i := range 12 {
		var args []string
		for j, f := range flags {
			if j > 0 && rng.IntN(2) == 0 {
				continue
			}
			data := make([]byte, rng.IntN(40000))
			for k := range data {
				data[k] = byte(rng.UintN(256))
			}
			p := filepath.Join(dir, f+string(rune('a'+i)))
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			args = append(args, "--"+f+"="+p)
		}
		for _, b := range banks {
			if rng.IntN(3) == 0 {
				args = append(args, "--bank="+b)
			}
		}
		for _, p := range phases {
			if rng.IntN(3) == 0 {
				args = append(args, "--phase="+p)
			}
		}
		for _, mode := range []string{"off", "short", "pretty"} {
			cmd := exec.Command(sm, append([]string{"calculate", "--json=" + mode}, args...)...)
			var want, wantErr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &want, &wantErr
			if err := cmd.Run(); err != nil {
				t.Fatalf("systemd-measure %q: %v\n%s", args, err, wantErr.String())
			}
			code, out, errOut := runCLI(t, append([]string{"measure", "pcr", "--json=" + mode}, args...)...)
			if code != 0 || out != want.String() || (mode == "off" && errOut != wantErr.String()) {
				t.Errorf("measure pcr --json=%s %q: exit %d\n%s%s\nwant (systemd-measure)\n%s%s", mode, args, code, out, errOut, want.String(), wantErr.String())
			}
		}
	}
}

func TestMeasurePCRRefuses(t *testing.T) {
	linux := filepath.Join(pcrVectors(t), "in", "linux")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--osrel", linux}, 2, "--linux is required"},
		{[]string{"--linux", linux, "--bank", "md5"}, 2, `unknown PCR bank "md5"`},
		{[]string{"--linux", linux, "--json=yaml"}, 2, "--json=yaml: want short, pretty or off"},
		{[]string{"status"}, 2, "needs a TPM or a private key"},
		{[]string{"calculate", "extra"}, 2, "unexpected arguments"},
		{[]string{"--linux", linux, "--linux", linux}, 2, "--linux"},
		{[]string{"--linux", filepath.Join(t.TempDir(), "none")}, 2, "--linux: open"},
		{[]string{"--linux", linux, "--phase", "\xff"}, 2, "not UTF-8"},
	} {
		code, _, errOut := runCLI(t, append([]string{"measure", "pcr"}, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("measure pcr %q: exit %d, stderr %q; want exit %d and %q", c.args, code, errOut, c.code, c.want)
		}
	}
	// A failure in JSON mode prints a result too.
	code, out, _ := runCLI(t, "measure", "pcr", "--json", "--linux", linux, "--bank", "md5")
	var res struct {
		OK       bool `json:"ok"`
		ExitCode int  `json:"exit_code"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 2 || res.OK || res.ExitCode != 2 {
		t.Errorf("measure pcr --json --bank md5: exit %d, stdout %q (%v); want exit 2 and {ok: false, exit_code: 2}", code, out, err)
	}
}
