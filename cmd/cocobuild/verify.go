package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/internal/termsafe"
	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/publish/feed"
	"github.com/cocobuild/cocobuild/publish/sign"
)

func newVerifyCmd(a *app) *cobra.Command {
	var key, minVersion, at, artifacts, sigFile, statement, stateDir, name string
	var allowDevKey bool
	c := &cobra.Command{
		Use:   "verify --key PUB TARGET",
		Short: "Verify signed reference values: a document, a release or a whole feed",
		Long: `Verify checks signed reference values against a public key. TARGET is
  - a release directory (OUT/publish/NAME): the statement, and every RVPS message and
    CoRIM beside it, which must state the same values;
  - a feed: dir:PATH (or a directory holding index.json), an http(s):// URL served by
    cocobuild serve, or oci://REGISTRY/REPO[:TAG]. Its index must be signed with the
    key and not expired (an expired index means the feed is frozen or stale: its
    publisher re-signs it each time they publish, and it lasts 7 days by default);
    every release it lists is verified, versions must only grow, and the newest of
    each name must not have expired. With a TAG, the release at the tag must be the
    latest of its name in the index. Verify remembers, per feed and key, the highest
    index version and release versions it has seen (in --state, default
    $XDG_STATE_HOME/cocobuild or ~/.local/state/cocobuild) and rejects a feed that
    shows older ones (a rollback: a server hiding newer releases);
  - one document: statement.sigstore.json, rvps.json (with --signature, default the
    .sig beside it) or a corim-*.cbor. --min-version and expiry apply to each: an
    RVPS message states its version in its rvps:/// names but carries no expiry, so
    it is checked with the statement of its release (--statement, default the one
    beside it), which must state the same values.

The key must be the publisher's public key, obtained out of band (from the
publisher's site, your own key store, a pinned copy): never the cosign.pub shipped
inside the release being checked, which anyone who altered the release could
replace with their own.

A signature that verifies with the DEVELOPMENT key (public, the same everywhere;
what "cocobuild keygen --dev" shows and key = "dev" signs with) is rejected, exit 1,
unless --allow-dev-key is given: anyone can sign with it. Which key verified the
signature decides this, never the development_key field of a statement; a
statement that claims the development key but verifies with another key is
rejected as inconsistent.

It checks signatures, the payload type, the subjects (against --artifacts), expiry
(at --at, default now) and rollback (--min-version: the oldest version to accept;
--name: the release series to accept, a feed of other releases is rejected),
and shows what the reference values cover (firmware, kernel, initrd, cmdline): a
release signed with allow_partial_coverage is listed entry by entry, with a warning.
The exit code is 1 when anything does not verify.

Releases and feeds come from others: every document (statement, RVPS message,
signature, CoRIM, feed index, blob) is read within the document limit (64MiB;
--limit document=SIZE raises it), refused from its stated size before it is read
(a file's size, an HTTP Content-Length, an OCI descriptor), and only from a regular
file: a named pipe or device where a document is expected fails at once (exit 1;
exit 2 when it is TARGET, --statement or --signature). --artifacts hashes each
subject as a stream and refuses one that is not a regular file. Text output shows
what the documents say (names, versions, notes) escaped, so that it cannot drive
the terminal; --json keeps it exact.`,
		Example: `  cocobuild verify --key keys/publisher.pub out/sample/publish/sample
  cocobuild verify --key keys/publisher.pub --min-version 0.1.0 dir:out/feed
  cocobuild verify --key keys/publisher.pub --artifacts out/sample out/sample/publish/sample/statement.sigstore.json
  cocobuild verify --key keys/publisher.pub --name sample http://127.0.0.1:8080/
  cocobuild verify --key keys/publisher.pub --name sample oci://registry.example/coco/sample
  # the sample is signed with the development key on purpose: accept it knowingly
  cocobuild keygen --dev   # shows the development key's cosign.pub, in the cache
  cocobuild verify --allow-dev-key --key ~/.cache/cocobuild/dev-key/cosign.pub out/sample/publish/sample`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if key == "" {
				return usageErr(errors.New("--key is required: your copy of the publisher's public key, obtained out of band (not the cosign.pub inside the release)"))
			}
			pub, err := sign.LoadPublicKey(key, "")
			if err != nil {
				return usageErr(err)
			}
			if sign.IsDevKey(pub) && allowDevKey {
				fmt.Fprintln(a.stderr, "WARNING: --allow-dev-key: accepting the DEVELOPMENT key, which is public: what it signed proves nothing")
			}
			o := publish.VerifyOptions{MinVersion: minVersion, Artifacts: artifacts, AllowDevKey: allowDevKey, Name: name, TEEs: a.tees}
			if minVersion != "" {
				if _, err := publish.CanonicalVersion(minVersion); err != nil {
					return usageErr(fmt.Errorf("--min-version: %w", err))
				}
			}
			if at != "" {
				if o.Now, err = time.Parse(time.RFC3339, at); err != nil {
					return usageErr(fmt.Errorf("--at %q: want an RFC 3339 time", at))
				}
			}
			// The state directory is for feeds only: a release directory or
			// a document verifies without one (and without $HOME).
			feedCheck := func() (publish.FeedCheck, error) {
				dir, err := verifyStateDir(stateDir)
				if err != nil {
					return publish.FeedCheck{}, usageErr(err)
				}
				return publish.FeedCheck{State: &feed.State{Dir: dir}, Name: name}, nil
			}
			o.Limits = &a.limits
			ctx := cmd.Context()
			target := args[0]
			kind, err := publish.ClassifyTarget(target)
			if err != nil {
				return usageErr(err)
			}
			if kind != publish.TargetFile {
				var fc publish.FeedCheck
				if kind == publish.TargetFeed {
					if fc, err = feedCheck(); err != nil {
						return err
					}
				}
				vt, err := publish.VerifyTarget(ctx, target, kind, pub, o, fc)
				if errors.Is(err, publish.ErrBadTarget) {
					return usageErr(err)
				}
				if err != nil {
					return a.verifyFailed(err)
				}
				if vt.Feed != nil {
					return a.printFeed(target, vt.Feed, pub, fc.State)
				}
				return a.printVerified(target, vt.Release.Release, vt.Release.Checked)
			}
			data, err := a.readDocument(target, true)
			if err != nil {
				return err
			}
			if statement != "" {
				if o.Statement, err = a.readDocument(statement, true); err != nil {
					return err
				}
			} else if filepath.Base(target) != publish.StatementFile {
				if o.Statement, err = a.readDocument(filepath.Join(filepath.Dir(target), publish.StatementFile), false); err != nil {
					return err
				}
			}
			var sig []byte
			if sigFile == "" {
				if sig, err = a.readDocument(target+".sig", false); err != nil {
					return err
				}
			} else if sig, err = a.readDocument(sigFile, true); err != nil {
				return err
			}
			if f, _ := publish.DetectFormat(data); name != "" && (f == publish.FormatCoRIM || f == publish.FormatRVPS && o.Statement == nil) {
				return usageErr(fmt.Errorf("--name: %s does not state its release's name: verify it with its statement (--statement) or verify the release directory", target))
			}
			checked, err := publish.VerifyOne(ctx, data, sig, pub, o)
			if err != nil {
				return a.verifyFailed(err)
			}
			return a.printVerified(target, nil, checked)
		},
	}
	a.addLimitFlag(c, false)
	f := c.Flags()
	f.StringVar(&key, "key", "", "the publisher's public key (PEM file or env://VAR), obtained out of band, not the cosign.pub inside the release (required)")
	f.StringVar(&minVersion, "min-version", "", "reject releases older than this version (rollback protection)")
	f.StringVar(&at, "at", "", "check expiry at this RFC 3339 time instead of now")
	f.StringVar(&artifacts, "artifacts", "", "build output directory whose files must match the statement's subjects")
	f.StringVar(&sigFile, "signature", "", "signature of an RVPS message: its detached signature (rvps.json.sig) or its sigstore bundle (rvps.json.sigstore.json) (default: TARGET.sig)")
	f.BoolVar(&allowDevKey, "allow-dev-key", false, "accept documents signed with the public DEVELOPMENT key (rejected otherwise: it proves nothing)")
	f.StringVar(&stateDir, "state", "", "directory where verify remembers the versions of the feeds it has seen, for feed targets only (default $"+stateEnv+", else $XDG_STATE_HOME/cocobuild, else ~/.local/state/cocobuild)")
	f.StringVar(&name, "name", "", "the release series to accept: a release, or a feed holding releases, of another name is rejected")
	f.StringVar(&statement, "statement", "", "for an RVPS message: the signed statement of its release, which carries its expiry (default: the statement.sigstore.json beside it)")
	return c
}

