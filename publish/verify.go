package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/cocobuild/cocobuild/internal/fsinfo"
	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/publish/sign"
	"github.com/cocobuild/cocobuild/tee"
)

// VerifyOptions are the checks of Verify beyond the signatures.
type VerifyOptions struct {
	// Now is the time expiry is checked against (the zero time: the wall clock).
	Now time.Time
	// MinVersion rejects releases older than it (rollback), unless empty.
	MinVersion string
	// Artifacts, when set, is a directory holding the build output: every
	// subject found there must have the stated digest.
	Artifacts string
	// SkipExpiry checks everything but expiry, for old releases of a feed
	// kept for the record.
	SkipExpiry bool
	// Statement is, for VerifyOne of an RVPS message, the signed statement
	// of its release: the message carries no expiry, so its expiry is the
	// statement's, which must state the same reference values. Without it,
	// an RVPS message verifies only with SkipExpiry.
	Statement []byte
	// AllowDevKey accepts documents signed with the development key. The
	// key that verified a signature decides whether it is the development
	// key, never the development_key field of the signed statement: anyone
	// can sign with the development key and say anything in the statement.
	AllowDevKey bool
	// Name, when set, is the release series expected (verify --name): a
	// release of another name is ErrOtherName.
	Name string
	// TEEs are the TEEs whose documents (RVPS names, CoRIMs) a release
	// may hold.
	TEEs tee.Set
	// Limits bound what is read of a feed (limits.Document for its index
	// and documents, --limit document=SIZE); nil holds the defaults.
	// Artifacts are hashed as streams, whatever their size.
	Limits *limits.Values
}

// Verified is the outcome of a successful verification.
type Verified struct {
	Release *Release
	Checked []string // what was verified, one line each
}

// Verification errors, wrapped with detail.
var (
	ErrExpired  = errors.New("reference values expired")
	ErrRollback = errors.New("release version rollback")
	ErrMismatch = errors.New("documents disagree")
	// ErrDevKey is returned (wrapped) when a signature verifies with the
	// development key and VerifyOptions.AllowDevKey is not set.
	ErrDevKey = errors.New("signed with the DEVELOPMENT key, which is public: anyone can sign anything with it")
)

// checkKey decides from the key that verified a signature, never from the
// document, whether it is the development key: a development-key signature
// is refused unless o.AllowDevKey (the statement's development_key field is
// ignored for this). A statement r (nil for documents without one) that
// claims the development key while another key verified it is refused as
// inconsistent, since cocobuild sets the field from the signing key; on
// success r.DevelopmentKey is set from the key, whatever the statement said.
func checkKey(r *Release, pub *sign.PublicKey, o VerifyOptions) error {
	dev := sign.IsDevKey(pub)
	if dev && !o.AllowDevKey {
		return fmt.Errorf("%w (key %s): it proves nothing about who made these reference values. Verify with the publisher's key obtained out of band (not the cosign.pub shipped with the release); to accept development-key documents anyway, e.g. the sample's, pass --allow-dev-key", ErrDevKey, pub.ID())
	}
	if r != nil {
		if r.DevelopmentKey && !dev {
			return fmt.Errorf("%w: the statement of %s %s says it is signed with the development key, but key %s verified it, which is not the development key %s", ErrMismatch, r.Name, r.Version, pub.ID(), sign.DevSigner().Public().ID())
		}
		r.DevelopmentKey = dev
	}
	return nil
}

