package publish

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"

	"github.com/cocobuild/cocobuild/publish/sign"
	"github.com/cocobuild/cocobuild/recipes"
	"github.com/cocobuild/cocobuild/tee"
)

// loadPublish loads a recipe holding one publish block and decodes it.
func loadPublish(t *testing.T, body string) (*node, []string) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "r.hcl")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	k := Kind{CacheDir: filepath.Join(dir, "cache"), TEEs: testTEEs}
	r, diags := recipes.Load(p, recipes.NewRegistry(k), recipes.LoadOptions{})
	if !diags.HasErrors() {
		diags = r.Validate()
	}
	var msgs []string
	for _, d := range diags {
		msgs = append(msgs, d.Subject.String()+": "+d.Summary+": "+d.Detail)
	}
	if diags.HasErrors() {
		return nil, msgs
	}
	n, d := k.Decode(r.Blocks[0], r.EvalContext(nil))
	if d.HasErrors() {
		t.Fatal(d)
	}
	return n.(*node), msgs
}

func TestPublishBlockDiagnostics(t *testing.T) {
	cases := []struct {
		name, attrs, want string
	}{
		{"bad version", `version = "1.0"`, `r.hcl:3,13-18: Invalid version`},
		{"bad expiry", `expires = "next year"`, `r.hcl:4,13-24: Invalid expiry`},
		{"unknown format", `formats = ["intoto", "pdf"]`, `r.hcl:6,13-30: Invalid formats: unknown format "pdf"`},
		{"no statement", `formats = ["rvps"]`, `Invalid formats: formats must include "intoto"`},
		{"bad feed", `to = ["s3://bucket"]`, `r.hcl:6,8-23: Invalid feed`},
		{"bad namespace", `namespace = "/abs"`, `Invalid namespace`},
		{"empty key", `key = ""`, `Missing key`},
		{"typo", `expire = "x"`, `Unsupported argument`},
		{"allow not a bool", `allow_partial_coverage = "sometimes"`, `r.hcl:6,28-39: Incorrect value type`},
		{"index_ttl not a duration", `index_ttl = "a week"`, `r.hcl:6,15-23: Invalid index_ttl`},
		{"index_ttl not positive", `index_ttl = "-1h"`, `Invalid index_ttl: index_ttl "-1h" is not a positive Go duration`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			attrs := map[string]string{"version": `"1.0.0"`, "expires": `"2030-01-01T00:00:00Z"`, "key": `"dev"`}
			k, v, _ := strings.Cut(c.attrs, " = ")
			extra := ""
			if _, ok := attrs[k]; ok {
				attrs[k] = v
			} else {
				extra = "  " + c.attrs + "\n"
			}
			body := "\npublish \"p\" {\n  version = " + attrs["version"] + "\n  expires = " + attrs["expires"] + "\n  key     = " + attrs["key"] + "\n" + extra + "}\n"
			_, msgs := loadPublish(t, body)
			found := false
			for _, m := range msgs {
				if strings.Contains(m, c.want) {
					found = true
				}
			}
			if !found {
				t.Errorf("diagnostics %q lack %q", msgs, c.want)
			}
		})
	}
}

func TestPublishBlockDecodes(t *testing.T) {
	n, msgs := loadPublish(t, `
variable "release" {
  default = "v2.1.0"
}
publish "guest" {
  version   = var.release
  expires   = "2030-01-01T00:00:00Z"
  key       = "keys/cosign.key"
  formats   = ["intoto", "corim"]
  to        = ["dir:out/feed", "oci://127.0.0.1:5000/coco/guest"]
  namespace = "github.com/acme/guest"
  subject   = "disk"
  index_ttl = "720h"
}
`)
	if n == nil {
		t.Fatalf("diagnostics: %q", msgs)
	}
	want := Config{Options: Options{Name: "guest", Version: "v2.1.0", Expires: testExpires, Namespace: "github.com/acme/guest"},
		Formats: []string{"intoto", "corim"}, To: []string{"dir:out/feed", "oci://127.0.0.1:5000/coco/guest"}, Subject: "disk", IndexTTL: 720 * time.Hour}
	if got := n.cfg.TEEs.Names(); !slices.Equal(got, testTEEs.Names()) {
		t.Errorf("config TEEs %q, want the Kind's %q", got, testTEEs.Names())
	}
	n.cfg.TEEs = tee.Set{}
	if diff := cmp.Diff(want, n.cfg, cmp.AllowUnexported(tee.Set{})); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if n.key != "keys/cosign.key" || !filepath.IsAbs(n.keyBase) {
		t.Errorf("key %q relative to %q, want keys/cosign.key relative to the recipe directory", n.key, n.keyBase)
	}
	out, err := n.Finish(nil)
	if err != nil {
		t.Fatal(err)
	}
	if v := out.Value.GetAttr("version").AsString(); v != "2.1.0" {
		t.Errorf("publish.guest.version = %q, want 2.1.0", v)
	}
}

