package tee

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
)

// ErrUnreadable marks (wrapped) a Check error caused by evidence or an
// event log that does not parse, as opposed to a failed comparison.
var ErrUnreadable = errors.New("unreadable input")

// Checker is the optional part of a TEE that `cocobuild check` uses to
// compare attestation evidence with published reference values and to
// explain a mismatch.
type Checker interface {
	// ParseEvidence says whether b is this TEE's evidence (an SNP report,
	// a TDX quote), judged from its bytes, and parses it. ok with an error
	// is evidence of this TEE that does not parse.
	ParseEvidence(b []byte) (ev Evidence, ok bool, err error)
	// ParseEventLog parses b as the event log of this TEE's evidence, to
	// refuse an unreadable one before anything is compared. The error
	// wraps ErrUnreadable for a log that does not parse, ErrNoEventLog
	// when this TEE's evidence has no event log.
	ParseEventLog(b []byte) error
	// EvidenceKinds says what evidence and event logs it takes (for help
	// texts and errors), e.g. "an Intel TDX quote (version 4) ...".
	EvidenceKinds() string
	// Check compares parsed evidence with the published entries of the
	// TEE named by ev.TEE() and explains a mismatch.
	Check(ctx context.Context, ev Evidence, in CheckInput) (*CheckResult, error)
}

// ErrNoEventLog marks (wrapped) an event log given with evidence that has
// none.
var ErrNoEventLog = errors.New("no event log")

// Evidence is parsed attestation evidence.
type Evidence interface {
	// TEE is the TEE name of the entries it is compared with (snp, tdx).
	TEE() string
	// Describe says what it is, e.g. "SEV-SNP attestation report version 3".
	Describe() string
}

// CheckInput is what Check compares evidence with.
type CheckInput struct {
	// Entries are the published entries of the evidence's TEE.
	Entries []CheckEntry
	// EventLog is the evidence's event log (a TDX CCEL), or nil.
	EventLog []byte
	// PCRValues are the values of the PCRs a TPM quote holds the digest
	// of (tpm2_quote -o), or nil.
	PCRValues []byte
	// Cmdline is the kernel command line the guest reports
	// (/proc/cmdline), when known: event logs and launch digests hold only
	// its digest, so it is tried where the published one does not explain
	// the evidence, to show the two side by side.
	Cmdline *string
	// Signature, when not nil, asks for the evidence's signature to be
	// checked.
	Signature *SignatureCheck
	// Quote is what checks a TPM quote's signature and nonce, or nil.
	Quote *QuoteCheck
}

// QuoteCheck is what a TPM quote (which carries no certificate) is
// checked with: its signature (tpm2_quote -s) and the attestation key
// that made it, and the verifier's nonce.
type QuoteCheck struct {
	// Signature is the TPMT_SIGNATURE, or nil.
	Signature []byte
	// AK is the attestation key: a TPM2B_PUBLIC or a PEM public key, or
	// nil.
	AK []byte
	// AKName names the AK in the output (its file).
	AKName string
	// Nonce is the verifier's nonce the quote must carry, or nil.
	Nonce []byte
}

// SignatureCheck are the certificates and collateral that the evidence's
// signature is checked with, offline unless Online.
type SignatureCheck struct {
	// Files are certificate and collateral files by the name given on
	// the command line (PEM or DER; which each is is found from its bytes).
	Files map[string][]byte
	// Online allows fetching missing certificates and collateral.
	Online bool
	// Now is the time certificates are checked at (zero: the wall clock).
	Now time.Time
}

// CheckEntry is one published entry: its values and parameters, and the
// build artifacts it was derived from, when they are at hand.
type CheckEntry struct {
	Name   string
	Values map[string]string
	Params map[string]any
	// Release is the release that publishes the entry (zero for a build's
	// manifest).
	Release ReleaseRef
	// Artifact returns the bytes of the build artifact with this sha256,
	// verified, or an error that says why it is not at hand (a release
	// checked without its build output).
	Artifact func(sha256 string) ([]byte, error)
	// File returns the bytes of a file of the build output by its
	// slash-separated path (params such as eventlog name one), verified
	// against the digest the release or manifest states.
	File func(path string) ([]byte, error)
}

// ReleaseRef names a release whose entries check compares with.
type ReleaseRef struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	// SupersededBy is the newest version of the same name in the feed
	// the release came from, when it is not this one.
	SupersededBy string `json:"superseded_by,omitempty"`
}

// String names the release: "sample 0.1.0 (superseded by 0.2.0)".
func (r ReleaseRef) String() string {
	s := strings.TrimSpace(r.Name + " " + r.Version)
	if r.SupersededBy != "" {
		s += " (superseded by " + r.SupersededBy + ")"
	}
	return s
}

