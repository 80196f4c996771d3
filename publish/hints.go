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
// the release has rvps.json. cosign reads a blob of at most 128 MiB unless
// COSIGN_MAX_ATTACHMENT_SIZE raises it: for a larger artifact (size bytes,
// a disk image with a Debian root is 137 MB) the command sets it.
// cosignMaxAttachment is cosign's default limit on the blobs it reads
// (COSIGN_MAX_ATTACHMENT_SIZE, 128 MiB).
const cosignMaxAttachment = 128 << 20

func CosignHints(pub, dir, artifact string, size int64, r *Release, rvps bool) []string {
	var out []string
	if rvps {
		out = append(out, fmt.Sprintf("cosign verify-blob --key %s --bundle %s --insecure-ignore-tlog %s",
			pub, path.Join(dir, RVPSBundleFile), path.Join(dir, RVPSFile)))
	}
	if artifact != "" {
		env := ""
		if size > cosignMaxAttachment {
			env = fmt.Sprintf("COSIGN_MAX_ATTACHMENT_SIZE=%dMiB ", (size+1<<20-1)>>20)
		}
		out = append(out, fmt.Sprintf("%scosign verify-blob-attestation --key %s --type %s --bundle %s --insecure-ignore-tlog %s",
			env, pub, PredicateType, path.Join(dir, StatementFile), artifact))
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
