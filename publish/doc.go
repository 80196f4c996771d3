// Package publish turns the measurements of a build (manifest.json) into
// signed reference values in the formats verifiers read, and checks them.
//
// The model is a Release: a name, a semantic version, the recipe digest,
// an expiry and, per measurement, the TEE, the values (lowercase hex), the
// parameters they hold for and the artifacts they derive from. Sign writes
// it as
//
//   - rvps.json: a Trustee RVPS message {"version":"0.1.0","type":"sample",
//     "payload":base64(JSON)} whose payload names the values as Trustee's
//     default attestation policy does (snp_launch_measurement, mr_td,
//     rtmr_1, ...) and as rvps:///NAMESPACE/TEE/NAME:VERSION, ready for
//     `rvps-tool register --path` or the KBS reference-value endpoint; with
//     rvps.json.sigstore.json, a sigstore bundle (message signature) that
//     cosign v3's `cosign verify-blob --bundle … --key …
//     --insecure-ignore-tlog rvps.json` accepts, and rvps.json.sig, the same
//     signature detached (base64) for clients that take --signature
//     (deprecated in cosign v3, still accepted);
//   - statement.sigstore.json: an in-toto Statement v1 (the build's artifacts
//     as subjects, the Release as predicate of type PredicateType) in a DSSE
//     envelope inside a sigstore bundle v0.3 keyed by the public key hint,
//     verifiable offline (cosign: verify-blob-attestation --type
//     PredicateType). Published to an oci:// feed with the pushed disk image
//     as subject, the statement also names the disk's manifest digest (a
//     subject of SubjectKindOCI) and is pushed as the disk's cosign
//     attestation referrer, which `cosign verify-attestation --type` finds;
//   - corim-snp.cbor, corim-tdx.cbor: signed CoRIMs (COSE_Sign1 over a
//     tag-501 unsigned CoRIM): the SNP launch measurement as a reference
//     triple per the AMD SEV-SNP CoRIM profile draft, TDX MRTD and RTMRs as
//     named integrity registers; corim-tpm.cbor, corim-az-snp-vtpm.cbor,
//     corim-az-tdx-vtpm.cbor: the TPM PCRs as integrity registers indexed
//     by PCR number (SHA-256), under a profile of cocobuild's per name.
//
// Every document is deterministic: the same release and key give the same
// bytes (RFC 6979 ECDSA, Ed25519). Verify checks a release's documents
// against a public key: signatures, payload type, subjects, expiry,
// rollback (a minimum version) and that all formats state the same values.
// Publish appends releases to feeds (package feed); the `publish` block
// (Kind) does all of this at the end of a build.
package publish
