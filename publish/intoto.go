package publish

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	ita "github.com/in-toto/attestation/go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cocobuild/cocobuild/publish/sign"
)

// In-toto and sigstore identifiers.
const (
	// PredicateType is the predicate type of cocobuild's reference-value
	// statements; the predicate is a Release.
	PredicateType = "https://github.com/cocobuild/cocobuild/reference-values/v1"
	// PayloadType is the DSSE payload type of in-toto statements.
	PayloadType = "application/vnd.in-toto+json"
	// BundleMediaType is the sigstore bundle version written.
	BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
)

// statement is the in-toto Statement v1 as cocobuild writes it; encoding/json
// keeps it byte-for-byte reproducible (protojson deliberately is not).
type statement struct {
	Type          string    `json:"_type"`
	Subject       []subject `json:"subject"`
	PredicateType string    `json:"predicateType"`
	Predicate     *Release  `json:"predicate"`
}

type subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// EncodeStatement returns the in-toto Statement v1 of a release: the build's
// artifacts as subjects, the release as predicate.
func EncodeStatement(r *Release) ([]byte, error) {
	st := statement{Type: ita.StatementTypeUri, PredicateType: PredicateType, Predicate: r}
	for _, s := range r.Subjects {
		st.Subject = append(st.Subject, subject{Name: s.Name, Digest: map[string]string{"sha256": s.SHA256}})
	}
	b, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	if _, err := parseStatement(b); err != nil {
		return nil, fmt.Errorf("the statement made is invalid (a bug): %w", err)
	}
	return b, nil
}

// parseStatement checks a statement with the in-toto reference types and
// returns the release it states.
func parseStatement(b []byte) (*Release, error) {
	var pst ita.Statement
	if err := protojson.Unmarshal(b, &pst); err != nil {
		return nil, fmt.Errorf("in-toto statement: %w", err)
	}
	if err := pst.Validate(); err != nil {
		return nil, fmt.Errorf("in-toto statement: %w", err)
	}
	if pst.GetType() != ita.StatementTypeUri {
		return nil, fmt.Errorf("in-toto statement type %q: want %q", pst.GetType(), ita.StatementTypeUri)
	}
	if pst.GetPredicateType() != PredicateType {
		return nil, fmt.Errorf("predicate type %q: want %q", pst.GetPredicateType(), PredicateType)
	}
	var st statement
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("reference-value predicate: %w", err)
	}
	r := st.Predicate
	if r == nil {
		return nil, errors.New("statement has no predicate")
	}
	if err := r.Check(); err != nil {
		return nil, err
	}
	// The subjects must be exactly the release's.
	if len(st.Subject) != len(r.Subjects) {
		return nil, fmt.Errorf("statement has %d subjects, its predicate %d", len(st.Subject), len(r.Subjects))
	}
	for i, s := range st.Subject {
		if len(s.Digest) != 1 || !isHex(s.Digest["sha256"], 32) {
			return nil, fmt.Errorf("subject %s: want exactly one sha256 digest of 64 hex digits", s.Name)
		}
		if s.Name != r.Subjects[i].Name || s.Digest["sha256"] != r.Subjects[i].SHA256 {
			return nil, fmt.Errorf("subject %d is %s %s, the predicate says %s %s", i, s.Name, s.Digest["sha256"], r.Subjects[i].Name, r.Subjects[i].SHA256)
		}
	}
	return r, nil
}

// dsseSigner adapts a sign.Signer to DSSE.
type dsseSigner struct{ s *sign.Signer }

func (d dsseSigner) Sign(_ context.Context, data []byte) ([]byte, error) { return d.s.Sign(data) }
func (d dsseSigner) KeyID() (string, error)                              { return "", nil }

// dsseVerifier adapts a sign.PublicKey to DSSE.
type dsseVerifier struct{ p *sign.PublicKey }

func (d dsseVerifier) Verify(_ context.Context, data, sig []byte) error { return d.p.Verify(data, sig) }
func (d dsseVerifier) KeyID() (string, error)                           { return "", nil }
func (d dsseVerifier) Public() crypto.PublicKey                         { return d.p.Key }

// SignBundle signs payload as a DSSE envelope and wraps it in a sigstore
// bundle (v0.3) whose verification material is the public key hint; there
// is no transparency-log entry, so verifiers check it offline with the key
// (cosign: --key … --insecure-ignore-tlog).
func SignBundle(ctx context.Context, payloadType string, payload []byte, s *sign.Signer) ([]byte, error) {
	es, err := dsse.NewEnvelopeSigner(dsseSigner{s})
	if err != nil {
		return nil, err
	}
	env, err := es.SignPayload(ctx, payloadType, payload)
	if err != nil {
		return nil, fmt.Errorf("signing the DSSE envelope: %w", err)
	}
	pe := &protodsse.Envelope{Payload: payload, PayloadType: env.PayloadType}
	for _, sg := range env.Signatures {
		raw, err := decodeB64(sg.Sig)
		if err != nil {
			return nil, err
		}
		pe.Signatures = append(pe.Signatures, &protodsse.Signature{Sig: raw, Keyid: sg.KeyID})
	}
	b := &protobundle.Bundle{
		MediaType: BundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: s.Public().Hint()}},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: pe},
	}
	return canonicalProtoJSON(b)
}

