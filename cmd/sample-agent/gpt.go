package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// guidString renders a GPT GUID (mixed-endian on disk) as text.
func guidString(b []byte) string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", binary.LittleEndian.Uint32(b[0:4]), binary.LittleEndian.Uint16(b[4:6]),
		binary.LittleEndian.Uint16(b[6:8]), b[8:10], b[10:16])
}

// gptPartition returns the number (1-based) of the partition whose unique
// GUID is partUUID in the GPT of disk, whose logical blocks are lbaSize
// bytes; 0 when the disk has a GPT without that partition.
func gptPartition(disk io.ReaderAt, lbaSize int64, partUUID string) (int, error) {
	if lbaSize < 512 || lbaSize > 1<<16 {
		return 0, fmt.Errorf("logical block size %d", lbaSize)
	}
	hdr := make([]byte, 92)
	if _, err := disk.ReadAt(hdr, lbaSize); err != nil {
		return 0, fmt.Errorf("reading the GPT header: %w", err)
	}
	if string(hdr[:8]) != "EFI PART" {
		return 0, errors.New("no GPT")
	}
	entriesLBA := binary.LittleEndian.Uint64(hdr[72:])
	count := binary.LittleEndian.Uint32(hdr[80:])
	size := binary.LittleEndian.Uint32(hdr[84:])
	if size < 128 || size > 4096 || count > 1024 || entriesLBA > 1<<40 {
		return 0, fmt.Errorf("implausible GPT: %d entries of %d bytes at LBA %d", count, size, entriesLBA)
	}
	want := strings.ToLower(partUUID)
	e := make([]byte, size)
	for i := uint32(0); i < count; i++ {
		if _, err := disk.ReadAt(e, int64(entriesLBA)*lbaSize+int64(i)*int64(size)); err != nil {
			return 0, fmt.Errorf("reading GPT entry %d: %w", i, err)
		}
		if guidString(e[16:32]) == want {
			return int(i) + 1, nil
		}
	}
	return 0, nil
}
