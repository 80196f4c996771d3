package fetch

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const testKey = ` -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBGPL0BUBEADmW5NdOOHwPIJlgPu6JDcKw/NZJPR8lsD3K87ZM18gzyQZJD+w
 -----END PGP PUBLIC KEY BLOCK-----`

func TestReadSources(t *testing.T) {
	mirror, sec := "http://mirror.test/debian", "http://mirror.test/debian-security"
	tests := []struct {
		name  string
		files map[string]string
		want  []SourceEntry
	}{{
		name: "one-line",
		files: map[string]string{"etc/apt/sources.list": `# comment
deb ` + mirror + ` bookworm main contrib # trailing comment

deb-src ` + mirror + ` bookworm main
deb [arch=amd64,arm64 signed-by=/usr/share/keyrings/a.gpg] ` + sec + ` bookworm-security main
deb [ signed-by=/k.gpg ] ` + mirror + ` bookworm-updates main
`},
		want: []SourceEntry{
			{File: "etc/apt/sources.list", Line: 2, Types: []string{"deb"}, URIs: []string{mirror}, Suites: []string{"bookworm"}, Components: []string{"main", "contrib"}, Enabled: true},
			{File: "etc/apt/sources.list", Line: 4, Types: []string{"deb-src"}, URIs: []string{mirror}, Suites: []string{"bookworm"}, Components: []string{"main"}, Enabled: true},
			{File: "etc/apt/sources.list", Line: 5, Types: []string{"deb"}, URIs: []string{sec}, Suites: []string{"bookworm-security"}, Components: []string{"main"}, SignedBy: "/usr/share/keyrings/a.gpg", Architectures: []string{"amd64", "arm64"}, Enabled: true},
			{File: "etc/apt/sources.list", Line: 6, Types: []string{"deb"}, URIs: []string{mirror}, Suites: []string{"bookworm-updates"}, Components: []string{"main"}, SignedBy: "/k.gpg", Enabled: true},
		},
	}, {
		name: "deb822 with an inline key, disabled stanza, ignored names",
		files: map[string]string{
			"etc/apt/sources.list.d/debian.sources": `Types: deb deb-src
# a comment inside the stanza
URIs: ` + mirror + `
Suites: trixie trixie-updates
Components: main non-free-firmware
Signed-By:
` + testKey + `

types: deb
uris: ` + sec + `
suites: trixie-security
components: main
enabled: no
`,
			"etc/apt/sources.list.d/other.list":                  "deb http://other.test/apt stable main\n",
			"etc/apt/sources.list.d/nodesource.sources.disabled": "Types: deb\nURIs: http://x.test\nSuites: nodistro\n",
			"etc/apt/sources.list.d/old.list.save":               "deb http://x.test old main\n",
		},
		want: []SourceEntry{
			{File: "etc/apt/sources.list.d/debian.sources", Line: 1, Types: []string{"deb", "deb-src"}, URIs: []string{mirror}, Suites: []string{"trixie", "trixie-updates"}, Components: []string{"main", "non-free-firmware"}, SignedBy: "\n" + testKey, Enabled: true},
			{File: "etc/apt/sources.list.d/debian.sources", Line: 12, Types: []string{"deb"}, URIs: []string{sec}, Suites: []string{"trixie-security"}, Components: []string{"main"}, Enabled: false},
			{File: "etc/apt/sources.list.d/other.list", Line: 1, Types: []string{"deb"}, URIs: []string{"http://other.test/apt"}, Suites: []string{"stable"}, Components: []string{"main"}, Enabled: true},
		},
	}, {
		name:  "no sources at all",
		files: map[string]string{"etc/hostname": "x\n"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, s := range tt.files {
				fsys[name] = &fstest.MapFile{Data: []byte(s)}
			}
			got, err := ReadSources(fsys)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ReadSources: got - want +:\n%s", diff)
			}
		})
	}
}

func TestReadSourcesErrors(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"etc/apt/sources.list:1: unterminated":             {"etc/apt/sources.list": "deb [arch=amd64 http://m.test/debian bookworm main\n"},
		"etc/apt/sources.list:2: want TYPE":                {"etc/apt/sources.list": "\ndeb http://m.test/debian\n"},
		"etc/apt/sources.list.d/a.sources:1: a stanza":     {"etc/apt/sources.list.d/a.sources": "Types: deb\nSuites: x\n"},
		"etc/apt/sources.list.d/a.sources:1: continuation": {"etc/apt/sources.list.d/a.sources": " dangling\n"},
	} {
		fsys := fstest.MapFS{}
		for n, s := range files {
			fsys[n] = &fstest.MapFile{Data: []byte(s)}
		}
		_, err := ReadSources(fsys)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("ReadSources(%v): error %v, want one containing %q", files, err, name)
		}
	}
}

