package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/internal/termsafe"
	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/publish/feed"
	"github.com/cocobuild/cocobuild/publish/sign"
	"github.com/cocobuild/cocobuild/tee"
)

func newCheckCmd(a *app) *cobra.Command {
	var evidence, eventLog, pcrs, key, artifacts, stateDir, name, at, cmdline, quoteSig, ak, nonce string
	var certs []string
	var allowDevKey, verifyEvidence, online bool
	c := &cobra.Command{
		Use:   "check --evidence FILE [--eventlog FILE] --key PUB TARGET",
		Short: "Check attestation evidence against published reference values, and explain a mismatch",
		Long: `Check compares a TEE's attestation evidence with the reference values of TARGET and,
when it matches none, says why: which launch parameter differs, or which event of the
boot.

--evidence is an AMD SEV-SNP attestation report (the raw 1184 bytes snpguest report
writes, or a report followed by its certificate table) or an Intel TDX quote (version 4;
the go-tdx-guest release used does not parse version 5, and check says so); which one is
found from its bytes. --eventlog is a TDX
CCEL event log (/sys/firmware/acpi/tables/data/CCEL, not the 56-byte ACPI table
/sys/firmware/acpi/tables/CCEL), parsed first and replayed against all four RTMRs of the
quote. Both are read within the evidence limit (16MiB, --limit evidence=SIZE).
A TPM 2.0 quote is the TPMS_ATTEST tpm2_quote -m writes, with its PCR values (tpm2_quote -o)
given with --pcrs: they must hash to the quote's PCR digest; their SHA-256 bank is compared
with the published tpm entries' PCRs (tpm_pcr4, 7, 9, 11). --signature (tpm2_quote -s)
and --ak (the attestation key: tpm2_readpublic -f pem output, or the TPM2B_PUBLIC
tpm2_createak -u writes) check the quote's signature first; --nonce HEX the nonce it was
made with (tpm2_quote -q). Without them the signature is not vouched for.
--cmdline is the guest's /proc/cmdline, when known: evidence and logs hold only its digest;
it is tried as given and without the " initrd=initrd" OVMF appends.

TARGET is
  - a release directory (OUT/publish/NAME) or a feed (dir:PATH, http(s)://, oci://),
    verified first with --key exactly as "cocobuild verify" does; every release of a feed
    that has not expired is compared, and the output names the release of the entry;
  - a build's manifest.json, whose artifacts lie beside it (no key needed: it is your
    own build).
Explaining a mismatch needs the bytes the values were computed from (the firmware, the
expected event logs): a build's manifest.json has them beside it; for a release give the
build output with --artifacts DIR (found by itself when the release lies in OUT/publish/NAME
and OUT holds its manifest.json). Without them check says what differs but cannot search.

With --verify-evidence the evidence's own signature is checked too, offline, with the
certificates given with --cert (SNP: the VCEK or VLEK, DER or PEM; the ASK/ARK chain is
built in or given; TDX: the PCK chain is in the quote, collateral files are given with
--cert); --online allows fetching what is missing from AMD's or Intel's services.

Exit codes: 0 the evidence matches a published entry; 1 it does not (the reasons are
printed), or a signature or the reference values do not verify; 2 unreadable input
(evidence or an event log that does not parse, an event log with SNP evidence, a file over
the evidence limit). --json adds dev_key, release, signature_checked and differences
({parameter, got, published}).`,
		Example: `  cocobuild check --evidence report.bin out/sample/manifest.json
  cocobuild check --evidence report.bin --key publisher.pub out/sample/publish/sample
  cocobuild check --evidence quote.dat --eventlog CCEL --cmdline "$(cat cmdline.txt)" --key publisher.pub --artifacts out/sample dir:out/feed
  cocobuild check --evidence quote.msg --pcrs pcrs.bin out/peerpod/manifest.json
  cocobuild check --evidence quote.msg --pcrs pcrs.bin --signature quote.sig --ak ak.pem --nonce "$NONCE" --key publisher.pub out/peerpod/publish/peerpod
  cocobuild check --evidence report.bin --verify-evidence --cert vcek.der --key publisher.pub --json out/sample/publish/sample`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if evidence == "" {
				return usageErr(errors.New("--evidence is required: the attestation report or quote to check"))
			}
			raw, err := a.limits.ReadFile(evidence, limits.Evidence)
			if err != nil {
				return usageErr(fmt.Errorf("--evidence: %w", err))
			}
			var ev tee.Evidence
			var checker tee.Checker
			for _, t := range a.tees.All() {
				ch, ok := t.(tee.Checker)
				if !ok {
					continue
				}
				e, ok, err := ch.ParseEvidence(raw)
				if err != nil {
					return usageErr(fmt.Errorf("--evidence %s: %w", evidence, err))
				}
				if ok {
					ev, checker = e, ch
					break
				}
			}
			if ev == nil {
				return usageErr(fmt.Errorf("--evidence %s (%d bytes) is no attestation evidence cocobuild knows: want %s", evidence, len(raw), a.evidenceKinds()))
			}
			in := tee.CheckInput{}
			if cmd.Flags().Changed("cmdline") {
				in.Cmdline = &cmdline
			}
			if eventLog != "" {
				if in.EventLog, err = a.limits.ReadFile(eventLog, limits.Evidence); err != nil {
					return usageErr(fmt.Errorf("--eventlog: %w", err))
				}
				// Parsed before anything is compared: an unreadable log
				// is a usage error whatever the evidence says.
				if err := checker.ParseEventLog(in.EventLog); err != nil {
					return usageErr(fmt.Errorf("--eventlog %s with %s: %w", eventLog, ev.Describe(), err))
				}
			}
			if pcrs != "" {
				if in.PCRValues, err = a.limits.ReadFile(pcrs, limits.Evidence); err != nil {
					return usageErr(fmt.Errorf("--pcrs: %w", err))
				}
			}
			if quoteSig != "" || ak != "" || nonce != "" {
				if ev.TEE() != "tpm" {
					return usageErr(fmt.Errorf("--signature, --ak and --nonce are for a TPM quote, not %s", ev.Describe()))
				}
				qc := &tee.QuoteCheck{AKName: ak}
				if quoteSig != "" {
					if qc.Signature, err = a.limits.ReadFile(quoteSig, limits.Evidence); err != nil {
						return usageErr(fmt.Errorf("--signature: %w", err))
					}
				}
				if ak != "" {
					if qc.AK, err = a.limits.ReadFile(ak, limits.Document); err != nil {
						return usageErr(fmt.Errorf("--ak: %w", err))
					}
				}
				if nonce != "" {
					if qc.Nonce, err = hex.DecodeString(strings.TrimSpace(nonce)); err != nil {
						return usageErr(fmt.Errorf("--nonce %q: want the nonce in hex, as tpm2_quote -q takes it: %w", nonce, err))
					}
				}
				in.Quote = qc
			}
			if verifyEvidence {
				in.Signature = &tee.SignatureCheck{Files: map[string][]byte{}, Online: online}
				if at != "" {
					if in.Signature.Now, err = time.Parse(time.RFC3339, at); err != nil {
						return usageErr(fmt.Errorf("--at %q: want an RFC 3339 time", at))
					}
				}
				for _, f := range certs {
					b, err := a.limits.ReadFile(f, limits.Document)
					if err != nil {
						return usageErr(fmt.Errorf("--cert: %w", err))
					}
					in.Signature.Files[f] = b
				}
			} else if len(certs) > 0 || online {
				return usageErr(errors.New("--cert and --online are for --verify-evidence"))
			}
			src, err := a.checkTarget(cmd, args[0], key, artifacts, stateDir, name, allowDevKey)
			if err != nil {
				return err
			}
			for _, e := range src.entries {
				if e.tee == ev.TEE() {
					in.Entries = append(in.Entries, e.CheckEntry)
				}
			}
			if len(in.Entries) == 0 {
				return failErr(fmt.Errorf("%s holds no reference values for %s evidence (%s): it was not measured for this TEE", args[0], ev.TEE(), ev.Describe()))
			}
			res, err := checker.Check(ctx, ev, in)
			if errors.Is(err, tee.ErrUnreadable) {
				return usageErr(err)
			}
			if err != nil {
				return failErr(err)
			}
			if err := a.printCheck(args[0], src, ev, res); err != nil {
				return err
			}
			if !res.Match {
				return &exitError{code: exitFailure, err: fmt.Errorf("the evidence matches no entry of %s", args[0])}
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&evidence, "evidence", "", "the attestation evidence: an SNP report or a TDX quote (required)")
	f.StringVar(&eventLog, "eventlog", "", "the TDX CCEL event log of the evidence")
	f.StringVar(&pcrs, "pcrs", "", "the PCR values of a TPM quote (tpm2_quote -o FILE, serialized or -F values)")
	f.StringVar(&quoteSig, "signature", "", "a TPM quote's signature (tpm2_quote -s FILE, a TPMT_SIGNATURE); with --ak")
	f.StringVar(&ak, "ak", "", "the attestation key of a TPM quote: PEM (tpm2_readpublic -f pem) or TPM2B_PUBLIC (tpm2_createak -u)")
	f.StringVar(&nonce, "nonce", "", "the nonce a TPM quote must carry (hex, as given to tpm2_quote -q)")
	f.StringVar(&cmdline, "cmdline", "", "the kernel command line the guest reports (/proc/cmdline): evidence holds only its digest, so check tries it to show both command lines")
	f.StringVar(&key, "key", "", "the publisher's public key (PEM file or env://VAR), obtained out of band; required for a release or feed")
	f.BoolVar(&allowDevKey, "allow-dev-key", false, "accept reference values signed with the public DEVELOPMENT key")
	f.StringVar(&artifacts, "artifacts", "", "the build output of the release (for the firmware and expected event logs that explain a mismatch)")
	f.StringVar(&stateDir, "state", "", "for feeds: where verify remembers the versions seen (as cocobuild verify --state)")
	f.StringVar(&name, "name", "", "the release series to accept")
	f.BoolVar(&verifyEvidence, "verify-evidence", false, "check the evidence's signature too (offline, with --cert files)")
	f.StringArrayVar(&certs, "cert", nil, "a certificate or collateral file for --verify-evidence (repeatable)")
	f.BoolVar(&online, "online", false, "with --verify-evidence: fetch missing certificates and collateral from the vendor's service")
	f.StringVar(&at, "at", "", "with --verify-evidence: check certificates at this RFC 3339 time instead of now")
	a.addLimitFlag(c, false)
	return c
}

// evidenceKinds says what --evidence takes: what each TEE's checker
// says it takes.
func (a *app) evidenceKinds() string {
	var k []string
	for _, t := range a.tees.All() {
		if ch, ok := t.(tee.Checker); ok {
			k = append(k, ch.EvidenceKinds())
		}
	}
	return strings.Join(k, "; or ")
}

// checkEntry is a published entry with the TEE it is for.
type checkEntry struct {
	tee.CheckEntry
	tee string
}

// checkSource is what check compares with: the entries and where they
// came from.
type checkSource struct {
	entries []checkEntry
	// what says what was loaded and verified, one line each.
	what []string
	// releases are the releases compared with, newest of each name first
	// (none for a build's manifest).
	releases []tee.ReleaseRef
	// devKey says the reference values verified with the development key.
	devKey bool
}

// checkTarget loads and verifies TARGET: a build's manifest.json, or a
// release directory or feed, verified as verify does (publish.VerifyTarget).
// Every release of a feed that has not expired is compared with, not only
// the newest of each name: a guest of an older release is told so.
func (a *app) checkTarget(cmd *cobra.Command, target, key, artifacts, stateDir, name string, allowDevKey bool) (*checkSource, error) {
	ctx := cmd.Context()
	kind, err := publish.ClassifyTarget(target)
	if err != nil {
		return nil, usageErr(err)
	}
	if kind == publish.TargetFile {
		if filepath.Base(target) != "manifest.json" {
			return nil, usageErr(fmt.Errorf("%s: want a release directory, a feed or a build's manifest.json", target))
		}
		if key != "" {
			fmt.Fprintln(a.stderr, "note: --key is not used for a build's manifest.json, which is not signed")
		}
		return a.manifestSource(target)
	}
	if key == "" {
		return nil, usageErr(errors.New("--key is required for a release or feed: your copy of the publisher's public key, obtained out of band (a build's manifest.json needs none)"))
	}
	pub, err := sign.LoadPublicKey(key, "")
	if err != nil {
		return nil, usageErr(err)
	}
	o := publish.VerifyOptions{AllowDevKey: allowDevKey, Name: name, TEEs: a.tees, Limits: &a.limits}
	var fc publish.FeedCheck
	what := "the reference values"
	if kind == publish.TargetFeed {
		dir, err := verifyStateDir(stateDir)
		if err != nil {
			return nil, usageErr(err)
		}
		fc, what = publish.FeedCheck{State: &feed.State{Dir: dir}, Name: name}, "the feed"
	}
	vt, err := publish.VerifyTarget(ctx, target, kind, pub, o, fc)
	if errors.Is(err, publish.ErrBadTarget) {
		return nil, usageErr(err)
	}
	if errors.Is(err, publish.ErrNotRegular) || errors.Is(err, limits.ErrExceeded) {
		return nil, a.verifyFailed(err)
	}
	if err != nil {
		return nil, a.verifyFailed(fmt.Errorf("%s does not verify: %w", what, err))
	}
	src := &checkSource{devKey: sign.IsDevKey(pub)}
	if vt.Release != nil {
		src.what = append(src.what, vt.Release.Checked...)
		if artifacts == "" {
			// OUT/publish/NAME lies in the build output OUT.
			out := filepath.Dir(filepath.Dir(filepath.Clean(target)))
			if _, err := os.Stat(filepath.Join(out, "manifest.json")); err == nil {
				artifacts = out
			}
		}
	}
	rels := vt.Releases()
	latest := map[string]string{}
	for _, e := range rels {
		if e.Latest {
			latest[e.Name] = e.Version
		}
	}
	// The newest of each name first: the closest entry is looked for in
	// that order.
	slices.SortStableFunc(rels, func(x, y publish.FeedEntry) int {
		if x.Latest != y.Latest {
			if x.Latest {
				return -1
			}
			return 1
		}
		return 0
	})
	if src.devKey {
		fmt.Fprintln(a.stderr, "WARNING: the reference values are signed with the DEVELOPMENT key, which is public: a match proves nothing about who made them")
	}
	art := a.artifactReader(artifacts, "the release was given without its build output: give it with --artifacts DIR")
	for _, fe := range rels {
		r := fe.Verified.Release
		ref := tee.ReleaseRef{Name: r.Name, Version: r.Version}
		if !fe.Latest {
			ref.SupersededBy = latest[r.Name]
		}
		src.releases = append(src.releases, ref)
		if vt.Feed != nil {
			state := "the latest of its name"
			if !fe.Latest {
				state = "superseded by " + ref.SupersededBy
			}
			src.what = append(src.what, fmt.Sprintf("feed %s: release %s %s, %s, verified", target, r.Name, r.Version, state))
		}
		subjects := map[string]publish.Subject{}
		byPath := map[string]publish.Subject{}
		for _, s := range r.Subjects {
			subjects[s.SHA256], byPath[s.Name] = s, s
		}
		for _, e := range r.Entries {
			src.entries = append(src.entries, checkEntry{tee: e.TEE, CheckEntry: tee.CheckEntry{
				Name: e.Name, Values: e.Values, Params: e.Params, Release: ref,
				Artifact: func(sha string) ([]byte, error) {
					s, ok := subjects[sha]
					if !ok {
						return nil, fmt.Errorf("no subject of release %s %s has sha256 %s", r.Name, r.Version, sha)
					}
					return art(s.Name, sha)
				},
				File: func(path string) ([]byte, error) {
					s, ok := byPath[path]
					if !ok {
						return nil, fmt.Errorf("release %s %s has no subject %s", r.Name, r.Version, path)
					}
					return art(s.Name, s.SHA256)
				},
			}})
		}
	}
	if artifacts != "" {
		src.what = append(src.what, "build output "+artifacts+" (each file read is checked against the digest the release states)")
	}
	return src, nil
}

// artifactReader reads a file of the build output dir by its slash path and
// checks its sha256; without dir it says why it cannot.
func (a *app) artifactReader(dir, without string) func(path, sha string) ([]byte, error) {
	return func(path, sha string) ([]byte, error) {
		if dir == "" {
			return nil, errors.New(without)
		}
		if !filepath.IsLocal(filepath.FromSlash(path)) {
			return nil, fmt.Errorf("%s leads out of the build output", path)
		}
		b, err := a.limits.ReadFile(filepath.Join(dir, filepath.FromSlash(path)), limits.Firmware)
		if err != nil {
			return nil, err
		}
		d := sha256.Sum256(b)
		if got := hex.EncodeToString(d[:]); got != sha {
			return nil, fmt.Errorf("%s has sha256 %s, not %s that the reference values state: the build output is not that of this release", path, got, sha)
		}
		return b, nil
	}
}

// manifestSource reads a build's manifest.json and its artifacts.
func (a *app) manifestSource(path string) (*checkSource, error) {
	b, err := a.limits.ReadFile(path, limits.Document)
	if err != nil {
		return nil, usageErr(err)
	}
	m, err := manifest.Parse(b)
	if err != nil {
		return nil, usageErr(fmt.Errorf("%s: %w", path, err))
	}
	dir := filepath.Dir(path)
	art := a.artifactReader(dir, "")
	bySHA, byPath := map[string]manifest.Artifact{}, map[string]manifest.Artifact{}
	for _, x := range m.Artifacts {
		bySHA[x.SHA256], byPath[x.Path] = x, x
	}
	src := &checkSource{what: []string{fmt.Sprintf("build manifest %s: recipe %s (sha256 %s), %d measurements, artifacts beside it", path, m.Recipe.Name, m.Recipe.SHA256, len(m.Measurements))}}
	for _, me := range m.Measurements {
		values := map[string]string{}
		for k, v := range me.Values {
			if s, ok := v.(string); ok {
				values[k] = s
			}
		}
		src.entries = append(src.entries, checkEntry{tee: me.TEE, CheckEntry: tee.CheckEntry{
			Name: me.Name, Values: values, Params: me.Params,
			Artifact: func(sha string) ([]byte, error) {
				x, ok := bySHA[sha]
				if !ok {
					return nil, fmt.Errorf("no artifact of %s has sha256 %s", path, sha)
				}
				return art(x.Path, sha)
			},
			File: func(p string) ([]byte, error) {
				x, ok := byPath[p]
				if !ok {
					return nil, fmt.Errorf("%s has no artifact %s", path, p)
				}
				return art(x.Path, x.SHA256)
			},
		}})
	}
	return src, nil
}

// printCheck prints the result of a check.
func (a *app) printCheck(target string, src *checkSource, ev tee.Evidence, res *tee.CheckResult) error {
	if a.json {
		diffs := res.AllDifferences()
		if diffs == nil {
			diffs = []tee.Difference{}
		}
		out := map[string]any{"ok": res.Match, "target": target, "evidence": ev.Describe(), "tee": ev.TEE(),
			"reference_values": src.what, "dev_key": src.devKey, "signature_checked": res.SignatureChecked,
			"differences": diffs, "result": res}
		if res.Release != nil {
			out["release"] = res.Release
		}
		if len(src.releases) > 0 {
			out["releases"] = src.releases
		}
		return a.printJSON(out)
	}
	w := a.stdout
	for _, s := range src.what {
		fmt.Fprintf(w, "ok  %s\n", termsafe.Escape(s))
	}
	fmt.Fprintf(w, "evidence: %s\n", ev.Describe())
	for _, s := range res.Signature {
		fmt.Fprintf(w, "signature: %s\n", termsafe.Escape(s))
	}
	for _, f := range res.Fields {
		switch f.Status {
		case tee.FieldMatch:
			fmt.Fprintf(w, "  %-24s %s  match\n", f.Name, f.Got)
		case tee.FieldDiffers:
			fmt.Fprintf(w, "  %-24s %s  DIFFERS: published %s\n", f.Name, f.Got, termsafe.Escape(strings.Join(f.Want, ", ")))
		default:
			note := f.Note
			if note == "" {
				note = "not published: check cannot vouch for it"
			}
			if i := strings.Index(note, ". "); i > 0 {
				note = note[:i] // the first sentence; the rest follows below
			}
			fmt.Fprintf(w, "  %-24s %s  (%s)\n", f.Name, f.Got, termsafe.Escape(note))
		}
	}
	for _, u := range res.Unvouched {
		fmt.Fprintf(w, "not vouched for: %s\n", termsafe.Escape(u))
	}
	of := ""
	if res.Release != nil {
		of = " of release " + res.Release.String()
	}
	if res.Match {
		fmt.Fprintf(w, "MATCH: the evidence matches %s%s\n", termsafe.Escape(res.Entry), termsafe.Escape(of))
		for _, r := range res.Reasons {
			fmt.Fprintf(w, "note: %s\n", termsafe.Escape(r))
		}
		if !res.SignatureChecked {
			fmt.Fprintln(w, "note: evidence signature not checked: anyone can write a report or quote with these values; give --verify-evidence (and --cert) to check it, for a TPM quote --signature and --ak")
		}
		return nil
	}
	if res.Entry != "" {
		fmt.Fprintf(w, "MISMATCH against %s%s:\n", termsafe.Escape(res.Entry), termsafe.Escape(of))
	} else {
		fmt.Fprintln(w, "MISMATCH: the evidence matches no published entry")
	}
	if len(src.releases) > 1 {
		var names []string
		for _, r := range src.releases {
			names = append(names, r.String())
		}
		fmt.Fprintf(w, "  (compared with every entry of the releases %s)\n", termsafe.Escape(strings.Join(names, ", ")))
	}
	for _, r := range res.Reasons {
		fmt.Fprintf(w, "  - %s\n", termsafe.Escape(r))
	}
	if !res.Explained {
		fmt.Fprintln(w, "  (not explained by the parameters cocobuild can vary)")
	}
	return nil
}