// readDocument reads a document verify was given (given: TARGET,
// --statement, --signature) or looks for beside TARGET (its statement, its
// .sig), within the document limit, and only when it is a regular file. A
// document found beside that does not exist is nil, no error. A document
// over the limit fails the verification (exit 1); one given that is not a
// regular file (a named pipe, a device) is a command-line error (exit 2),
// one found beside a failure (exit 1), like a release's.
func (a *app) readDocument(path string, given bool) ([]byte, error) {
	b, err := a.limits.ReadFile(path, limits.Document)
	switch {
	case err == nil:
		return b, nil
	case !given && errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case errors.Is(err, limits.ErrExceeded) || !given:
		return nil, a.verifyFailed(err)
	}
	return nil, usageErr(err)
}

// verifyFailed is failErr for what verify reports: the error's text
// quotes the names, versions and subjects of the documents it read, which
// anyone could have written, so stderr shows it escaped
// (termsafe.Escape); the --json result keeps it exact, and errors.Is and
// errors.As see the error itself.
func (a *app) verifyFailed(err error) error {
	if a.json { // exact in the JSON result, escaped on stderr
		fmt.Fprintln(a.stderr, "error:", termsafe.Escape(err.Error()))
		return &exitError{code: exitFailure, err: err, printed: true}
	}
	return failErr(escapedDocError{err})
}

