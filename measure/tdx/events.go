package tdx

import (
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// EventType is a TCG PC Client event type.
type EventType uint32

// Event types that appear in a TDX guest's firmware event log.
const (
	EvNoAction                   EventType = 0x00000003
	EvSeparator                  EventType = 0x00000004
	EvEventTag                   EventType = 0x00000006
	EvPlatformConfigFlags        EventType = 0x0000000a
	EvEFIVariableDriverConfig    EventType = 0x80000001
	EvEFIVariableBoot            EventType = 0x80000002
	EvEFIBootServicesApplication EventType = 0x80000003
	EvEFIAction                  EventType = 0x80000007
	EvEFIPlatformFirmwareBlob2   EventType = 0x8000000a
	EvEFIHandoffTables2          EventType = 0x8000000b
)

var eventTypeNames = map[EventType]string{
	EvNoAction:                   "EV_NO_ACTION",
	EvSeparator:                  "EV_SEPARATOR",
	EvEventTag:                   "EV_EVENT_TAG",
	EvPlatformConfigFlags:        "EV_PLATFORM_CONFIG_FLAGS",
	EvEFIVariableDriverConfig:    "EV_EFI_VARIABLE_DRIVER_CONFIG",
	EvEFIVariableBoot:            "EV_EFI_VARIABLE_BOOT",
	EvEFIBootServicesApplication: "EV_EFI_BOOT_SERVICES_APPLICATION",
	EvEFIGPTEvent:                "EV_EFI_GPT_EVENT",
	EvEFIAction:                  "EV_EFI_ACTION",
	EvEFIPlatformFirmwareBlob2:   "EV_EFI_PLATFORM_FIRMWARE_BLOB2",
	EvEFIHandoffTables2:          "EV_EFI_HANDOFF_TABLES2",
}

// String returns the TCG name, or the hex value for unknown types.
func (t EventType) String() string {
	if n, ok := eventTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("0x%08x", uint32(t))
}

// MarshalText returns the TCG name.
func (t EventType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// HexBytes marshals to lowercase hex in JSON.
type HexBytes []byte

// MarshalText returns lowercase hex.
func (b HexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(b)), nil }

// Event is one measurement the firmware or the kernel's EFI stub extends
// into an RTMR, as it appears in the CC event log.
type Event struct {
	// RTMR is the register index (0-3); the event log's MR index is RTMR+1.
	RTMR        int       `json:"rtmr"`
	Type        EventType `json:"type"`
	Description string    `json:"description"`
	Digest      Digest    `json:"digest"`
	// Data is the event data as logged. Some of it (load addresses) is only
	// known at run time; such fields are zero here. The digest never covers
	// them.
	Data HexBytes `json:"data"`
}

// MRIndex returns the CC measurement register index of the event log
// (MRTD is 0, RTMR0 is 1, ...).
func (e Event) MRIndex() uint32 { return uint32(e.RTMR) + 1 }

// Replay extends a zero RTMR with each digest in turn:
// RTMR = SHA384(RTMR || digest).
func Replay(digests ...Digest) Digest {
	var r Digest
	var buf [2 * DigestSize]byte
	for _, d := range digests {
		copy(buf[:DigestSize], r[:])
		copy(buf[DigestSize:], d[:])
		r = sha512.Sum384(buf[:])
	}
	return r
}

func sha384(parts ...[]byte) Digest {
	h := sha512.New384()
	for _, p := range parts {
		h.Write(p)
	}
	var d Digest
	h.Sum(d[:0])
	return d
}

// TCG algorithm ID of SHA-384.
const algSHA384 = 0x000c

// EventLog encodes events as a CC event log (CCEL) as TDVF's TdTcg2Dxe
// writes it: the TCG PC Client crypto-agile format with a Spec ID event
// (PCRIndex 1) declaring SHA-384 only, then one TCG_PCR_EVENT2 per event, in
// the order given, whose PCRIndex is the CC MR index (RTMR+1).
func EventLog(events []Event) []byte {
	// Spec ID event (TCG_EfiSpecIDEventStruct) in the SHA-1 log format.
	spec := []byte("Spec ID Event03\x00")
	spec = binary.LittleEndian.AppendUint32(spec, 0) // platformClass: client
	spec = append(spec, 0, 2, 0, 2)                  // specVersionMinor, Major, specErrata, uintnSize (UINT64)
	spec = binary.LittleEndian.AppendUint32(spec, 1) // numberOfAlgorithms
	spec = binary.LittleEndian.AppendUint16(spec, algSHA384)
	spec = binary.LittleEndian.AppendUint16(spec, DigestSize)
	spec = append(spec, 0) // vendorInfoSize

	// TdTcg2Dxe logs the Spec ID event with PCRIndex 1 (MR index 1, RTMR0).
	b := binary.LittleEndian.AppendUint32(nil, 1)
	b = binary.LittleEndian.AppendUint32(b, uint32(EvNoAction))
	b = append(b, make([]byte, 20)...) // SHA-1 digest: zero
	b = binary.LittleEndian.AppendUint32(b, uint32(len(spec)))
	b = append(b, spec...)
	for _, e := range events {
		b = binary.LittleEndian.AppendUint32(b, e.MRIndex())
		b = binary.LittleEndian.AppendUint32(b, uint32(e.Type))
		b = binary.LittleEndian.AppendUint32(b, 1) // digest count
		b = binary.LittleEndian.AppendUint16(b, algSHA384)
		b = append(b, e.Digest[:]...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(e.Data)))
		b = append(b, e.Data...)
	}
	return b
}
