package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/internal/atomicfile"
	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/publish/feed"
	"github.com/cocobuild/cocobuild/publish/sign"
)

func newPublishCmd(a *app) *cobra.Command {
	var cfg publish.Config
	var expires, key, out, cacheDir string
	c := &cobra.Command{
		Use:   "publish MANIFEST",
		Short: "Sign the measurements of a built manifest.json as reference values and publish them",
		Long: `Publish reads OUT/manifest.json, makes a release of its measurements and signs it
in every format: the Trustee RVPS message (rvps.json, with its sigstore bundle
rvps.json.sigstore.json for cosign v3's verify-blob --bundle and the detached signature
rvps.json.sig for older clients), an in-toto statement in a sigstore bundle
(statement.sigstore.json) and a signed CoRIM per TEE (corim-snp.cbor, corim-tdx.cbor,
corim-tpm.cbor, ...).
The documents go into --out (default OUT/publish/NAME) with the public key, and are
appended to each --to feed: dir:PATH or oci://REGISTRY/REPO[:TAG]. Each feed's index
(index.json; tag "index" of an oci:// repository) is re-signed with the same key, its
version one higher, valid for --index-ttl: publish again (the same release will do)
before it runs out, or verify reports the feed stale. The documents are written
into --out before any feed is touched: when a feed fails, they are in place and
publishing again is safe (a feed that holds the identical release does not append
it twice).
The documents of a release the recipe's publish block already made (publish/ in the
manifest) are not signed again as subjects.

With --subject, the disk image already pushed to the oci:// feed's repository: its
manifest digest is resolved before signing and named among the statement's subjects
(by REGISTRY/REPO@sha256:...), the release refers to it, and the statement bundle is
also pushed as a cosign attestation referrer of it, so that
  cosign verify-attestation --key PUB --type ` + publish.PredicateType + ` --insecure-ignore-tlog REGISTRY/REPO@DIGEST
accepts it (cosign needs --type: the predicate type is not one it knows by name).

It refuses (exit 2) an --expires already past by the wall clock, which is what
verifiers check expiry against; it refuses (exit 1) subjects of the manifest that are
not files inside its directory (an absolute path, "..", a symbolic link leading out),
and a feed whose releases are signed by another key.

Every measurement must cover the firmware, kernel and cmdline (and the initrd when the
guest has one), as its params.covers says; otherwise publish refuses (exit 1) unless
--allow-partial-coverage, which writes what each value covers and lacks into every
document.

MANIFEST, and the index and blobs of each feed appended to, are read within the
document limit (64MiB; --limit document=SIZE raises it) and only from regular files:
a MANIFEST that is a named pipe or device is refused (exit 2), a larger one or a feed
whose index is larger fails (exit 1) before anything is read.

The key is a private key file or env://VAR (passphrase in $COSIGN_PASSWORD), or
"dev" for the development key. A publish block in the recipe does the same at the end
of every build.

Give verifiers the public key out of band (your site, their key store): the cosign.pub
written beside the documents is a copy for you, and proves nothing to someone who
reads it from the release itself. cocobuild verify rejects development-key documents
unless --allow-dev-key.`,
		Example: `  cocobuild publish out/sample/manifest.json --version 0.1.0 --expires 2027-12-31T00:00:00Z \
      --key env://COCOBUILD_SIGNING_KEY --to dir:out/feed
  cocobuild publish out/sample/manifest.json --version 0.1.1 --expires 2027-12-31T00:00:00Z \
      --key cosign.key --to oci://127.0.0.1:5000/coco/sample --subject disk`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// The manifest may come from another build: it is read only when
			// it is a regular file within the document limit.
			b, err := a.limits.ReadFile(args[0], limits.Document)
			if errors.Is(err, limits.ErrExceeded) {
				return failErr(err)
			}
			if err != nil {
				return usageErr(err)
			}
			m, err := manifest.Parse(b)
			if err != nil {
				return usageErr(fmt.Errorf("%s: %w", args[0], err))
			}
			cfg.TEEs = a.tees
			cfg.Limits = &a.limits
			if cfg.Name == "" {
				cfg.Name = m.Recipe.Name
			}
			if cfg.Version == "" || expires == "" || key == "" {
				return usageErr(fmt.Errorf("--version, --expires and --key are required"))
			}
			if _, err := publish.CanonicalVersion(cfg.Version); err != nil {
				return usageErr(fmt.Errorf("--version: %w", err))
			}
			if cfg.Expires, err = time.Parse(time.RFC3339, expires); err != nil {
				return usageErr(fmt.Errorf("--expires %q: want an RFC 3339 time such as 2027-12-31T00:00:00Z", expires))
			}
			if cfg.IndexTTL <= 0 {
				return usageErr(fmt.Errorf("--index-ttl %s: want a positive duration such as 168h", cfg.IndexTTL))
			}
			if len(cfg.Formats) > 0 {
				if err := publish.CheckFormats(cfg.Formats); err != nil {
					return usageErr(err)
				}
			}
			for _, t := range cfg.To {
				if err := publish.CheckTarget(t); err != nil {
					return usageErr(err)
				}
			}
			s, notes, err := sign.Choose(key, "", func() (string, error) {
				if cacheDir != "" {
					return publish.DevKeyDir(cacheDir), nil
				}
				dir, err := builder.DefaultCacheDir()
				return publish.DevKeyDir(dir), err
			})
			if err != nil && key != sign.DevKeyRef {
				return usageErr(err) // the key given is not one
			} else if err != nil {
				return failErr(err)
			}
			for _, n := range notes {
				fmt.Fprintln(a.stderr, n)
			}
			cfg.DevelopmentKey = sign.IsDevKey(s.Public())
			cfg.Out = filepath.Dir(args[0])
			// Sign, write the documents, and only then append to the feeds:
			// a failing --out leaves every feed as it was.
			res, err := publish.SignRelease(cmd.Context(), m, s, cfg)
			if errors.Is(err, publish.ErrExpiresPast) {
				return usageErr(fmt.Errorf("--expires: %w", err))
			}
			if pc, ok := publish.IsPartialCoverage(err); ok {
				return failErr(fmt.Errorf("%s: refusing to sign reference values that do not vouch for the guest: %s\nMeasure the whole guest as each group says, or pass --allow-partial-coverage to sign them with what they cover and lack written into every document", args[0], pc.Detail()))
			}
			if err != nil {
				return failErr(err)
			}
			if out == "" {
				out = filepath.Join(filepath.Dir(args[0]), "publish", res.Release.Name)
			}
			files, err := writeDocuments(out, res.Documents)
			if err != nil {
				return failErr(fmt.Errorf("writing the documents into %s (no feed was touched): %w", out, err))
			}
			delivered, err := publish.Deliver(cmd.Context(), res, s, cfg)
			res.Notes = append(res.Notes, delivered...)
			if err != nil {
				for _, n := range res.Notes {
					fmt.Fprintln(a.stderr, n)
				}
				return failErr(fmt.Errorf("%w\nThe documents are written into %s; re-running this publish is safe: a feed that holds the identical release does not append it twice", err, out))
			}
			// Verifiers use the key they obtained out of band, never the
			// cosign.pub written beside the documents; the development key
			// is accepted only with --allow-dev-key.
			pub, allow := "PUB", ""
			if sign.IsDevKey(s.Public()) {
				pub, allow = "DEV_PUB", "--allow-dev-key "
				if cacheDir != "" {
					pub = filepath.Join(publish.DevKeyDir(cacheDir), sign.PublicKeyFile)
				}
			}
			verify := []string{"cocobuild verify " + allow + "--key " + pub + " " + out}
			_, rvps := publish.DocumentByName(res.Documents, publish.RVPSFile)
			subject, size := publish.SubjectFile(res.Release, filepath.Dir(args[0]))
			verify = append(verify, publish.CosignHints(pub, out, subject, size, res.Release, rvps)...)
			if a.json {
				return a.printJSON(map[string]any{"release": res.Release.Name, "version": res.Release.Version,
					"development_key": res.Release.DevelopmentKey, "files": files, "notes": res.Notes, "verify": verify,
					"coverage": coverageJSON(res.Release)})
			}
			for _, n := range res.Notes {
				fmt.Fprintln(a.stderr, n)
			}
			fmt.Fprintf(a.stdout, "signed %s %s (%d reference values) into %s:\n", res.Release.Name, res.Release.Version, len(res.Release.Entries), out)
			for _, f := range files {
				fmt.Fprintf(a.stdout, "  %s\n", f)
			}
			if sign.IsDevKey(s.Public()) {
				fmt.Fprintf(a.stdout, "verify with (signed with the public DEVELOPMENT key %s, which proves nothing: accept it knowingly):\n", s.Public().ID())
			} else {
				fmt.Fprintf(a.stdout, "verify with (PUB: your copy of public key %s, obtained out of band, not the %s beside the release):\n", s.Public().ID(), publish.PublicKeyFile)
			}
			for _, v := range verify {
				fmt.Fprintf(a.stdout, "  %s\n", v)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.Name, "name", "", "release name (default: the recipe name)")
	f.StringVar(&cfg.Version, "version", "", "release version, MAJOR.MINOR.PATCH (required)")
	f.StringVar(&expires, "expires", "", "expiry, RFC 3339 (required)")
	f.StringVar(&key, "key", "", `private key: a file, env://VAR, or "dev" (required)`)
	f.StringArrayVar(&cfg.Formats, "format", nil, "rvps, intoto, corim (repeatable; default all three)")
	f.StringArrayVar(&cfg.To, "to", nil, "feed: dir:PATH or oci://REGISTRY/REPO[:TAG] (repeatable)")
	f.StringVar(&cfg.Subject, "subject", "", "for oci:// feeds: the pushed disk image (tag, digest or full reference)")
	f.DurationVar(&cfg.IndexTTL, "index-ttl", feed.DefaultIndexTTL, "how long the feeds' re-signed index stays valid; verify calls the feed stale after that")
	f.StringVar(&cfg.Namespace, "namespace", "", "prefix of the rvps:/// names (default: the release name)")
	f.StringVarP(&out, "out", "o", "", "directory for the documents (default OUT/publish/NAME beside the manifest)")
	f.StringVar(&cacheDir, "cache-dir", "", `the build cache holding the development key, for --key dev`)
	f.BoolVar(&cfg.AllowPartialCoverage, "allow-partial-coverage", false, "sign measurements that leave out part of the guest (firmware, kernel, initrd, cmdline), saying so in every document")
	a.addLimitFlag(c, false)
	return c
}

// writeDocuments writes each document into dir (created if need be), each
// file replaced atomically, and returns their paths.
func writeDocuments(dir string, docs []publish.Document) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files []string
	for _, d := range docs {
		p := filepath.Join(dir, d.Name)
		if err := atomicfile.WriteFile(p, d.Data, 0o644); err != nil {
			return nil, err
		}
		files = append(files, p)
	}
	return files, nil
}
