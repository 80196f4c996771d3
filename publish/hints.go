package publish

import (
	"fmt"
	"path"
)

// CosignHints are the cosign v3 commands that check a release's documents
// in dir with the public key pub (a path, or a placeholder the caller
// explains): rvps.json with its sigstore bundle (verify-blob --bundle; the
// detached --signature is deprecated in cosign v3), the statement bundle
// against artifact, a file the statement names (verify-blob-attestation),
// and the statement as an attestation of each pushed disk image r names
// (verify-attestation). The statement's predicate type is not one cosign
// knows by name, so the attestation commands pass it as --type: without it
// cosign looks for its own "custom" predicate and finds nothing. The bundles
// carry no transparency-log entry: --insecure-ignore-tlog, the key being
// the trust. r may be nil (no pushed disk image known); rvps says whether
// the release has rvps.json.
func CosignHints(pub, dir, artifact string, r *Release, rvps bool) []string {
	var out []string
	if rvps {
		out = append(out, fmt.Sprintf("cosign verify-blob --key %s --bundle %s --insecure-ignore-tlog %s",
			pub, path.Join(dir, RVPSBundleFile), path.Join(dir, RVPSFile)))
	}
	if artifact != "" {
		out = append(out, fmt.Sprintf("cosign verify-blob-attestation --key %s --type %s --bundle %s --insecure-ignore-tlog %s",
			pub, PredicateType, path.Join(dir, StatementFile), artifact))
	}
	if r != nil {
		for _, s := range r.Subjects {
			if s.IsOCI() {
				out = append(out, fmt.Sprintf("cosign verify-attestation --key %s --type %s --insecure-ignore-tlog %s", pub, PredicateType, s.Name))
			}
		}
	}
	return out
}
