package pcr

import (
	"encoding/hex"
	"testing"
)

// TestPCR7SecureBootOff: the events and value of PCR 7 that Debian 12's
// OVMF (2022.11, OVMF_CODE_4M.fd with OVMF_VARS_4M.fd, Secure Boot off)
// measured in a real boot under QEMU with swtpm (uki's TestUKIBootPCRs),
// read from the guest's /sys/kernel/security/tpm0/binary_bios_measurements
// and /sys/class/tpm/tpm0/pcr-sha256/7.
func TestPCR7SecureBootOff(t *testing.T) {
	b, _ := ParseBank("sha256")
	want := []string{
		"115aa827dbccfb44d216ad9ecfda56bdea620b860a94bed5b7a27bba1c4d02d8", // SecureBoot
		"dea7b80ab53a3daaa24d5cc46c64e1fa9ffd03739f90aadbd8c0867c4a5b4890", // PK
		"e670e121fcebd473b8bc41bb801301fc1d9afa33904f06f7149b74f12c47a68f", // KEK
		"baf89a3ccace52750c5f0128351e0422a41597a1adfd50822aa363b9d124ea7c", // db
		"9f75b6823bff6af1024a4e2036719cdd548d3cbc2bf1de8e7ef4d0ed01f94bf9", // dbx
		"df3f619804a92fdb4057192dc43dd748ea778adc52bc498ce80524c014b81119", // separator
	}
	evs := secureBootOffEvents(b)
	if len(evs) != len(want) {
		t.Fatalf("%d events, want %d", len(evs), len(want))
	}
	for i, e := range evs {
		if got := hex.EncodeToString(e.Digest); got != want[i] {
			t.Errorf("event %d (%s): %s, want the firmware's %s", i, e.Description, got, want[i])
		}
	}
	if got, want := hex.EncodeToString(Replay(b, evs)), "65caf8dd1e0ea7a6347b635d2b379c93b9a1351edc2afc3ecda700e534eb3068"; got != want {
		t.Errorf("PCR 7 = %s, want the guest's %s", got, want)
	}
}

// TestActionDigests: edk2's PCR 4 actions as the real boot's log has them.
func TestActionDigests(t *testing.T) {
	b, _ := ParseBank("sha256")
	for s, want := range map[string]string{
		actionCalling:   "3d6772b4f84ed47595d72a2c4c5ffd15f5bb72c7507fe26f2aaee2c69d5633ba",
		actionReturning: "7044f06303e54fa96c3fcd1a0f11047c03d209074470b1fd60460c9f007e28a6",
	} {
		if got := hex.EncodeToString(digest(b, []byte(s))); got != want {
			t.Errorf("%q: %s, want %s", s, got, want)
		}
	}
}

func TestLoadOptions(t *testing.T) {
	b, _ := ParseBank("sha256")
	o, err := loadOptions([]byte("console=ttyS0 panic=-1"))
	if err != nil {
		t.Fatal(err)
	}
	// The digest of the LOADED_IMAGE::LoadOptions event of the real boot.
	if got, want := hex.EncodeToString(digest(b, o)), "cd773142715a513b8406e91e9b1c18c1917791d3801c3cb15b19ca73b0c2d66d"; got != want {
		t.Errorf("LoadOptions digest %s, want %s", got, want)
	}
	if _, err := loadOptions([]byte("a\nb")); err == nil {
		t.Error("a cmdline with a newline: no error, want one (not modelled)")
	}
}
