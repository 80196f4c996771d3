package vtpm

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"

	"github.com/google/go-tpm/tpm2"

	"github.com/cocobuild/cocobuild/tee"
)

var _ tee.Checker = TEE{}

// Quote is a parsed TPM 2.0 quote: the TPMS_ATTEST the TPM signed (as
// tpm2_quote -m writes it) and its quote information.
type Quote struct {
	// Raw are the TPMS_ATTEST bytes, which the signature is over.
	Raw    []byte
	Attest *tpm2.TPMSAttest
	Info   *tpm2.TPMSQuoteInfo
}

// TEE implements tee.Evidence: a TPM quote is compared with the entries of
// the plain TPM ("tpm").
func (*Quote) TEE() string { return "tpm" }

// Describe implements tee.Evidence.
func (q *Quote) Describe() string {
	var sel []string
	for _, s := range q.Info.PCRSelect.PCRSelections {
		sel = append(sel, fmt.Sprintf("%s:%s", bankName(s.Hash), joinInts(selected(s))))
	}
	return "TPM 2.0 quote (TPMS_ATTEST) of PCRs " + strings.Join(sel, " ")
}

// attestMagic is TPM_GENERATED_VALUE, which every TPMS_ATTEST starts with.
var attestMagic = []byte{0xff, 'T', 'C', 'G'}

// ParseEvidence implements tee.Checker: a TPMS_ATTEST (TPM_GENERATED_VALUE
// first) of type TPM_ST_ATTEST_QUOTE, the whole of b.
func (TEE) ParseEvidence(b []byte) (tee.Evidence, bool, error) {
	if !bytes.HasPrefix(b, attestMagic) {
		return nil, false, nil
	}
	a, err := tpm2.Unmarshal[tpm2.TPMSAttest](b)
	if err != nil {
		return nil, true, fmt.Errorf("%w: a TPMS_ATTEST that does not parse: %w", tee.ErrUnreadable, err)
	}
	if a.Type != tpm2.TPMSTAttestQuote {
		return nil, true, fmt.Errorf("%w: a TPMS_ATTEST of type %#x, not a quote (%#x): give the message tpm2_quote -m writes", tee.ErrUnreadable, uint16(a.Type), uint16(tpm2.TPMSTAttestQuote))
	}
	if n := len(tpm2.Marshal(a)); n != len(b) {
		return nil, true, fmt.Errorf("%w: %d bytes after the %d of the TPMS_ATTEST", tee.ErrUnreadable, len(b)-n, n)
	}
	info, err := a.Attested.Quote()
	if err != nil {
		return nil, true, fmt.Errorf("%w: quote information: %w", tee.ErrUnreadable, err)
	}
	for _, s := range info.PCRSelect.PCRSelections {
		if _, ok := banks[s.Hash]; !ok {
			return nil, true, fmt.Errorf("%w: a PCR selection of bank %#x, which check does not know", tee.ErrUnreadable, uint16(s.Hash))
		}
	}
	return &Quote{Raw: b, Attest: a, Info: info}, true, nil
}

// EvidenceKinds implements tee.Checker.
func (TEE) EvidenceKinds() string {
	return "a TPM 2.0 quote (the TPMS_ATTEST tpm2_quote -m writes, with its PCR values file, tpm2_quote -o, given with --pcrs)"
}

// ParseEventLog implements tee.Checker.
func (TEE) ParseEventLog([]byte) error {
	return fmt.Errorf("%w: check compares a TPM quote's PCR values (--pcrs), not a TPM event log", tee.ErrNoEventLog)
}

// banks are the PCR banks check reads, by algorithm.
var banks = map[tpm2.TPMIAlgHash]struct {
	name string
	new  func() hash.Hash
}{
	tpm2.TPMAlgSHA1: {"sha1", sha1.New}, tpm2.TPMAlgSHA256: {"sha256", sha256.New},
	tpm2.TPMAlgSHA384: {"sha384", sha512.New384}, tpm2.TPMAlgSHA512: {"sha512", sha512.New},
}

func bankName(a tpm2.TPMIAlgHash) string { return banks[a].name }

func bankSize(a tpm2.TPMIAlgHash) int { return banks[a].new().Size() }