// escapedDocError shows an error with termsafe.Escape.
type escapedDocError struct{ err error }

func (e escapedDocError) Error() string { return termsafe.Escape(e.err.Error()) }
func (e escapedDocError) Unwrap() error { return e.err }

// stateEnv names the directory verify remembers feeds in, when --state
// does not.
const stateEnv = "COCOBUILD_STATE_DIR"

// verifyStateDir is where verify remembers the feeds it has seen: flag,
// else $COCOBUILD_STATE_DIR, else $XDG_STATE_HOME/cocobuild, else
// ~/.local/state/cocobuild.
func verifyStateDir(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if d := os.Getenv(stateEnv); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "cocobuild"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no state directory to remember feeds in: set --state or $%s (%w)", stateEnv, err)
	}
	return filepath.Join(home, ".local", "state", "cocobuild"), nil
}

// printFeed reports a verified feed.
func (a *app) printFeed(target string, rep *publish.FeedReport, pub *sign.PublicKey, st *feed.State) error {
	if a.json {
		var rels []map[string]any
		for _, e := range rep.Releases {
			rels = append(rels, map[string]any{"name": e.Name, "version": e.Version, "latest": e.Latest, "expired": e.Expired,
				"development_key": e.Verified.Release.DevelopmentKey, "checked": e.Verified.Checked,
				"coverage": coverageJSON(e.Verified.Release)})
		}
		out := map[string]any{"ok": true, "feed": target, "location": rep.Location, "index_version": rep.IndexVersion,
			"index_expires": rep.IndexExpires, "state": filepath.Join(st.Dir, feed.StateFile), "releases": rels}
		if rep.Tag != "" {
			out["tag"] = rep.Tag
		}
		return a.printJSON(out)
	}
	for _, e := range rep.Releases {
		state := "older release"
		switch {
		case e.Latest:
			state = "latest"
		case e.Expired:
			state = "older release, expired"
		}
		fmt.Fprintf(a.stdout, "ok  %s %s (%s): %d checks passed; %s\n", escDoc(e.Name), escDoc(e.Version), state, len(e.Verified.Checked), escDoc(e.Verified.Release.CoverageSummary()))
		if e.Latest && e.Verified.Release.PartialCoverage {
			fmt.Fprintf(a.stderr, "WARNING: %s %s holds reference values that do not vouch for the whole guest (see cocobuild verify of the release)\n", escDoc(e.Name), escDoc(e.Version))
		}
		if e.Latest && e.Verified.Release.DevelopmentKey {
			fmt.Fprintf(a.stderr, "WARNING: %s %s is signed with a DEVELOPMENT key\n", escDoc(e.Name), escDoc(e.Version))
		}
	}
	if rep.Tag != "" {
		fmt.Fprintf(a.stdout, "ok  the tag holds %s, the latest of its name\n", escDoc(rep.Tag))
	}
	fmt.Fprintf(a.stdout, "ok  index version %d signed by %s, expires %s; not older than seen before (%s)\n", rep.IndexVersion, pub.ID(), rep.IndexExpires.Format(time.RFC3339), escDoc(filepath.Join(st.Dir, feed.StateFile)))
	fmt.Fprintf(a.stdout, "feed %s: %d release(s) verified with %s\n", escDoc(target), len(rep.Releases), pub.ID())
	return nil
}