func TestReadOSRelease(t *testing.T) {
	for _, tt := range []struct {
		files map[string]string
		want  OSRelease
	}{
		{map[string]string{"etc/os-release": "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_CODENAME=bookworm\n"}, OSRelease{ID: "debian", Codename: "bookworm"}},
		{map[string]string{"usr/lib/os-release": "ID=ubuntu\nID_LIKE='debian'\nVERSION_CODENAME=noble\n"}, OSRelease{ID: "ubuntu", IDLike: []string{"debian"}, Codename: "noble"}},
	} {
		fsys := fstest.MapFS{}
		for n, s := range tt.files {
			fsys[n] = &fstest.MapFile{Data: []byte(s)}
		}
		got, err := ReadOSRelease(fsys)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ReadOSRelease(%v): got - want +:\n%s", tt.files, diff)
		}
	}
}

func TestSuiteSources(t *testing.T) {
	mirror, sec := "http://mirror.test/debian", "http://mirror.test/debian-security"
	bookworm := OSRelease{ID: "debian", Codename: "bookworm"}
	tests := []struct {
		name    string
		entries []SourceEntry
		rel     OSRelease
		want    string
		wantErr error
	}{{
		name: "release entries only, deduplicated, keys kept",
		rel:  bookworm,
		entries: []SourceEntry{
			{Types: []string{"deb", "deb-src"}, URIs: []string{mirror}, Suites: []string{"bookworm", "bookworm-updates"}, Components: []string{"main"}, SignedBy: "/usr/share/keyrings/debian-archive-keyring.gpg", Enabled: true},
			{Types: []string{"deb"}, URIs: []string{sec}, Suites: []string{"bookworm-security"}, Components: []string{"main"}, Enabled: true},
			{Types: []string{"deb"}, URIs: []string{"http://other.test/apt"}, Suites: []string{"nodistro"}, Components: []string{"main"}, Enabled: true},
			{Types: []string{"deb-src"}, URIs: []string{"http://src.test/debian"}, Suites: []string{"bookworm"}, Enabled: true},
			{Types: []string{"deb"}, URIs: []string{"http://off.test/debian"}, Suites: []string{"bookworm"}, Enabled: false},
			{Types: []string{"deb"}, URIs: []string{mirror}, Suites: []string{"bookworm"}, Components: []string{"main"}, SignedBy: "/usr/share/keyrings/debian-archive-keyring.gpg", Enabled: true},
			{Types: []string{"deb"}, URIs: []string{"http://second.test/debian"}, Suites: []string{"bookworm"}, Components: []string{"main", "contrib"}, Architectures: []string{"amd64"}, SignedBy: "\n" + testKey, Enabled: true},
		},
		want: `Types: deb
URIs: http://mirror.test/debian
Suites: forky
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
Targets: Packages

Types: deb
URIs: http://second.test/debian
Suites: forky
Components: main contrib
Architectures: amd64
Signed-By:
` + testKey + `
Targets: Packages
`,
	}, {
		name: "a host that names its suite by alias, no Signed-By, no components",
		rel:  OSRelease{ID: "debian"},
		entries: []SourceEntry{
			{Types: []string{"deb"}, URIs: []string{mirror}, Suites: []string{"unstable"}, Enabled: true},
		},
		want: "Types: deb\nURIs: http://mirror.test/debian\nSuites: forky\nComponents: main\nTargets: Packages\n",
	}, {
		name: "only security and third-party entries",
		rel:  bookworm,
		entries: []SourceEntry{
			{Types: []string{"deb"}, URIs: []string{sec}, Suites: []string{"bookworm-security"}, Enabled: true},
			{Types: []string{"deb"}, URIs: []string{"http://other.test/apt"}, Suites: []string{"nodistro"}, Enabled: true},
		},
		wantErr: ErrNoArchive,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SuiteSources(tt.entries, tt.rel, "forky")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("SuiteSources: error %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("SuiteSources: got - want +:\n%s", diff)
			}
		})
	}
}