// Verify checks the documents of one release against the public key: the
// signed statement (required), and each RVPS message and CoRIM present:
// signatures, payload type, subjects, expiry, version and that every format
// states the same reference values.
//
// Every document is checked: a name other than those of a release, a name
// given twice, a format or media type that is not its name's, and a
// detached signature without its message are errors, so that no document
// of a release goes unchecked.
func Verify(ctx context.Context, docs []Document, pub *sign.PublicKey, o VerifyOptions) (*Verified, error) {
	if err := checkTEEs(o.TEEs); err != nil {
		return nil, err
	}
	byName, err := documentsByName(docs, o.TEEs)
	if err != nil {
		return nil, err
	}
	st, ok := byName[StatementFile]
	if !ok {
		return nil, fmt.Errorf("no %s: the signed statement is needed to verify a release", StatementFile)
	}
	r, err := VerifyStatement(ctx, st.Data, pub)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", StatementFile, err)
	}
	if err := checkKey(r, pub, o); err != nil {
		return nil, fmt.Errorf("%s: %w", StatementFile, err)
	}
	v := &Verified{Release: r}
	v.Checked = append(v.Checked, fmt.Sprintf("%s: in-toto statement signed by %s, %d subjects, %d reference values", StatementFile, pub.ID(), len(r.Subjects), len(r.Entries)))
	if err := CheckRelease(r, o); err != nil {
		return nil, err
	}
	v.Checked = append(v.Checked, fmt.Sprintf("release %s %s expires %s", r.Name, r.Version, r.Expires.Format(time.RFC3339)))
	if o.Artifacts != "" {
		n, err := checkSubjects(r, o.Artifacts)
		if err != nil {
			return nil, err
		}
		v.Checked = append(v.Checked, fmt.Sprintf("%d subjects match the files in %s", n, o.Artifacts))
	}
	if d, ok := byName[PublicKeyFile]; ok {
		k, err := sign.ParsePublicKey(d.Data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", PublicKeyFile, err)
		}
		if k.ID() != pub.ID() {
			return nil, fmt.Errorf("%w: %s beside the release is key %s, not %s that it was verified with", ErrMismatch, PublicKeyFile, k.ID(), pub.ID())
		}
		v.Checked = append(v.Checked, fmt.Sprintf("%s: the key verified with (it was not trusted for that: the key is the verifier's own)", PublicKeyFile))
	}
	for _, n := range []string{RVPSSigFile, RVPSBundleFile} {
		if _, ok := byName[n]; ok {
			if _, ok := byName[RVPSFile]; !ok {
				return nil, fmt.Errorf("%s has no %s: a signature of nothing the release holds", n, RVPSFile)
			}
		}
	}
	if msg, ok := byName[RVPSFile]; ok {
		sig, ok := byName[RVPSSigFile]
		if !ok {
			return nil, fmt.Errorf("%s has no %s beside it", RVPSFile, RVPSSigFile)
		}
		if err := VerifyBlob(msg.Data, sig.Data, pub); err != nil {
			return nil, fmt.Errorf("%s: %w", RVPSFile, err)
		}
		if b, ok := byName[RVPSBundleFile]; ok {
			if err := VerifyMessageBundle(msg.Data, b.Data, pub); err != nil {
				return nil, fmt.Errorf("%s: %w", RVPSBundleFile, err)
			}
			v.Checked = append(v.Checked, fmt.Sprintf("%s: sigstore bundle of %s signed by %s", RVPSBundleFile, RVPSFile, pub.ID()))
		}
		got, err := DecodeRVPS(msg.Data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", RVPSFile, err)
		}
		want, err := RVPSPayload(r, o.TEEs)
		if err != nil {
			return nil, err
		}
		if !jsonEqual(got, want) {
			return nil, fmt.Errorf("%s: %w: its payload is not the statement's reference values", RVPSFile, ErrMismatch)
		}
		v.Checked = append(v.Checked, fmt.Sprintf("%s: signature and %d reference-value names match the statement", RVPSFile, len(got)))
	}
	for _, name := range o.TEEs.CoRIMNames() {
		d, ok := byName[CoRIMFile(name)]
		if !ok {
			continue
		}
		if err := checkCoRIM(r, o.TEEs, name, d.Data, pub); err != nil {
			return nil, fmt.Errorf("%s: %w", d.Name, err)
		}
		v.Checked = append(v.Checked, fmt.Sprintf("%s: COSE signature, %s reference values and coverage notes match the statement", d.Name, name))
	}
	return v, nil
}

// knownDocuments are the documents a release may hold, by name: their
// format and media type.
func knownDocuments(tees tee.Set) map[string][2]string {
	known := map[string][2]string{
		RVPSFile: {FormatRVPS, MediaTypeRVPS}, RVPSSigFile: {FormatRVPS, MediaTypeSignature}, RVPSBundleFile: {FormatRVPS, MediaTypeBundle},
		StatementFile: {FormatInToto, MediaTypeBundle}, PublicKeyFile: {FormatPublicKey, MediaTypePublicKey},
	}
	for _, name := range tees.CoRIMNames() {
		known[CoRIMFile(name)] = [2]string{FormatCoRIM, MediaTypeCoRIM}
	}
	return known
}