func (a *app) printVerified(target string, r *publish.Release, checked []string) error {
	if a.json {
		out := map[string]any{"ok": true, "target": target, "checked": checked}
		if r != nil {
			out["release"] = map[string]any{"name": r.Name, "version": r.Version, "expires": r.Expires, "development_key": r.DevelopmentKey,
				"coverage": coverageJSON(r)}
		}
		return a.printJSON(out)
	}
	for _, c := range checked {
		fmt.Fprintf(a.stdout, "ok  %s\n", escDoc(c))
	}
	if r != nil {
		fmt.Fprintf(a.stdout, "coverage: %s\n", escDoc(r.CoverageSummary()))
		for _, e := range r.PartialEntries() {
			fmt.Fprintf(a.stdout, "  %s: %s\n", escDoc(e.Name), escDoc(e.Coverage.String()))
		}
		if r.PartialCoverage {
			fmt.Fprintf(a.stderr, "WARNING: %s %s holds reference values that do not vouch for the whole guest: a verifier that accepts them accepts any guest that differs in what they lack\n", escDoc(r.Name), escDoc(r.Version))
		}
		for _, e := range r.Entries {
			for _, as := range assumptions(e) {
				fmt.Fprintf(a.stdout, "assumption: %s: %s\n", escDoc(e.Name), escDoc(as))
			}
		}
	}
	if r != nil && r.DevelopmentKey {
		fmt.Fprintf(a.stderr, "WARNING: %s %s is signed with a DEVELOPMENT key: it proves nothing about who made it\n", escDoc(r.Name), escDoc(r.Version))
	}
	fmt.Fprintf(a.stdout, "verified %s\n", escDoc(target))
	return nil
}

// escDoc escapes a string of a verified document (a name, a version, a
// coverage note: whoever signed it wrote it) for text output; --json
// prints such strings exact.
func escDoc(s string) string { return termsafe.Escape(s) }

// coverageJSON is the --json form of what a release's values cover: whether
// the publisher allowed partial coverage, a summary, and each entry's
// coverage.
func coverageJSON(r *publish.Release) map[string]any {
	entries := []map[string]any{}
	for _, e := range r.Entries {
		j := map[string]any{"tee": e.TEE, "name": e.Name, "recorded": e.Coverage != nil, "partial": e.Coverage.Partial()}
		if e.Coverage != nil {
			j["covers"], j["lacks"] = e.Coverage.Covers, append([]string{}, e.Coverage.Lacks...)
		}
		if as := assumptions(e); len(as) > 0 {
			j["assumptions"] = as
		}
		entries = append(entries, j)
	}
	return map[string]any{"partial": r.PartialCoverage, "summary": r.CoverageSummary(), "entries": entries}
}

// assumptions are what an entry's values were computed assuming rather than
// knowing (params.assumptions, e.g. a TDX firmware modelled as measuring
// into RTMRs with assume_rtmr_measurement), as the signed statement says.
func assumptions(e publish.Entry) []string {
	if l, ok := e.Params["assumptions"].([]string); ok {
		return l
	}
	list, _ := e.Params["assumptions"].([]any)
	var out []string
	for _, a := range list {
		if s, ok := a.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