// selected are the PCR numbers a selection selects, ascending.
func selected(s tpm2.TPMSPCRSelection) []int {
	var out []int
	for i, b := range s.PCRSelect {
		for bit := range 8 {
			if b&(1<<bit) != 0 {
				out = append(out, i*8+bit)
			}
		}
	}
	return out
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

// pcrValue is one quoted PCR.
type pcrValue struct {
	bank  tpm2.TPMIAlgHash
	index int
	value []byte
}

// Sizes of tpm2-tools' serialized PCR values file (tpm2_quote -o, the
// default -F serialized): the C structures written as they lie in memory on
// a little-endian host. TPML_PCR_SELECTION is a count and 16
// TPMS_PCR_SELECTION of 8 bytes (hash, sizeofSelect, pcrSelect[4], one
// byte of padding); a UINT32 count of TPML_DIGEST follows, then each
// TPML_DIGEST: a count and 8 TPM2B_DIGEST of 66 bytes (size and a
// 64-byte buffer).
const (
	serialSelection = 4 + 16*8
	serialDigestSet = 4 + 8*66
)

// ParsePCRValues reads the PCR values of a quote from b: tpm2-tools'
// serialized format (tpm2_quote -o, -F serialized), whose selection must be
// the quote's, or the values alone (-F values), concatenated in the order
// of the quote's selection.
func ParsePCRValues(q *Quote, b []byte) ([]pcrValue, error) {
	var want []pcrValue
	total := 0
	for _, s := range q.Info.PCRSelect.PCRSelections {
		for _, i := range selected(s) {
			want = append(want, pcrValue{bank: s.Hash, index: i})
			total += bankSize(s.Hash)
		}
	}
	if len(b) == total {
		for i := range want {
			n := bankSize(want[i].bank)
			want[i].value, b = b[:n], b[n:]
		}
		return want, nil
	}
	if len(b) < serialSelection+4 {
		return nil, fmt.Errorf("%d bytes: neither the %d bytes of the quoted PCRs' values nor a serialized PCR values file", len(b), total)
	}
	le := binary.LittleEndian
	n := le.Uint32(b)
	if n > 16 {
		return nil, fmt.Errorf("a serialized PCR selection of %d banks (at most 16)", n)
	}
	var sel []tpm2.TPMSPCRSelection
	for i := range int(n) {
		e := b[4+8*i:]
		size := int(e[2])
		if size > 4 {
			return nil, fmt.Errorf("serialized PCR selection %d: sizeofSelect %d (at most 4)", i, size)
		}
		sel = append(sel, tpm2.TPMSPCRSelection{Hash: tpm2.TPMIAlgHash(le.Uint16(e)), PCRSelect: slices.Clone(e[3 : 3+size])})
	}
	if !sameSelection(sel, q.Info.PCRSelect.PCRSelections) {
		return nil, errors.New("the PCR values file selects other PCRs than the quote")
	}
	sets := int(le.Uint32(b[serialSelection:]))
	rest := b[serialSelection+4:]
	if sets > 64 || len(rest) != sets*serialDigestSet {
		return nil, fmt.Errorf("%d serialized digest lists in %d bytes: want %d bytes each", sets, len(rest), serialDigestSet)
	}
	var vals [][]byte
	for s := range sets {
		d := rest[s*serialDigestSet:]
		c := int(le.Uint32(d))
		if c > 8 {
			return nil, fmt.Errorf("serialized digest list %d: %d digests (at most 8)", s, c)
		}
		for j := range c {
			e := d[4+66*j:]
			size := int(le.Uint16(e))
			if size > 64 {
				return nil, fmt.Errorf("serialized digest list %d: digest %d of %d bytes", s, j, size)
			}
			vals = append(vals, slices.Clone(e[2:2+size]))
		}
	}
	if len(vals) != len(want) {
		return nil, fmt.Errorf("%d PCR values for %d quoted PCRs", len(vals), len(want))
	}
	for i := range want {
		if len(vals[i]) != bankSize(want[i].bank) {
			return nil, fmt.Errorf("PCR %s:%d: a value of %d bytes", bankName(want[i].bank), want[i].index, len(vals[i]))
		}
		want[i].value = vals[i]
	}
	return want, nil
}

// sameSelection compares PCR selections, ignoring trailing zero bytes of a
// selection's bitmap.
func sameSelection(a, b []tpm2.TPMSPCRSelection) bool {
	if len(a) != len(b) {
		return false
	}
	trim := func(s []byte) []byte {
		for len(s) > 0 && s[len(s)-1] == 0 {
			s = s[:len(s)-1]
		}
		return s
	}
	for i := range a {
		if a[i].Hash != b[i].Hash || !bytes.Equal(trim(a[i].PCRSelect), trim(b[i].PCRSelect)) {
			return false
		}
	}
	return true
}

// digestAlgs are the hashes a quote's PCR digest may be made with (that
// of the signing key's scheme), by digest size.
var digestAlgs = map[int]func() hash.Hash{20: sha1.New, 32: sha256.New, 48: sha512.New384, 64: sha512.New}

// checkDigest says whether the PCR values hash to the quote's PCR digest:
// the digest of their concatenation in the selection's order (TPM 2.0
// Part 3, TPM2_Quote), with the hash its size names.
func checkDigest(q *Quote, vals []pcrValue) error {
	newHash, ok := digestAlgs[len(q.Info.PCRDigest.Buffer)]
	if !ok {
		return fmt.Errorf("a PCR digest of %d bytes, of no hash check knows", len(q.Info.PCRDigest.Buffer))
	}
	h := newHash()
	for _, v := range vals {
		h.Write(v.value)
	}
	if got := h.Sum(nil); !bytes.Equal(got, q.Info.PCRDigest.Buffer) {
		return fmt.Errorf("the PCR values hash to %x, the quote's PCR digest is %x: they are not the values the TPM quoted", got, q.Info.PCRDigest.Buffer)
	}
	return nil
}

// pcrMeaning says what a PCR of cocobuild's entries holds, for a mismatch.
var pcrMeaning = map[int]string{
	4:  "the boot applications' Authenticode digests (another UKI binary, or other boot options tried before it)",
	7:  "the Secure Boot state and the certificates that verified the boot (Secure Boot on, or other keys)",
	9:  "what the stub and kernel loaded (another command line in LoadOptions, or another initrd)",
	11: "the UKI's sections (another kernel, initrd, cmdline or os-release) or the systemd-pcrphase phase",
}

// Check implements tee.Checker: the PCR values (CheckInput.PCRValues) must
// hash to the quote's PCR digest; their SHA-256 bank is then compared
// with each entry's published PCRs.
func (TEE) Check(_ context.Context, ev tee.Evidence, in tee.CheckInput) (*tee.CheckResult, error) {
	q, ok := ev.(*Quote)
	if !ok {
		return nil, fmt.Errorf("not a TPM quote: %T", ev)
	}
	if len(in.PCRValues) == 0 {
		return nil, fmt.Errorf("%w: a TPM quote holds only a digest of its PCRs: give their values (tpm2_quote -o FILE) with --pcrs FILE", tee.ErrUnreadable)
	}
	if len(in.Entries) == 0 {
		return nil, errors.New("the reference values hold no tpm entries to compare the quote with")
	}
	vals, err := ParsePCRValues(q, in.PCRValues)
	if err != nil {
		return nil, fmt.Errorf("%w: PCR values: %w", tee.ErrUnreadable, err)
	}
	res := &tee.CheckResult{}
	got := map[string]string{}
	for _, v := range vals {
		res.Evidence = append(res.Evidence, tee.Field{Name: fmt.Sprintf("%s:%d", bankName(v.bank), v.index), Got: hex.EncodeToString(v.value)})
		if v.bank == tpm2.TPMAlgSHA256 {
			got[fmt.Sprintf("pcr%d", v.index)] = hex.EncodeToString(v.value)
		}
	}
	nonceNote := "the verifier's nonce, never a reference value"
	if in.Quote != nil && in.Quote.Nonce != nil {
		nonceNote = "the verifier's nonce: compared with --nonce"
	}
	res.Evidence = append(res.Evidence, tee.Field{Name: "extra_data", Got: hex.EncodeToString(q.Attest.ExtraData.Buffer), Note: nonceNote})
	reason, err := checkQuoteSignature(q, in, res)
	if err != nil {
		return nil, err
	}
	if reason != "" {
		res.Reasons, res.Explained = []string{reason}, true
		return res, nil
	}
	if in.Quote != nil && in.Quote.Nonce != nil {
		if err := checkNonce(q, in.Quote.Nonce); err != nil {
			res.Reasons, res.Explained = []string{err.Error()}, true
			return res, nil
		}
	}
	if err := checkDigest(q, vals); err != nil {
		res.Reasons, res.Explained = []string{err.Error()}, true
		return res, nil
	}
	if !res.SignatureChecked {
		res.Unvouched = append(res.Unvouched, "the quote's signature (by the TPM's attestation key) is not checked: the PCR values are those of the quote, not proven to come from a TPM; give --signature and --ak")
	} else {
		res.Unvouched = append(res.Unvouched, "the attestation key is taken as given: that it lives in a genuine TPM (its endorsement key's certificate, tpm2_makecredential) is not checked")
	}
	best, bestDiff := -1, 0
	var bestFields []tee.Field
	for i, e := range in.Entries {
		fields, differ := comparePCRs(got, e)
		if differ == 0 {
			res.Match, res.Fields = true, fields
			res.SetEntry(e)
			return res, nil
		}
		if best < 0 || differ < bestDiff {
			best, bestDiff, bestFields = i, differ, fields
		}
	}
	res.SetEntry(in.Entries[best])
	res.Fields = bestFields
	for _, f := range bestFields {
		if f.Status != tee.FieldDiffers {
			continue
		}
		var n int
		fmt.Sscanf(strings.TrimPrefix(f.Name, "tpm_pcr"), "%d", &n)
		if f.Got == "" {
			res.Reasons = append(res.Reasons, fmt.Sprintf("PCR %d is published but not quoted: quote it (tpm2_quote -l sha256:...,%d)", n, n))
			continue
		}
		m := pcrMeaning[n]
		if m == "" {
			m = "what the boot measured into it"
		}
		res.Reasons = append(res.Reasons, fmt.Sprintf("PCR %d differs: it holds %s", n, m))
	}
	res.Explained = len(res.Reasons) > 0
	return res, nil
}

// checkQuoteSignature checks the quote's signature with the attestation
// key when both are given (res.SignatureChecked, res.Signature). It
// returns why the quote is refused, or "", and an error (tee.ErrUnreadable)
// for a key or signature file that does not parse.
func checkQuoteSignature(q *Quote, in tee.CheckInput, res *tee.CheckResult) (string, error) {
	var sig, ak []byte
	name := "the attestation key"
	if in.Quote != nil {
		sig, ak = in.Quote.Signature, in.Quote.AK
		if in.Quote.AKName != "" {
			name = in.Quote.AKName
		}
	}
	switch {
	case sig == nil && ak == nil:
		if in.Signature != nil {
			res.Signature = []string{"the quote's signature is not checked: give it (tpm2_quote -s) with --signature and the attestation key with --ak"}
			return "--verify-evidence: a TPM quote's signature needs --signature and --ak", nil
		}
		return "", nil
	case sig == nil || ak == nil:
		return "", fmt.Errorf("%w: a TPM quote's signature needs both --signature (tpm2_quote -s) and --ak (the attestation key)", tee.ErrUnreadable)
	}
	key, err := ParseAttestationKey(ak)
	if err != nil {
		return "", fmt.Errorf("%w: --ak %s: %w", tee.ErrUnreadable, name, err)
	}
	s, err := ParseQuoteSignature(sig)
	if err != nil {
		return "", fmt.Errorf("%w: --signature: %w", tee.ErrUnreadable, err)
	}
	scheme, err := VerifyQuoteSignature(key, q.Raw, s)
	if err != nil {
		res.Signature = []string{fmt.Sprintf("FAILED with %s (%s): %v", name, key.Format, err)}
		return fmt.Sprintf("the quote's signature does not verify with %s: %v", name, err), nil
	}
	res.SignatureChecked = true
	res.Signature = []string{fmt.Sprintf("the quote's %s signature verifies with %s (%s)", scheme, name, key.Format)}
	return "", nil
}

// comparePCRs compares the quoted SHA-256 PCRs with an entry's, in PCR
// order; a PCR the entry publishes and the quote lacks differs.
func comparePCRs(got map[string]string, e tee.CheckEntry) ([]tee.Field, int) {
	var idx []uint64
	for k := range e.Values {
		if n, ok := pcrKey(k); ok {
			idx = append(idx, n)
		}
	}
	slices.Sort(idx)
	var out []tee.Field
	differ := 0
	for _, n := range idx {
		k := fmt.Sprintf("pcr%d", n)
		f := tee.Field{Name: "tpm_" + k, Got: got[k], Want: []string{e.Values[k]}, Status: tee.FieldMatch}
		if got[k] != e.Values[k] {
			f.Status = tee.FieldDiffers
			differ++
		}
		out = append(out, f)
	}
	if len(idx) == 0 {
		differ = 1 // an entry without PCRs explains nothing
	}
	return out, differ
}