// documentsByName indexes the documents of a release, refusing unknown and
// duplicate names and a format or media type other than the name's (an
// empty one is not stated, and passes).
func documentsByName(docs []Document, tees tee.Set) (map[string]Document, error) {
	known := knownDocuments(tees)
	byName := map[string]Document{}
	for _, d := range docs {
		k, ok := known[d.Name]
		if !ok {
			names := make([]string, 0, len(known))
			for n := range known {
				names = append(names, n)
			}
			sort.Strings(names)
			return nil, fmt.Errorf("the release lists a document %q that cocobuild does not publish, so it cannot be verified (a release holds %s)", d.Name, strings.Join(names, ", "))
		}
		if _, dup := byName[d.Name]; dup {
			return nil, fmt.Errorf("the release lists %s twice: each document may appear once, or one of them would go unchecked", d.Name)
		}
		if d.Format != "" && d.Format != k[0] || d.MediaType != "" && d.MediaType != k[1] {
			return nil, fmt.Errorf("the release lists %s as format %q, media type %q: want %q, %q", d.Name, d.Format, d.MediaType, k[0], k[1])
		}
		byName[d.Name] = d
	}
	return byName, nil
}

// rvpsVersion returns the release version an RVPS payload states in its
// rvps:///NAMESPACE/TEE/NAME:VERSION names, which must all agree.
func rvpsVersion(p map[string]any) (string, error) {
	v := ""
	for k := range p {
		if !strings.HasPrefix(k, "rvps:///") {
			continue
		}
		i := strings.LastIndex(k, ":")
		kv, err := CanonicalVersion(k[i+1:])
		if err != nil {
			return "", fmt.Errorf("RVPS name %q does not end in a release version", k)
		}
		if v != "" && kv != v {
			return "", fmt.Errorf("%w: the RVPS message names versions %s and %s", ErrMismatch, v, kv)
		}
		v = kv
	}
	if v == "" {
		return "", errors.New("the RVPS message has no rvps:/// names that state its version, so --min-version cannot be checked")
	}
	return v, nil
}

// CheckRelease checks expiry and rollback.
func CheckRelease(r *Release, o VerifyOptions) error {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	if o.Name != "" && r.Name != o.Name {
		return fmt.Errorf("%w: release %s %s is not of the series %s", ErrOtherName, r.Name, r.Version, o.Name)
	}
	if !o.SkipExpiry && !now.Before(r.Expires) {
		return fmt.Errorf("%w: release %s %s expired on %s", ErrExpired, r.Name, r.Version, r.Expires.Format(time.RFC3339))
	}
	if o.MinVersion != "" {
		if _, err := CanonicalVersion(o.MinVersion); err != nil {
			return err
		}
		if CompareVersions(r.Version, o.MinVersion) < 0 {
			return fmt.Errorf("%w: release %s %s is older than %s", ErrRollback, r.Name, r.Version, o.MinVersion)
		}
	}
	return nil
}

// VerifyBlob checks a cosign-style detached signature (base64 text) of blob.
func VerifyBlob(blob, sigText []byte, pub *sign.PublicKey) error {
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(sigText)))
	if err != nil {
		return fmt.Errorf("detached signature is not base64: %w", err)
	}
	return pub.Verify(blob, sig)
}

func checkCoRIM(r *Release, tees tee.Set, name string, data []byte, pub *sign.PublicKey) error {
	cv, err := VerifyCoRIM(data, pub, tees)
	if err != nil {
		return err
	}
	if !cv.Validity.NotAfter.Equal(r.Expires) {
		return fmt.Errorf("%w: CoRIM valid until %s, the statement says %s", ErrMismatch, cv.Validity.NotAfter, r.Expires)
	}
	if want := r.Name + "/" + name + "/" + r.Version; cv.ID != want {
		return fmt.Errorf("%w: CoRIM id %q, want %q", ErrMismatch, cv.ID, want)
	}
	t, _ := tees.Lookup(name)
	if want := CoRIMProfile(tees, name); cv.Profile != want {
		return fmt.Errorf("CoRIM profile %q: want %q", cv.Profile, want)
	}
	var want []map[string]string
	var wantCov []*Coverage
	for _, e := range r.Entries {
		if e.TEE != name {
			continue
		}
		if e.Coverage.Partial() {
			wantCov = append(wantCov, e.Coverage)
		} else {
			wantCov = append(wantCov, nil)
		}
		m := map[string]string{}
		for k, v := range e.Values {
			if t.CoRIMKey(name, k) {
				m[k] = v
			}
		}
		want = append(want, m)
	}
	if !reflect.DeepEqual(cv.Triples, want) {
		return fmt.Errorf("%w: CoRIM reference values %v, the statement says %v", ErrMismatch, cv.Triples, want)
	}
	if !reflect.DeepEqual(cv.Coverage, wantCov) {
		return fmt.Errorf("%w: CoRIM coverage notes %s, the statement says %s", ErrMismatch, coverageList(cv.Coverage), coverageList(wantCov))
	}
	return nil
}

