package ovmf

// Verdict is the part of Inspect's answer that the measure commands print
// with a measurement: whether the firmware checks directly booted blobs
// against the SEV hashes table, and whether it measures into RTMRs.
type Verdict struct {
	VerifiesDirectBoot bool   `json:"verifies_direct_boot"`
	DirectBootEvidence string `json:"direct_boot_evidence"`
	MeasuresRTMR       bool   `json:"measures_rtmr"`
	RTMREvidence       string `json:"rtmr_evidence"`
}

// VerdictOf returns Inspect's Verdict on fw. It depends on fw's bytes and
// ModelVersion only, so a caller may remember it by their digest (the
// measure commands do: decompressing the DXE volume takes a quarter of a
// second).
func VerdictOf(fw []byte) (Verdict, error) {
	info, err := Inspect(fw)
	if err != nil {
		return Verdict{}, err
	}
	return Verdict{VerifiesDirectBoot: info.VerifiesDirectBoot, DirectBootEvidence: info.DirectBootEvidence,
		MeasuresRTMR: info.MeasuresRTMR, RTMREvidence: info.RTMREvidence}, nil
}
