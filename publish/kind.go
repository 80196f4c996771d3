package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/publish/sign"
	"github.com/cocobuild/cocobuild/recipes"
	"github.com/cocobuild/cocobuild/tee"
)

// Kind implements the `publish "NAME" { … }` block: once the build is done,
// the measurements of its manifest become a signed release of reference
// values, written into OUT/publish/NAME/ and appended to the feeds in `to`.
// Signing (PostBuild) and appending (Deliver) are two phases: the builder
// delivers only once OUT, documents included, is complete, and a build
// without publishing (cocobuild build --no-publish, repro, verify-build)
// runs neither, so it needs no key.
//
//	publish "sample" {
//	  version   = var.release                    # semantic version; feeds only take newer ones
//	  expires   = "2027-12-31T00:00:00Z"         # RFC 3339
//	  key       = "env://COCOBUILD_SIGNING_KEY"  # or a key file, or "dev"
//	  formats   = ["rvps", "intoto", "corim"]    # the default
//	  to        = ["dir:out/feed", "oci://127.0.0.1:5000/coco/sample"]
//	  namespace = "github.com/acme/guest"        # rvps:/// names; default: the block name
//	  subject   = "oci://127.0.0.1:5000/coco/sample:disk" # the pushed disk image, for oci:// feeds
//	  index_ttl = "168h"                         # the default: the feeds' re-signed index is valid 7 days
//	  allow_partial_coverage = false             # the default: refuse values that leave out part of the guest
//	}
//
// index_ttl (a Go duration) is how long each feed's index, re-signed by
// every build, stays valid: build again before it runs out, or verifiers
// call the feed stale.
//
// The passphrase of the key is read from $COSIGN_PASSWORD. key = "dev" uses
// the development key (sign.DevSigner: public and the same everywhere, so
// builds stay reproducible), written into the cache directory on first use;
// every release signed with it says so, and the build notes warn about it.
//
// A measurement that does not cover the firmware, kernel and cmdline (and
// the initrd when its measure block was given one) is refused with a
// diagnostic at the block, unless allow_partial_coverage = true: then the
// release says so and every document carries what each entry covers and
// lacks.
type Kind struct {
	// CacheDir is the build cache; the development key lives below it.
	CacheDir string
	// TEEs are the TEEs whose measurements it publishes.
	TEEs tee.Set
}

// Type implements recipes.Kind.
func (Kind) Type() string { return "publish" }

// Schema implements recipes.Kind.
func (Kind) Schema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "version", Required: true}, {Name: "expires", Required: true}, {Name: "key", Required: true},
		{Name: "formats"}, {Name: "to"}, {Name: "namespace"}, {Name: "subject"}, {Name: "description"},
		{Name: "allow_partial_coverage"}, {Name: "index_ttl"},
	}}
}

// OutputType implements recipes.Kind: `publish.NAME` has the release's name
// and version.
func (Kind) OutputType() cty.Type {
	return cty.Object(map[string]cty.Type{"name": cty.String, "version": cty.String})
}

// DevKeyDir is where the development key of a cache lives.
func DevKeyDir(cacheDir string) string { return filepath.Join(cacheDir, "dev-key") }

type node struct {
	kind    Kind
	name    string
	key     string
	keyBase string // the recipe's directory: relative key paths start there
	cfg     Config
	// where refusals point: the block's header, or allow_partial_coverage
	// when it is given (and false)
	defRange hcl.Range
	// where an expiry already past at publish time points
	expiresRange hcl.Range
	// signed is what PostBuild signed, for Deliver once OUT is written.
	signed *signedRelease
}

// signedRelease is a release signed by PostBuild, not yet delivered, with
// the key that signed it (which re-signs the feeds' indexes).
type signedRelease struct {
	res *Result
	s   *sign.Signer
}

