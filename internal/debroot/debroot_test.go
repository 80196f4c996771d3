package debroot

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestChooseMode(t *testing.T) {
	for _, tc := range []struct {
		name string
		host Host
		mode string // "" for an error
		says string // in Why or the error
	}{
		{"root", Host{EUID: 0, MaxUserNamespaces: 0, UnprivilegedUserns: 0}, "root", "running as root"},
		{"user with namespaces", Host{EUID: 1000, MaxUserNamespaces: 63000, UnprivilegedUserns: -1, User: "u", SubUID: true, SubGID: true, NewUIDMap: true}, "unshare", "uid 1000 with user namespaces allowed"},
		{"user with Debian's switch on", Host{EUID: 1000, MaxUserNamespaces: 63000, UnprivilegedUserns: 1, User: "u", SubUID: true, SubGID: true, NewUIDMap: true}, "unshare", "unshare mode"},
		{"user without uidmap", Host{EUID: 1000, MaxUserNamespaces: 63000, UnprivilegedUserns: 1, User: "u", SubUID: true, SubGID: true}, "", "apt-get install uidmap"},
		{"user without namespaces, with fakechroot", Host{EUID: 1000, MaxUserNamespaces: 0, Fakechroot: true}, "fakechroot", "max_user_namespaces is 0 on this machine"},
		{"user without uidmap, with fakechroot", Host{EUID: 65534, MaxUserNamespaces: 63000, UnprivilegedUserns: 1, User: "nobody", Fakechroot: true}, "fakechroot", "fakechroot mode instead"},
		{"root with fakechroot", Host{EUID: 0, Fakechroot: true}, "root", "running as root"},
		{"user without subordinate ids", Host{EUID: 65534, MaxUserNamespaces: 63000, UnprivilegedUserns: 1, User: "nobody", SubGID: true, NewUIDMap: true}, "", "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 nobody"},
		{"user, no namespaces", Host{EUID: 1000, MaxUserNamespaces: 0, UnprivilegedUserns: 1}, "", "max_user_namespaces is 0"},
		{"user, Debian's switch off", Host{EUID: 1000, MaxUserNamespaces: 63000, UnprivilegedUserns: 0}, "", "unprivileged_userns_clone is 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ChooseMode(tc.host)
			got := m.Why
			if err != nil {
				got = err.Error()
			}
			if m.Name != tc.mode || !strings.Contains(got, tc.says) {
				t.Errorf("ChooseMode(%+v) = %q, %q; want mode %q saying %q", tc.host, m.Name, got, tc.mode, tc.says)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	status := `Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Version: 2.36-9+deb12u13
Description: GNU C Library: Shared libraries
 Contains the standard libraries. Version: not this one

Package: e2fsprogs
Status: deinstall ok config-files
Architecture: amd64
Version: 1.47.0-2

Package: base-files
Status: install ok installed
Architecture: amd64
Version: 12.4+deb12u15
`
	got, err := parseStatus(strings.NewReader(status))
	if err != nil {
		t.Fatal(err)
	}
	want := []Package{{Name: "libc6", Version: "2.36-9+deb12u13", Arch: "amd64"}, {Name: "base-files", Version: "12.4+deb12u15", Arch: "amd64"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseStatus (-want +got):\n%s", diff)
	}
	if _, err := parseStatus(strings.NewReader("")); err == nil {
		t.Errorf("empty status: got no error, want one")
	}
}

func TestCompareSets(t *testing.T) {
	a := Package{Name: "a", Version: "1", Arch: "amd64"}
	b := Package{Name: "b", Version: "2", Arch: "all"}
	b3 := Package{Name: "b", Version: "3", Arch: "all"}
	for _, tc := range []struct {
		pinned, installed []Package
		err               string
	}{
		{[]Package{a, b}, []Package{b, a}, ""},
		{[]Package{a, b}, []Package{a, b3}, "installed but not pinned [b:all=3], pinned but not installed [b:all=2]"},
		{[]Package{a}, []Package{a, b}, "installed but not pinned [b:all=2]"},
	} {
		err := compareSets(tc.pinned, tc.installed)
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("compareSets(%v, %v) = %v, want %q", tc.pinned, tc.installed, err, tc.err)
		}
	}
}

func TestRequestDigestAndCheck(t *testing.T) {
	r1 := Request{Suite: "bookworm", Arch: "amd64", Packages: []string{"b", "a"}}
	r2 := Request{Suite: "bookworm", Arch: "amd64", Packages: []string{"a", "b", "a"}}
	if r1.Digest() != r2.Digest() {
		t.Errorf("the order and repetition of packages changed the digest")
	}
	for _, other := range []Request{
		{Suite: "trixie", Arch: "amd64", Packages: []string{"a", "b"}},
		{Suite: "bookworm", Arch: "arm64", Packages: []string{"a", "b"}},
		{Suite: "bookworm", Arch: "amd64", Packages: []string{"a", "b"}, EssentialOnly: true},
		{Suite: "bookworm", Arch: "amd64", Packages: []string{"a", "b"}, Exclude: []string{"c"}},
	} {
		if other.Digest() == r1.Digest() {
			t.Errorf("%+v has the digest of %+v", other, r1)
		}
	}
	for _, tc := range []struct {
		req Request
		err string
	}{
		{Request{Suite: "bookworm", Packages: []string{"libc6", "g++"}}, ""},
		{Request{Suite: "Bookworm"}, "not the name of a Debian suite"},
		{Request{Suite: "bookworm", Packages: []string{"Foo"}}, "not a Debian package name"},
		{Request{Suite: "bookworm", Packages: []string{"a1"}, Exclude: []string{"a1"}}, "both in packages and in exclude"},
	} {
		err := CheckRequest(tc.req)
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("CheckRequest(%+v) = %v, want %q", tc.req, err, tc.err)
		}
	}
}

func TestHasRange(t *testing.T) {
	f := t.TempDir() + "/subuid"
	if err := os.WriteFile(f, []byte("alice:100000:65536\n1001:200000:65536\nbob:300000:0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		uid  int
		want bool
	}{{"alice", 1000, true}, {"carol", 1001, true}, {"bob", 1002, false}, {"dave", 1003, false}} {
		if got := hasRange(f, tc.name, tc.uid); got != tc.want {
			t.Errorf("hasRange(%s, %d) = %v, want %v", tc.name, tc.uid, got, tc.want)
		}
	}
}

// TestArgs: the variant follows essential_only, packages are included
// sorted once, excluded ones are purged after the status is copied, and
// the leak hooks run last, the shadow dates set to the epoch's day.
func TestArgs(t *testing.T) {
	r := Run{Mode: Mode{Name: "root"}, Epoch: 86400 * 3}
	a := r.args(Request{Suite: "bookworm", Arch: "amd64", Packages: []string{"b", "a", "b"}, Exclude: []string{"y", "x"}, EssentialOnly: true}, "/s", "--first")
	join := strings.Join(a, "\n")
	for _, want := range []string{"--mode=root", "--variant=essential", "--architectures=amd64", "--include=a,b",
		`--customize-hook=chroot "$1" dpkg --purge --force-depends --force-remove-essential x y`, "$3 = 3 }"} {
		if !strings.Contains(join, want) {
			t.Errorf("args lack %q:\n%s", want, join)
		}
	}
	if i, j := strings.Index(join, "copy-out /var/lib/dpkg/status '/s'"), strings.Index(join, "--purge"); i < 0 || j < i {
		t.Errorf("the status is not copied before the purge:\n%s", join)
	}
	if i, j := strings.Index(join, "--first"), strings.Index(join, Leaks[0]); i < 0 || j < i {
		t.Errorf("the caller's hooks do not come before the leak hooks:\n%s", join)
	}
	if v := (Request{}).Variant(); v != "required" {
		t.Errorf("variant without essential_only = %q, want required", v)
	}
}