func TestPostBuildWritesDocumentsAndNotes(t *testing.T) {
	n, msgs := loadPublish(t, `
publish "guest" {
  version = "1.0.0"
  expires = "2030-01-01T00:00:00Z"
  key     = "dev"
}
`)
	if n == nil {
		t.Fatalf("diagnostics: %q", msgs)
	}
	mb := testManifest()
	dir := t.TempDir()
	arts, notes, err := n.PostBuild(context.Background(), mb, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(arts) != 7 {
		t.Errorf("%d artifacts, want 7", len(arts))
	}
	for _, a := range arts {
		b, err := os.ReadFile(a.File.Path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(a.Path, "publish/guest/") || a.File.SHA256 != sha256Hex(b) || a.Extra["development_key"] != true {
			t.Errorf("artifact %+v", a)
		}
	}
	all := strings.Join(notes, "\n")
	for _, want := range []string{"wrote the DEVELOPMENT signing key", sign.DevKeyWarning, "cocobuild verify --allow-dev-key --key DEV_PUB OUT/publish/guest", "cocobuild keygen --dev"} {
		if !strings.Contains(all, want) {
			t.Errorf("notes %q lack %q", notes, want)
		}
	}
	// The hint never verifies with the key shipped inside the release.
	if strings.Contains(all, "--key OUT/publish/guest/cosign.pub") {
		t.Errorf("notes %q verify with the cosign.pub inside the release", notes)
	}
	// The second time the key files exist: no note about writing them.
	_, notes, err = n.PostBuild(context.Background(), mb, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.Join(notes, "\n"), "wrote the") {
		t.Errorf("second post-build made a new key: %q", notes)
	}
	// A manifest without measurements has nothing to publish.
	empty := testManifest()
	empty.Measurements = nil
	if _, _, err := n.PostBuild(context.Background(), empty, t.TempDir()); err == nil || !strings.Contains(err.Error(), "add a measure block") {
		t.Errorf("empty manifest: %v", err)
	}
}

// TestPostBuildRefusesPartialCoverage: a manifest whose values leave out
// part of the guest is refused with a diagnostic at the block, or at
// allow_partial_coverage = false when the recipe says it; with true it is
// signed.
func TestPostBuildRefusesPartialCoverage(t *testing.T) {
	mb := partialManifest()
	for _, c := range []struct {
		attr, at string // at: where the diagnostic points; "" when signed
	}{
		{"", "r.hcl:2,1-16"},
		{"allow_partial_coverage = false", "r.hcl:6,3-33"},
		{"allow_partial_coverage = true", ""},
	} {
		n, msgs := loadPublish(t, "\npublish \"guest\" {\n  version = \"1.0.0\"\n  expires = \"2030-01-01T00:00:00Z\"\n  key     = \"dev\"\n  "+c.attr+"\n}\n")
		if n == nil {
			t.Fatalf("diagnostics: %q", msgs)
		}
		_, _, err := n.PostBuild(context.Background(), mb, t.TempDir())
		if c.at == "" {
			if err != nil {
				t.Errorf("%q: %v, want the release signed", c.attr, err)
			}
			continue
		}
		var diags hcl.Diagnostics
		if !errors.As(err, &diags) || len(diags) != 1 {
			t.Fatalf("%q: got %v, want one diagnostic", c.attr, err)
		}
		d := diags[0]
		if got := d.Subject.String(); !strings.HasSuffix(got, c.at) {
			t.Errorf("%q: diagnostic at %s, want %s", c.attr, got, c.at)
		}
		for _, want := range []string{"snp/vcpus=1", "snp/vcpus=2", "tdx/memory=4G", "lacks kernel, cmdline", "lacks initrd, cmdline", "allow_partial_coverage = true"} {
			if !strings.Contains(d.Detail, want) {
				t.Errorf("%q: detail lacks %q:\n%s", c.attr, want, d.Detail)
			}
		}
	}
}
