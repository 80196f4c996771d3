package tdx

import (
	"testing"

	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// TestCompareWithQuoteBody puts the expected measurements into a TD quote
// body, round-trips it through go-tdx-guest's ABI encoding, and compares
// what a verifier would read back.
func TestCompareWithQuoteBody(t *testing.T) {
	fw := testenv.ReadVector(t, "inputs/debian12_OVMF.fd")
	res, err := Measure(fw, Options{ACPI: syntheticACPI()})
	if err != nil {
		t.Fatal(err)
	}
	z := func(n int) []byte { return make([]byte, n) }
	body := &pb.TDQuoteBody{
		TeeTcbSvn: z(abi.TeeTcbSvnSize), MrSeam: z(abi.MrSeamSize), MrSignerSeam: z(48), SeamAttributes: z(8),
		TdAttributes: z(abi.TdAttributesSize), Xfam: z(abi.XfamSize), MrTd: res.MRTD[:],
		MrConfigId: z(abi.MrConfigIDSize), MrOwner: z(abi.MrOwnerSize), MrOwnerConfig: z(abi.MrOwnerConfigSize),
		ReportData: z(abi.ReportDataSize),
	}
	for i := range res.RTMR {
		body.Rtmrs = append(body.Rtmrs, append([]byte(nil), res.RTMR[i].Value[:]...))
	}
	raw, err := abi.TdQuoteBodyToAbiBytes(body)
	if err != nil {
		t.Fatalf("TdQuoteBodyToAbiBytes: %v", err)
	}
	// TD quote body v4 layout: MRTD at 0x88, RTMR0-3 at 0x148.
	mrtd := raw[0x88 : 0x88+abi.MrTdSize]
	var rtmrs [][]byte
	for i := 0; i < 4; i++ {
		rtmrs = append(rtmrs, raw[0x148+i*abi.RtmrSize:0x148+(i+1)*abi.RtmrSize])
	}
	if err := res.Compare(mrtd, rtmrs); err != nil {
		t.Errorf("Compare with the quote body's values: %v", err)
	}
	// RTMR1 is not computable without a kernel, so it is not compared;
	// RTMR0 is.
	rtmrs[1] = z(abi.RtmrSize)
	if err := res.Compare(mrtd, rtmrs); err != nil {
		t.Errorf("Compare compared the non-computable RTMR1: %v", err)
	}
	rtmrs[0] = append([]byte(nil), rtmrs[0]...)
	rtmrs[0][5] ^= 4
	if err := res.Compare(mrtd, rtmrs); err == nil {
		t.Errorf("Compare accepted an RTMR0 with one bit flipped")
	}
	if err := res.Compare(mrtd, rtmrs[:3]); err == nil {
		t.Errorf("Compare accepted three RTMRs")
	}
}