// SignMessageBundle signs msg (a blob such as rvps.json) and wraps the
// signature in a sigstore bundle (v0.3) of a message signature: the SHA-256
// digest of msg and the signature Sign makes, keyed by the public key hint,
// with no transparency-log entry. cosign v3 verifies it offline with
// `cosign verify-blob --bundle BUNDLE --key PUB --insecure-ignore-tlog MSG`.
func SignMessageBundle(msg []byte, s *sign.Signer) ([]byte, error) {
	sig, err := s.Sign(msg)
	if err != nil {
		return nil, err
	}
	d := sha256.Sum256(msg)
	b := &protobundle.Bundle{
		MediaType: BundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: s.Public().Hint()}},
		},
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: d[:]},
			Signature:     sig,
		}},
	}
	return canonicalProtoJSON(b)
}

// VerifyMessageBundle checks a bundle made by SignMessageBundle: a sigstore
// bundle of a message signature whose digest is msg's SHA-256 and whose
// signature verifies over msg with pub.
func VerifyMessageBundle(msg, data []byte, pub *sign.PublicKey) error {
	var b protobundle.Bundle
	if err := protojson.Unmarshal(data, &b); err != nil {
		return fmt.Errorf("sigstore bundle: %w", err)
	}
	if !strings.HasPrefix(b.GetMediaType(), "application/vnd.dev.sigstore.bundle") {
		return fmt.Errorf("sigstore bundle media type %q is not a sigstore bundle", b.GetMediaType())
	}
	ms := b.GetMessageSignature()
	if ms == nil {
		return errors.New("sigstore bundle holds no message signature")
	}
	d := sha256.Sum256(msg)
	if md := ms.GetMessageDigest(); md.GetAlgorithm() != protocommon.HashAlgorithm_SHA2_256 || !bytes.Equal(md.GetDigest(), d[:]) {
		return fmt.Errorf("%w: the bundle's message digest is not the SHA-256 of the message", sign.ErrSignature)
	}
	return pub.Verify(msg, ms.GetSignature())
}

// canonicalProtoJSON encodes a message with protojson and re-encodes it with
// encoding/json, whose output (sorted keys, no random spaces) is stable.
func canonicalProtoJSON(b *protobundle.Bundle) ([]byte, error) {
	j, err := protojson.Marshal(b)
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(j, &v); err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// ErrPayloadType is returned (wrapped) for an envelope of another payload type.
var ErrPayloadType = errors.New("wrong DSSE payload type")

// VerifyBundle checks a sigstore bundle holding a DSSE envelope against the
// public key and returns the verified payload. The envelope must carry
// wantType.
func VerifyBundle(ctx context.Context, data []byte, pub *sign.PublicKey, wantType string) ([]byte, error) {
	var b protobundle.Bundle
	if err := protojson.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("sigstore bundle: %w", err)
	}
	if !strings.HasPrefix(b.GetMediaType(), "application/vnd.dev.sigstore.bundle") {
		return nil, fmt.Errorf("sigstore bundle media type %q is not a sigstore bundle", b.GetMediaType())
	}
	env := b.GetDsseEnvelope()
	if env == nil {
		return nil, errors.New("sigstore bundle holds no DSSE envelope")
	}
	if env.GetPayloadType() != wantType {
		return nil, fmt.Errorf("%w %q: want %q", ErrPayloadType, env.GetPayloadType(), wantType)
	}
	e := &dsse.Envelope{PayloadType: env.GetPayloadType(), Payload: encodeB64(env.GetPayload())}
	for _, s := range env.GetSignatures() {
		e.Signatures = append(e.Signatures, dsse.Signature{KeyID: s.GetKeyid(), Sig: encodeB64(s.GetSig())})
	}
	ev, err := dsse.NewEnvelopeVerifier(dsseVerifier{pub})
	if err != nil {
		return nil, err
	}
	if _, err := ev.Verify(ctx, e); err != nil {
		return nil, fmt.Errorf("DSSE envelope: %w: %w", sign.ErrSignature, err)
	}
	return env.GetPayload(), nil
}

// VerifyStatement verifies a bundle made by SignBundle from EncodeStatement
// and returns the release it states.
func VerifyStatement(ctx context.Context, data []byte, pub *sign.PublicKey) (*Release, error) {
	payload, err := VerifyBundle(ctx, data, pub, PayloadType)
	if err != nil {
		return nil, err
	}
	return parseStatement(payload)
}
