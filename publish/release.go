package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/cocobuild/cocobuild/internal/fsinfo"
	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/publish/sign"
	"github.com/cocobuild/cocobuild/tee"
)

// Formats.
const (
	FormatRVPS      = "rvps"   // Trustee RVPS message + detached signature
	FormatInToto    = "intoto" // in-toto statement, DSSE, sigstore bundle
	FormatCoRIM     = "corim"  // signed CoRIM per TEE
	FormatPublicKey = "public-key"
)

// AllFormats are the formats a release is published in by default.
var AllFormats = []string{FormatRVPS, FormatInToto, FormatCoRIM}

// Document file names.
const (
	RVPSFile    = "rvps.json"
	RVPSSigFile = "rvps.json.sig"
	// RVPSBundleFile is the sigstore bundle of rvps.json (a message
	// signature), what cosign v3 verifies with verify-blob --bundle; the
	// detached rvps.json.sig is kept for clients that take --signature.
	RVPSBundleFile = "rvps.json.sigstore.json"
	StatementFile  = "statement.sigstore.json"
	PublicKeyFile  = "cosign.pub"
)

// ArtifactKindReferenceValues is the manifest kind of the documents a
// publish block wrote into OUT/publish/NAME: a build's output, but never a
// subject of a later release of the same manifest.
const ArtifactKindReferenceValues = "reference-values"

// CoRIMFile names the signed CoRIM of a TEE.
func CoRIMFile(tee string) string { return "corim-" + tee + ".cbor" }

// Media types of the documents.
const (
	MediaTypeRVPS      = "application/vnd.cocobuild.rvps-message.v1+json"
	MediaTypeSignature = "application/vnd.cocobuild.signature.v1+base64"
	MediaTypeBundle    = BundleMediaType
	MediaTypeCoRIM     = CoRIMMediaType
	MediaTypePublicKey = "application/x-pem-file"
	// ArtifactType is the OCI artifactType of a published release.
	ArtifactType = "application/vnd.cocobuild.reference-values.v1"
)

// Document is one published file.
type Document struct {
	Name      string // file name
	Format    string // FormatRVPS, FormatInToto, ...
	MediaType string
	Data      []byte
}

// SHA256 returns the hex digest of the document.
func (d Document) SHA256() string {
	s := sha256.Sum256(d.Data)
	return hex.EncodeToString(s[:])
}

// CheckFormats checks a list of formats; the in-toto statement is required,
// as it carries the release version and expiry that verify and feeds use.
func CheckFormats(fs []string) error {
	has := map[string]bool{}
	for _, f := range fs {
		switch f {
		case FormatRVPS, FormatInToto, FormatCoRIM:
		default:
			return fmt.Errorf("unknown format %q: use %s", f, strings.Join(AllFormats, ", "))
		}
		if has[f] {
			return fmt.Errorf("format %q given twice", f)
		}
		has[f] = true
	}
	if !has[FormatInToto] {
		return errors.New(`formats must include "intoto": the signed statement carries the release version and expiry`)
	}
	return nil
}

// Sign produces the documents of a release in the given formats, signed
// with s, plus the public key. Every document is deterministic: the same
// release and key give the same bytes.
func Sign(ctx context.Context, r *Release, s *sign.Signer, formats []string, tees tee.Set) ([]Document, error) {
	if err := CheckFormats(formats); err != nil {
		return nil, err
	}
	if err := checkTEEs(tees); err != nil {
		return nil, err
	}
	if err := r.Check(); err != nil {
		return nil, err
	}
	var docs []Document
	for _, f := range formats {
		switch f {
		case FormatRVPS:
			msg, err := EncodeRVPS(r, tees)
			if err != nil {
				return nil, err
			}
			sig, err := s.Sign(msg)
			if err != nil {
				return nil, err
			}
			docs = append(docs,
				Document{Name: RVPSFile, Format: FormatRVPS, MediaType: MediaTypeRVPS, Data: msg},
				// cosign's detached signature format: base64 of the signature.
				Document{Name: RVPSSigFile, Format: FormatRVPS, MediaType: MediaTypeSignature,
					Data: []byte(base64.StdEncoding.EncodeToString(sig))})
			b, err := SignMessageBundle(msg, s)
			if err != nil {
				return nil, err
			}
			docs = append(docs, Document{Name: RVPSBundleFile, Format: FormatRVPS, MediaType: MediaTypeBundle, Data: b})
		case FormatInToto:
			st, err := EncodeStatement(r)
			if err != nil {
				return nil, err
			}
			b, err := SignBundle(ctx, PayloadType, st, s)
			if err != nil {
				return nil, err
			}
			docs = append(docs, Document{Name: StatementFile, Format: FormatInToto, MediaType: MediaTypeBundle, Data: b})
		case FormatCoRIM:
			for _, name := range tees.CoRIMNames() {
				b, err := EncodeCoRIM(r, tees, name, s)
				if err != nil {
					return nil, fmt.Errorf("CoRIM for %s: %w", name, err)
				}
				if b != nil {
					docs = append(docs, Document{Name: CoRIMFile(name), Format: FormatCoRIM, MediaType: MediaTypeCoRIM, Data: b})
				}
			}
		}
	}
	docs = append(docs, Document{Name: PublicKeyFile, Format: FormatPublicKey, MediaType: MediaTypePublicKey, Data: s.Public().PEM()})
	sort.Slice(docs, func(i, j int) bool { return docs[i].Name < docs[j].Name })
	return docs, nil
}

