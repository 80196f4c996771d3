package publish

import (
	"context"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/registry"

	"github.com/cocobuild/cocobuild/publish/feed"
)

// SubjectKindOCI is the kind of a subject that is not a file of the build
// output but the pushed disk image's OCI manifest, named by its reference
// by digest (REGISTRY/REPO@sha256:HEX) and with the manifest's digest. It
// is in the statement so that `cosign verify-attestation` on the disk's
// reference finds the disk's manifest digest among the subjects.
const SubjectKindOCI = "oci-manifest"

// IsOCI reports whether the subject is a pushed OCI manifest rather than a
// file of the build output.
func (s Subject) IsOCI() bool { return s.Kind == SubjectKindOCI }

// checkOCISubject checks a subject of SubjectKindOCI: its name is a
// reference by digest, and that digest is the subject's.
func checkOCISubject(s Subject) error {
	ref, err := registry.ParseReference(s.Name)
	if err != nil {
		return fmt.Errorf("OCI subject %q: %w", s.Name, err)
	}
	d, err := ref.Digest()
	if err != nil || strings.HasPrefix(s.Name, feed.OCIPrefix) {
		return fmt.Errorf("OCI subject %q: want REGISTRY/REPO@sha256:HEX", s.Name)
	}
	if d.Algorithm() != digest.SHA256 || d.Encoded() != s.SHA256 {
		return fmt.Errorf("OCI subject %q: its sha256 is %s, not the digest it names", s.Name, s.SHA256)
	}
	return nil
}

// addOCISubjects adds to r, for each oci:// feed of cfg, the disk image
// cfg.Subject as a subject of SubjectKindOCI: its manifest digest is
// resolved in the feed's repository before signing, since cosign accepts an
// attestation of the disk only when the signed statement names that digest.
func addOCISubjects(ctx context.Context, r *Release, cfg Config) error {
	if cfg.Subject == "" {
		return nil
	}
	for _, t := range cfg.To {
		if !strings.HasPrefix(t, feed.OCIPrefix) {
			continue
		}
		o, err := feed.OpenOCI(t)
		if err != nil {
			return err
		}
		d, ref, err := o.ResolveSubject(ctx, cfg.Subject)
		if err != nil {
			return fmt.Errorf("publishing to %s: %w", t, err)
		}
		if d.Digest.Algorithm() != digest.SHA256 {
			return fmt.Errorf("publishing to %s: subject %s has a %s digest: want sha256", t, cfg.Subject, d.Digest.Algorithm())
		}
		s := Subject{Name: ref, Kind: SubjectKindOCI, SHA256: d.Digest.Encoded(), Size: d.Size}
		dup := false
		for _, have := range r.Subjects {
			dup = dup || have == s
		}
		if !dup {
			r.Subjects = append(r.Subjects, s)
		}
	}
	return nil
}

// pushAttestation pushes the statement bundle of docs as a cosign
// attestation referrer of the disk image subject, beside the release in o.
func pushAttestation(ctx context.Context, o *feed.OCI, r *Release, docs []Document, subject string) (string, error) {
	for _, d := range docs {
		if d.Name != StatementFile {
			continue
		}
		sd, ref, err := o.ResolveSubject(ctx, subject)
		if err != nil {
			return "", err
		}
		named := false
		for _, s := range r.Subjects {
			named = named || s.IsOCI() && "sha256:"+s.SHA256 == sd.Digest.String()
		}
		if !named {
			return "", fmt.Errorf("the statement does not name %s (%s) among its subjects, so cosign would not accept it as an attestation of it", ref, subject)
		}
		desc, err := o.PushAttestation(ctx, subject, StatementFile, d.Data, PredicateType, r.Issued)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("; the statement is the attestation referrer %s of %s (cosign verify-attestation --type %s)", desc.Digest, subject, PredicateType), nil
	}
	return "", nil
}
