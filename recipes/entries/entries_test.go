package entries

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// decode parses src (entry blocks only) and decodes every block.
func decode(t *testing.T, src string) ([]Entry, hcl.Diagnostics) {
	t.Helper()
	f, diags := hclparse.NewParser().ParseHCL([]byte(src), "t.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	c, diags := f.Body.Content(&hcl.BodySchema{Blocks: Blocks()})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var l List
	for _, b := range c.Blocks {
		if !IsBlock(b.Type) {
			t.Fatalf("IsBlock(%q) = false", b.Type)
		}
		diags = append(diags, l.Decode(b, nil)...)
	}
	return l.Entries, diags
}

func TestDecode(t *testing.T) {
	got, diags := decode(t, `
file "/etc/hostname" { content = "guest\n" }
file "/usr/bin/su" {
  content = "x"
  mode    = "4755"
  uid     = 0
  gid     = 42
}
dir "/var/log" {}
dir "/tmp" { mode = "1777" }
symlink "/etc/mtab" { target = "../proc/self/mounts" }
device "/dev/kmsg" {
  type  = "char"
  major = 1
  minor = 11
}
device "/run/initctl" {
  type  = "fifo"
  major = 0
  minor = 0
  mode  = "0600"
  uid   = 7
}
`)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := []Entry{
		{Path: "/etc/hostname", Type: File, Content: "guest\n", Mode: 0o644},
		{Path: "/usr/bin/su", Type: File, Content: "x", Mode: 0o4755, GID: 42},
		{Path: "/var/log", Type: Dir, Mode: 0o755},
		{Path: "/tmp", Type: Dir, Mode: 0o1777},
		{Path: "/etc/mtab", Type: Symlink, Target: "../proc/self/mounts"},
		{Path: "/dev/kmsg", Type: Char, Mode: 0o600, Major: 1, Minor: 11},
		{Path: "/run/initctl", Type: FIFO, Mode: 0o600, UID: 7},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Entry{}, "Range")); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"relative path", `file "etc/x" { content = "" }`, `"etc/x" is not a clean absolute path`},
		{"unclean path", `file "/etc//x" { content = "" }`, "not a clean absolute path"},
		{"dot dot", `file "/../x" { content = "" }`, "not a clean absolute path"},
		{"root", `dir "/" {}`, "below the root"},
		{"duplicate", "file \"/x\" { content = \"\" }\ndir \"/x\" {}", "/x is given twice; the first is at t.hcl:1"},
		{"both sources", `file "/x" {
  content = "a"
  source  = "b"
}`, "File needs content or source"},
		{"no source", `file "/x" {}`, "File needs content or source"},
		{"mode as number", `file "/x" {
  content = ""
  mode    = 0999
}`, "HCL reads 0644 as the decimal number 644"},
		{"mode too large", `dir "/x" { mode = "17777" }`, `mode "17777" is not an octal mode`},
		{"empty mode", `dir "/x" { mode = "" }`, `mode "" is not an octal mode`},
		{"uid", `dir "/x" { uid = -1 }`, "uid -1 is not between 0 and 4294967294"},
		{"gid", `dir "/x" { gid = 4294967295 }`, "gid 4294967295 is not between"},
		{"empty target", `symlink "/x" { target = "" }`, "empty target"},
		{"escaping target", `symlink "/etc/x" { target = "../../y" }`, `points to "../../y", which resolves outside the root`},
		{"symlink mode", `symlink "/x" {
  target = "y"
  mode   = "0777"
}`, `An argument named "mode" is not expected here`},
		{"device type", `device "/dev/x" {
  type  = "pipe"
  major = 1
  minor = 2
}`, `type "pipe" is not char, block or fifo`},
		{"device numbers", `device "/dev/x" {
  type  = "block"
  major = 4096
  minor = 0
}`, "4096:0 is outside 0-4095:0-1048575"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := decode(t, tc.src)
			if !strings.Contains(diags.Error(), tc.want) {
				t.Errorf("got diagnostics %q, want one containing %q", diags.Error(), tc.want)
			}
		})
	}
}

func TestResolvesOutside(t *testing.T) {
	tests := []struct {
		p, target string
		want      bool
	}{
		{"/etc/mtab", "../proc/mounts", false},
		{"etc/mtab", "../proc/mounts", false},
		{"/etc/mtab", "../../proc", true},
		{"/x", "..", true},
		{"/x", "/anywhere/../..", false},
		{"/a/b/c", "../../d", false},
	}
	for _, tc := range tests {
		if got := ResolvesOutside(tc.p, tc.target); got != tc.want {
			t.Errorf("ResolvesOutside(%q, %q) = %v, want %v", tc.p, tc.target, got, tc.want)
		}
	}
}