func coverageList(cs []*Coverage) string {
	var s []string
	for _, c := range cs {
		if c == nil {
			s = append(s, "none")
		} else {
			s = append(s, c.String())
		}
	}
	return "[" + strings.Join(s, "; ") + "]"
}

// checkSubjects checks the subjects found below dir, read through an
// os.Root of it: no subject path or symbolic link leads out of dir. Each
// subject is hashed as a stream (a disk image is not read into memory),
// and one that is not a regular file (a named pipe, a device) is refused
// before anything is read from it.
func checkSubjects(r *Release, dir string) (int, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, fmt.Errorf("--artifacts: %w", err)
	}
	defer root.Close()
	n := 0
	for _, s := range r.Subjects {
		if s.IsOCI() {
			continue // the pushed disk image's manifest, not a file
		}
		if err := checkSubjectName(s.Name); err != nil {
			return n, err
		}
		got, size, err := hashSubject(root, s.Name, s.Size)
		if errors.Is(err, os.ErrNotExist) {
			return n, fmt.Errorf("subject %s is not in %s", s.Name, dir)
		}
		var nr *limits.NotRegularError
		if errors.As(err, &nr) {
			return n, fmt.Errorf("subject %s in %s is a %s, not a regular file: a build writes its artifacts as files; give the build output as it was built (--artifacts)", s.Name, dir, fsinfo.Kind(nr.Mode))
		}
		if err != nil {
			return n, fmt.Errorf("%w: subject %s: %w", ErrSubjectOutside, s.Name, err)
		}
		if got == "" {
			return n, fmt.Errorf("%w: %s has %d bytes, the statement says %d", ErrMismatch, s.Name, size, s.Size)
		}
		if got != s.SHA256 {
			return n, fmt.Errorf("%w: %s has sha256 %s, the statement says %s", ErrMismatch, s.Name, got, s.SHA256)
		}
		n++
	}
	return n, nil
}

