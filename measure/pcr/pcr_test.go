package pcr

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The vectors in testdata/want were made by Debian 12's systemd-measure
// (systemd 252.38-1~deb12u1) with testdata/gen.sh, from the inputs it
// writes to testdata/in and the arguments in testdata/cases.txt; they are
// committed so that this test needs no systemd.

// caseArgs reads the arguments of a vector.
func caseArgs(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "want", name+".args"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// sectionFlags are systemd-measure's flags of the UKI sections.
var sectionFlags = map[string]string{"linux": ".linux", "osrel": ".osrel", "cmdline": ".cmdline", "initrd": ".initrd",
	"splash": ".splash", "dtb": ".dtb", "uname": ".uname", "sbat": ".sbat", "pcrpkey": ".pcrpkey"}

func TestCalculateMatchesSystemdMeasure(t *testing.T) {
	cases, err := filepath.Glob(filepath.Join("testdata", "want", "*.args"))
	if err != nil || len(cases) < 8 {
		t.Fatalf("vectors: %v, %v; want at least 8 (run testdata/gen.sh)", cases, err)
	}
	for _, c := range cases {
		name := strings.TrimSuffix(filepath.Base(c), ".args")
		t.Run(name, func(t *testing.T) {
			var sections []Section
			var banks []Bank
			var phases []string
			for _, a := range caseArgs(t, name) {
				flag, val, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
				switch {
				case sectionFlags[flag] != "":
					data, err := os.ReadFile(filepath.Join("testdata", val))
					if err != nil {
						t.Fatal(err)
					}
					sections = append(sections, Section{sectionFlags[flag], data})
				case flag == "bank":
					b, err := ParseBank(val)
					if err != nil {
						t.Fatal(err)
					}
					banks = append(banks, b)
				case flag == "phase":
					phases = append(phases, val)
				default:
					t.Fatalf("argument %q of the vector is not modelled", a)
				}
			}
			vals, err := Calculate(sections, banks, phases)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			for _, v := range vals {
				fmt.Fprintf(&got, "%d:%s=%s\n", v.PCR, v.Bank, hex.EncodeToString(v.Value))
			}
			want, err := os.ReadFile(filepath.Join("testdata", "want", name+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != string(want) {
				t.Errorf("got\n%s\nwant (systemd-measure)\n%s", got.String(), want)
			}
		})
	}
}

func TestUKIEventsOrderAndSkips(t *testing.T) {
	b, _ := ParseBank("sha256")
	// Given out of order, with an empty .initrd: the stub's order, no
	// .initrd.
	evs, err := UKIEvents(b, []Section{{".cmdline", []byte("x")}, {".initrd", nil}, {".linux", []byte("k")}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, e.Description)
	}
	want := []string{"section name .linux", "section .linux", "section name .cmdline", "section .cmdline"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("events %q, want %q", got, want)
	}
	if got, want := hex.EncodeToString(evs[0].Digest), hex.EncodeToString(digest(b, []byte(".linux\x00"))); got != want {
		t.Errorf("section name digest %s, want sha256(\".linux\\0\") %s", got, want)
	}
}

func TestRefusals(t *testing.T) {
	for _, c := range []struct {
		sections []Section
		want     string
	}{
		{[]Section{{".text", []byte("x")}}, `section ".text" is not one systemd-stub measures`},
		{[]Section{{".linux", []byte("x")}, {".linux", []byte("y")}}, "section .linux given twice"},
		{[]Section{{".pcrsig", []byte("x")}}, `section ".pcrsig" is not one`},
	} {
		_, err := Calculate(c.sections, nil, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Calculate(%v): error %v, want one with %q", c.sections, err, c.want)
		}
	}
	for _, n := range []string{"md5", "sha224", "sm3", ""} {
		if _, err := ParseBank(n); err == nil {
			t.Errorf("ParseBank(%q) = nil error, want one (not a modelled TPM bank)", n)
		}
	}
	for n, want := range map[string]string{"SHA2-256": "sha256", "Sha-1": "sha1", "SHA384": "sha384", "sha2-512": "sha512"} {
		if b, err := ParseBank(n); err != nil || b.Name != want {
			t.Errorf("ParseBank(%q) = %q, %v; want %q", n, b.Name, err, want)
		}
	}
}

func TestNormalizePhase(t *testing.T) {
	for in, want := range map[string]string{"": "", ":": "", "a::b": "a:b", ":a:": "a", "enter-initrd:leave-initrd": "enter-initrd:leave-initrd"} {
		if got := NormalizePhase(in); got != want {
			t.Errorf("NormalizePhase(%q) = %q, want %q", in, got, want)
		}
	}
}
