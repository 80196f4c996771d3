package tdx

import (
	"encoding/binary"
	"strings"
	"testing"
)

// TestGPTEventDataRefuses: no GPT, or an entry array beyond the bytes
// given, is an error; a header with one used entry of two gives the
// header, the count 1 and that entry. (The real data is checked against
// OVMF's own GPT event by uki's TestUKIBootPCRs.)
func TestGPTEventDataRefuses(t *testing.T) {
	if _, err := GPTEventData(make([]byte, 4096)); err == nil || !strings.Contains(err.Error(), "no GPT header") {
		t.Errorf("no GPT: %v", err)
	}
	disk := make([]byte, 4*512)
	copy(disk[512:], "EFI PART")
	le := binary.LittleEndian
	le.PutUint64(disk[512+72:], 2) // entries at LBA 2
	le.PutUint32(disk[512+80:], 8) // 8 entries of 128 bytes: 1024 bytes, to 3072
	le.PutUint32(disk[512+84:], 128)
	disk[1024+128] = 0xaa // entry 1 used
	got, err := GPTEventData(disk)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 92+8+128 || le.Uint64(got[92:]) != 1 || got[100] != 0xaa {
		t.Errorf("GPTEventData: %d bytes, count %d, entry starts %#x; want 228 bytes, 1, 0xaa", len(got), le.Uint64(got[92:]), got[100])
	}
	le.PutUint32(disk[512+80:], 64)
	if _, err := GPTEventData(disk); err == nil || !strings.Contains(err.Error(), "beyond") {
		t.Errorf("entries beyond the bytes given: %v", err)
	}
}