// hashSubject returns the hex sha256 of a regular file of root, read as a
// stream, and its size. It is opened non-blocking, so that a named pipe is
// refused (*limits.NotRegularError) rather than waited on. When want (the
// size the statement gives, 0: not given) is not the file's size, it
// returns no digest and reads nothing: a file of another size cannot
// match, however large it is.
func hashSubject(root *os.Root, name string, want int64) (string, int64, error) {
	f, err := root.OpenFile(filepath.FromSlash(name), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	if !fi.Mode().IsRegular() {
		return "", 0, &limits.NotRegularError{Path: name, Mode: fi.Mode()}
	}
	if want > 0 && fi.Size() != want {
		return "", fi.Size(), nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), fi.Size(), nil
}

// jsonEqual compares two decoded JSON values.
func jsonEqual(a, b map[string]any) bool {
	// Lists decode as []any but are built as []string: compare in JSON form.
	ja, jb := mustJSON(a), mustJSON(b)
	return ja != nil && jb != nil && bytes.Equal(ja, jb)
}

// VerifyOne checks a single document on its own: a statement bundle
// (signature, payload type, subjects, expiry, version), an RVPS message
// with its detached signature sig, or a signed CoRIM (signature, validity).
// It returns what it checked.
func VerifyOne(ctx context.Context, data, sig []byte, pub *sign.PublicKey, o VerifyOptions) ([]string, error) {
	if err := checkTEEs(o.TEEs); err != nil {
		return nil, err
	}
	f, err := DetectFormat(data)
	if err != nil {
		return nil, err
	}
	switch f {
	case FormatInToto:
		r, err := VerifyStatement(ctx, data, pub)
		if err != nil {
			return nil, err
		}
		if err := checkKey(r, pub, o); err != nil {
			return nil, err
		}
		if err := CheckRelease(r, o); err != nil {
			return nil, err
		}
		out := []string{fmt.Sprintf("in-toto statement of %s %s signed by %s: %d subjects, %d reference values, expires %s; %s",
			r.Name, r.Version, pub.ID(), len(r.Subjects), len(r.Entries), r.Expires.Format(time.RFC3339), r.CoverageSummary())}
		if o.Artifacts != "" {
			n, err := checkSubjects(r, o.Artifacts)
			if err != nil {
				return nil, err
			}
			out = append(out, fmt.Sprintf("%d subjects match the files in %s", n, o.Artifacts))
		}
		return out, nil
	case FormatRVPS:
		if sig == nil {
			return nil, errors.New("an RVPS message needs its detached signature or sigstore bundle (--signature)")
		}
		verify := VerifyBlob
		if t := bytes.TrimSpace(sig); len(t) > 0 && t[0] == '{' {
			verify = func(msg, b []byte, pub *sign.PublicKey) error { return VerifyMessageBundle(msg, b, pub) }
		}
		if err := verify(data, sig, pub); err != nil {
			return nil, err
		}
		if err := checkKey(nil, pub, o); err != nil {
			return nil, err
		}
		p, err := DecodeRVPS(data)
		if err != nil {
			return nil, err
		}
		out := []string{fmt.Sprintf("RVPS message signed by %s: %d reference-value names", pub.ID(), len(p))}
		if o.MinVersion != "" {
			v, err := rvpsVersion(p)
			if err != nil {
				return nil, err
			}
			if CompareVersions(v, o.MinVersion) < 0 {
				return nil, fmt.Errorf("%w: the RVPS message states version %s, older than %s", ErrRollback, v, o.MinVersion)
			}
			out = append(out, fmt.Sprintf("version %s (from its rvps:/// names) is not older than %s", v, o.MinVersion))
		}
		switch {
		case o.Statement != nil:
			r, err := VerifyStatement(ctx, o.Statement, pub)
			if err != nil {
				return nil, fmt.Errorf("the statement of the RVPS message: %w", err)
			}
			if err := checkKey(r, pub, o); err != nil {
				return nil, fmt.Errorf("the statement of the RVPS message: %w", err)
			}
			if err := CheckRelease(r, o); err != nil {
				return nil, err
			}
			want, err := RVPSPayload(r, o.TEEs)
			if err != nil {
				return nil, err
			}
			if !jsonEqual(p, want) {
				return nil, fmt.Errorf("%w: the RVPS payload is not the reference values of the statement of %s %s", ErrMismatch, r.Name, r.Version)
			}
			out = append(out, fmt.Sprintf("its statement (%s %s, signed by %s) states the same values and expires %s", r.Name, r.Version, pub.ID(), r.Expires.Format(time.RFC3339)))
		case !o.SkipExpiry:
			return nil, fmt.Errorf("an RVPS message carries no expiry: give the %s of its release, which does (--statement; by default the one beside it)", StatementFile)
		}
		if pc, ok := p[RVPSPartialCoverageName].([]any); ok {
			out = append(out, fmt.Sprintf("PARTIAL coverage (allowed by the publisher): %s lists %d reference values that do not vouch for the whole guest", RVPSPartialCoverageName, len(pc)))
		}
		return out, nil
	default:
		cv, err := VerifyCoRIM(data, pub, o.TEEs)
		if err != nil {
			return nil, err
		}
		if err := checkKey(nil, pub, o); err != nil {
			return nil, err
		}
		now := o.Now
		if now.IsZero() {
			now = time.Now()
		}
		if !o.SkipExpiry && !now.Before(cv.Validity.NotAfter) {
			return nil, fmt.Errorf("%w: CoRIM %s valid until %s", ErrExpired, cv.ID, cv.Validity.NotAfter.Format(time.RFC3339))
		}
		if o.MinVersion != "" {
			v := cv.ID[strings.LastIndex(cv.ID, "/")+1:]
			if _, err := CanonicalVersion(v); err != nil {
				return nil, fmt.Errorf("CoRIM id %q does not end in a release version", cv.ID)
			}
			if CompareVersions(v, o.MinVersion) < 0 {
				return nil, fmt.Errorf("%w: CoRIM %s is older than %s", ErrRollback, cv.ID, o.MinVersion)
			}
		}
		return []string{fmt.Sprintf("CoRIM %s signed by %s: %d reference triples, valid until %s", cv.ID, pub.ID(), len(cv.Triples), cv.Validity.NotAfter.Format(time.RFC3339))}, nil
	}
}