// CheckResult is the outcome of Check.
type CheckResult struct {
	// Match says the evidence matches Entry in every published field.
	Match bool `json:"match"`
	// Entry is the matching entry, or the closest one, or "".
	Entry string `json:"entry,omitempty"`
	// Release is the release of Entry, when it came from one.
	Release *ReleaseRef `json:"release,omitempty"`
	// Evidence are the evidence's fields by name.
	Evidence []Field `json:"evidence"`
	// Fields are the comparisons with Entry.
	Fields []Field `json:"fields,omitempty"`
	// Reasons explain a mismatch (or notes on a match), one finding each,
	// most telling first.
	Reasons []string `json:"reasons,omitempty"`
	// Explained says a reason names what differs.
	Explained bool `json:"explained"`
	// Differences are what differs, parameter by parameter (the fields
	// that differ are in Fields).
	Differences []Difference `json:"differences,omitempty"`
	// Signature says what the signature check found, when asked.
	Signature []string `json:"signature,omitempty"`
	// SignatureChecked says the evidence's signature was checked and
	// verifies (CheckInput.Signature).
	SignatureChecked bool `json:"signature_checked"`
	// Unvouched are findings on fields no entry publishes that a verifier
	// may care about (a VMPL other than 0, host data, an ID block): the
	// release says nothing of them, so check cannot vouch for them, match
	// or not.
	Unvouched []string `json:"unvouched,omitempty"`
}

// SetEntry makes e the matching or closest entry.
func (r *CheckResult) SetEntry(e CheckEntry) {
	r.Entry, r.Release = e.Name, nil
	if e.Release != (ReleaseRef{}) {
		rel := e.Release
		r.Release = &rel
	}
}

// Difference is one launch parameter (or field) whose value differs from
// the published ones.
type Difference struct {
	Parameter string   `json:"parameter"`
	Got       string   `json:"got"`
	Published []string `json:"published,omitempty"`
}

// AddDifference records a parameter that differs.
func (r *CheckResult) AddDifference(parameter, got string, published ...string) {
	r.Differences = append(r.Differences, Difference{Parameter: parameter, Got: got, Published: published})
}

// AllDifferences are the fields that differ, then the parameters.
func (r *CheckResult) AllDifferences() []Difference {
	var out []Difference
	for _, f := range r.Fields {
		if f.Status == FieldDiffers {
			out = append(out, Difference{Parameter: f.Name, Got: f.Got, Published: f.Want})
		}
	}
	return append(out, r.Differences...)
}

// Field statuses.
const (
	FieldMatch        = "match"
	FieldDiffers      = "differs"
	FieldNotPublished = "not published"
)

// Field is one field of the evidence, and its comparison.
type Field struct {
	// Name is the reference-value name (RVPS) of the field.
	Name string `json:"name"`
	Got  string `json:"got"`
	// Want are the published values (empty when not published).
	Want   []string `json:"want,omitempty"`
	Status string   `json:"status,omitempty"`
	// Note says more of the comparison, e.g. of a field not published
	// that check cannot vouch for.
	Note string `json:"note,omitempty"`
}

// initrdLoadOption is what OVMF appends to the command line of a kernel it
// boots directly when QEMU serves an initrd: the EFI stub's LoadOptions, and
// so the guest's /proc/cmdline, end with it; QEMU's -append does not.
const initrdLoadOption = " initrd=initrd"

// GuestCmdlines are the command lines a guest may have been booted with,
// given what it reports as /proc/cmdline (check's --cmdline): the text
// trimmed of the white space around it (a file keeps its newline), then,
// when it ends so, without the " initrd=initrd" OVMF appends. Each TEE tries
// them in turn.
func GuestCmdlines(s string) []string {
	c := strings.TrimSpace(s)
	out := []string{c}
	if t := strings.TrimSuffix(c, initrdLoadOption); t != c {
		out = append(out, t)
	}
	return out
}

// WordDiff lists the words only one of two command lines has: +word for
// those only in b, -word for those only in a.
func WordDiff(a, b string) string {
	aw, bw := strings.Fields(a), strings.Fields(b)
	var d []string
	for _, w := range bw {
		if !slices.Contains(aw, w) {
			d = append(d, "+"+w)
		}
	}
	for _, w := range aw {
		if !slices.Contains(bw, w) {
			d = append(d, "-"+w)
		}
	}
	if len(d) == 0 {
		return "the same words in another order or spacing"
	}
	return strings.Join(d, " ")
}