// Decode implements recipes.Kind.
func (k Kind) Decode(b *recipes.Block, ctx *hcl.EvalContext) (recipes.Node, hcl.Diagnostics) {
	content, diags := b.Body.Content(k.Schema())
	if diags.HasErrors() {
		return nil, diags
	}
	n := &node{kind: k, name: b.Name, keyBase: filepath.Dir(b.DefRange.Filename), defRange: b.DefRange}
	n.cfg.Name = b.Name
	n.cfg.TEEs = k.TEEs
	if err := checkName(b.Name); err != nil {
		diags = append(diags, recipes.Diag("Invalid publish name", err.Error(), b.LabelRange))
	}
	str := func(name string, target *string) (hcl.Range, bool) {
		a, ok := content.Attributes[name]
		if !ok {
			return hcl.Range{}, false
		}
		diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.String, target)...)
		return a.Expr.Range(), true
	}
	list := func(name string, target *[]string) (hcl.Range, bool) {
		a, ok := content.Attributes[name]
		if !ok {
			return hcl.Range{}, false
		}
		diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.List(cty.String), target)...)
		return a.Expr.Range(), true
	}
	if rng, _ := str("version", &n.cfg.Version); n.cfg.Version != "" {
		if _, err := CanonicalVersion(n.cfg.Version); err != nil {
			diags = append(diags, recipes.Diag("Invalid version", err.Error(), rng))
		}
	}
	var expires string
	rng, _ := str("expires", &expires)
	n.expiresRange = rng
	if expires != "" {
		t, err := time.Parse(time.RFC3339, expires)
		if err != nil {
			diags = append(diags, recipes.Diag("Invalid expiry", fmt.Sprintf("expires %q is not an RFC 3339 time such as 2027-12-31T00:00:00Z.", expires), rng))
		}
		n.cfg.Expires = t
	}
	if rng, ok := str("key", &n.key); ok && n.key == "" {
		diags = append(diags, recipes.Diag("Missing key", `key is a private key file, "env://VAR" or "dev" (the development key).`, rng))
	}
	if rng, ok := list("formats", &n.cfg.Formats); ok && n.cfg.Formats != nil {
		if err := CheckFormats(n.cfg.Formats); err != nil {
			diags = append(diags, recipes.Diag("Invalid formats", err.Error(), rng))
		}
	}
	if rng, _ := list("to", &n.cfg.To); n.cfg.To != nil {
		for _, t := range n.cfg.To {
			if err := CheckTarget(t); err != nil {
				diags = append(diags, recipes.Diag("Invalid feed", err.Error(), rng))
			}
		}
	}
	if rng, _ := str("namespace", &n.cfg.Namespace); n.cfg.Namespace != "" {
		if err := checkNamespace(n.cfg.Namespace); err != nil {
			diags = append(diags, recipes.Diag("Invalid namespace", err.Error(), rng))
		}
	}
	str("subject", &n.cfg.Subject)
	var ttl string
	before := len(diags)
	if rng, ok := str("index_ttl", &ttl); ok && len(diags) == before {
		d, err := time.ParseDuration(ttl)
		if err != nil || d <= 0 {
			diags = append(diags, recipes.Diag("Invalid index_ttl", fmt.Sprintf("index_ttl %q is not a positive Go duration such as \"168h\" (7 days, the default).", ttl), rng))
		}
		n.cfg.IndexTTL = d
	}
	if a, ok := content.Attributes["allow_partial_coverage"]; ok {
		diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.Bool, &n.cfg.AllowPartialCoverage)...)
		n.defRange = a.Range
	}
	var desc string
	str("description", &desc)
	if diags.HasErrors() {
		return nil, diags
	}
	return n, diags
}

// Steps implements recipes.Node: publishing has no cached step; it works
// on the whole build in PostBuild.
func (n *node) Steps() []*recipes.Step { return nil }

// Finish implements recipes.Node.
func (n *node) Finish(map[string]*recipes.Result) (*recipes.Output, error) {
	v, _ := CanonicalVersion(n.cfg.Version)
	return &recipes.Output{Value: cty.ObjectVal(map[string]cty.Value{
		"name": cty.StringVal(n.name), "version": cty.StringVal(v),
	})}, nil
}

// coverageDiag turns a refusal to sign partial coverage into a diagnostic
// at the block (the builder reports it as a recipe error, with the
// snippet).
func (n *node) coverageDiag(pc *PartialCoverageError) hcl.Diagnostics {
	return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Reference values that do not vouch for the guest",
		Detail:  fmt.Sprintf("publish %q refuses to sign them. %s\nMeasure the whole guest as each group says, or, to sign these values with what they cover and lack written into every document, set allow_partial_coverage = true in this block.", n.name, pc.Detail()),
		Subject: n.defRange.Ptr(), Extra: pc}}
}