// ErrNotRegular is the error of a release directory where a document's
// name is not a regular file (a symbolic link, a directory, ...).
var ErrNotRegular = errors.New("a document of the release is not a regular file")

// ReadDocuments reads the documents of a release from a directory (such as
// OUT/publish/NAME) within the default limits: ReadDocumentsWithin with
// nil limits.
func ReadDocuments(dir string, tees tee.Set) ([]Document, error) {
	return ReadDocumentsWithin(dir, tees, nil)
}

// ReadDocumentsWithin reads the documents of a release from a directory
// (such as OUT/publish/NAME), recognising them by name; other files are
// ignored. The directory is read through an os.Root, and a document's name
// that is not a regular file (a symbolic link, even to a file inside the
// directory, a directory, a named pipe, a device) is ErrNotRegular:
// skipping it would verify the release without a document that a consumer
// such as Trustee's RVPS reads through the link. A document over the
// document limit of lim (limits.Document, nil: the default) is a
// *limits.Error, refused before it is read.
func ReadDocumentsWithin(dir string, tees tee.Set, lim *limits.Values) ([]Document, error) {
	if err := checkTEEs(tees); err != nil {
		return nil, err
	}
	known := knownDocuments(tees)
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var docs []Document
	for _, e := range ents {
		k, ok := known[e.Name()]
		if !ok {
			continue
		}
		p := filepath.Join(dir, e.Name())
		b, err := readRegular(root, e.Name(), p, lim)
		if err != nil {
			var le *limits.Error
			if errors.As(err, &le) {
				return nil, err // it names the path
			}
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		docs = append(docs, Document{Name: e.Name(), Format: k[0], MediaType: k[1], Data: b})
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s holds no published documents (%s, %s, ...)", dir, StatementFile, RVPSFile)
	}
	return docs, nil
}

// readRegular reads a file of root that must be a regular file, not a
// symbolic link, of at most the document limit: it is checked with Lstat
// before it is opened (non-blocking, so that a named pipe put in its place
// meanwhile cannot block) and, once open, must still be that file; its
// size is checked before it is read, and it is read into one buffer of
// that size. path names it in a *limits.Error.
func readRegular(root *os.Root, name, path string, lim *limits.Values) ([]byte, error) {
	fi, err := root.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w (it is a %s): a release holds its documents as files, and a link could show a verifier other bytes than the ones checked here; replace it with the published file, or fetch the release again", ErrNotRegular, fsinfo.Kind(fi.Mode()))
	}
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ofi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !os.SameFile(fi, ofi) || !ofi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: it was replaced while being read; verify again", ErrNotRegular)
	}
	if err := lim.Check(path, limits.Document, ofi.Size()); err != nil {
		return nil, err
	}
	b := make([]byte, ofi.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("shorter than its size %d: it changed while it was read; verify again (%w)", ofi.Size(), err)
	}
	var one [1]byte
	if n, _ := f.Read(one[:]); n > 0 {
		return nil, fmt.Errorf("longer than its size %d: it changed while it was read; verify again", ofi.Size())
	}
	return b, nil
}

// DetectFormat tells a document's format from its content: a sigstore
// bundle, an RVPS message or a signed CoRIM.
func DetectFormat(data []byte) (string, error) {
	t := bytes.TrimSpace(data)
	if len(t) > 0 && t[0] == '{' {
		var probe struct {
			MediaType string `json:"mediaType"`
			Type      string `json:"type"`
			Payload   any    `json:"payload"`
		}
		if err := json.Unmarshal(t, &probe); err == nil {
			switch {
			case strings.HasPrefix(probe.MediaType, "application/vnd.dev.sigstore.bundle"):
				return FormatInToto, nil
			case probe.Type != "" && probe.Payload != nil:
				return FormatRVPS, nil
			}
		}
		return "", errors.New("a JSON document that is neither a sigstore bundle nor an RVPS message")
	}
	if len(data) > 0 && (data[0] == 0xd2 || data[0] == 0x84) { // COSE_Sign1, tagged or not
		return FormatCoRIM, nil
	}
	return "", errors.New("not a sigstore bundle, RVPS message or signed CoRIM")
}