// signer loads the block's key.
func (n *node) signer() (*sign.Signer, []string, error) {
	return sign.Choose(n.key, n.keyBase, func() (string, error) {
		if n.kind.CacheDir == "" {
			return "", fmt.Errorf(`key = "dev" needs a cache directory`)
		}
		return DevKeyDir(n.kind.CacheDir), nil
	})
}

// PostBuild implements builder.PostBuilder: it signs the release of the
// build's manifest and returns the documents as the block's artifacts. It
// appends nothing to the feeds: Deliver does, once the output directory
// holding the documents is written.
func (n *node) PostBuild(ctx context.Context, m *manifest.Manifest, dir string) ([]recipes.OutputArtifact, []string, error) {
	s, notes, err := n.signer()
	if err != nil {
		return nil, nil, err
	}
	cfg := n.cfg
	cfg.DevelopmentKey = sign.IsDevKey(s.Public())
	res, err := SignRelease(ctx, m, s, cfg)
	if pc, ok := IsPartialCoverage(err); ok {
		return nil, nil, n.coverageDiag(pc)
	}
	if errors.Is(err, ErrExpiresPast) {
		return nil, nil, hcl.Diagnostics{recipes.Diag("Release already expired", fmt.Sprintf("publish %q refuses to sign it: %s.", n.name, err), n.expiresRange)}
	}
	if err != nil {
		return nil, nil, err
	}
	var arts []recipes.OutputArtifact
	for _, d := range res.Documents {
		p := filepath.Join(dir, d.Name)
		if err := os.WriteFile(p, d.Data, 0o644); err != nil {
			return nil, nil, err
		}
		sum := sha256.Sum256(d.Data)
		arts = append(arts, recipes.OutputArtifact{
			Name: "publish." + n.name + "/" + d.Name, Kind: ArtifactKindReferenceValues,
			Path: path.Join("publish", n.name, d.Name),
			File: recipes.Artifact{Origin: "publish." + n.name, Path: p, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(d.Data))},
			Extra: map[string]any{"format": d.Format, "media_type": d.MediaType, "release": res.Release.Name, "version": res.Release.Version,
				"development_key": res.Release.DevelopmentKey},
		})
	}
	notes = append(notes, res.Notes...)
	_, rvps := DocumentByName(res.Documents, RVPSFile)
	notes = append(notes, VerifyHint(s.Public(), "OUT", "OUT/publish/"+n.name, res.Release, rvps))
	n.signed = &signedRelease{res: res, s: s}
	return arts, notes, nil
}

// Deliver implements builder.Deliverer: it appends the release PostBuild
// signed to the feeds in `to`. The builder calls it only once the output
// directory is complete, so a build that fails to write it leaves the feeds
// as they were.
func (n *node) Deliver(ctx context.Context) ([]string, error) {
	if n.signed == nil {
		return nil, errors.New("nothing signed to deliver (Deliver before PostBuild: a bug)")
	}
	sr := n.signed
	n.signed = nil
	return Deliver(ctx, sr.res, sr.s, n.cfg)
}

// VerifyHint says how to verify the release r signed with pub, its
// documents in the directory release of the build output out: with the key
// obtained out of band (never the cosign.pub shipped inside the release),
// and for the development key with --allow-dev-key and the key that
// "cocobuild keygen --dev" shows; then the same with cosign v3
// (CosignHints: --bundle, and --type with the statement's predicate type,
// which cosign needs to find it), against the disk image of out (or
// another file subject), for rvps.json only when the documents hold it
// (rvps), and against each pushed disk image r names.
func VerifyHint(pub *sign.PublicKey, out, release string, r *Release, rvps bool) string {
	key, hint := "PUB", fmt.Sprintf("cocobuild verify --key PUB %s (PUB: your copy of public key %s, obtained out of band: not the %s shipped inside the release)", release, pub.ID(), PublicKeyFile)
	if sign.IsDevKey(pub) {
		key, hint = "DEV_PUB", fmt.Sprintf("cocobuild verify --allow-dev-key --key DEV_PUB %s (DEV_PUB: the development key's cosign.pub that \"cocobuild keygen --dev\" shows, key %s; --allow-dev-key because the public development key signed it, which proves nothing)", release, pub.ID())
	}
	subject, size := SubjectFile(r, out)
	cosign := CosignHints(key, release, subject, size, r, rvps)
	if len(cosign) == 0 {
		return "verify: " + hint
	}
	return fmt.Sprintf("verify: %s; with cosign v3: %s", hint, strings.Join(cosign, "; "))
}
