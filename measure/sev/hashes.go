package sev

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/cocobuild/cocobuild/measure/ovmf"
)

// GUIDs of the SEV hashes table and its entries, as QEMU (target/i386/sev.c)
// writes them and edk2's BlobVerifierLibSevHashes reads them.
var (
	HashTableHeaderGUID  = ovmf.MustGUID("9438d606-4f22-4cc9-b479-a793d411fd21")
	HashTableKernelGUID  = ovmf.MustGUID("4de79437-abd2-427f-b835-d5b172d2045b")
	HashTableInitrdGUID  = ovmf.MustGUID("44baf731-3a2f-4bd7-9af1-41e29169781d")
	HashTableCmdlineGUID = ovmf.MustGUID("97d02dd8-bd20-4c94-aa78-e7714d36ab2a")
)

const (
	hashEntryHeaderSize = 16 + 2 // GUID, u16 length
	hashEntrySize       = hashEntryHeaderSize + sha256.Size
	// HashTableSize is the length field of the SEV hashes table: its header
	// and the cmdline, initrd and kernel entries.
	HashTableSize = hashEntryHeaderSize + 3*hashEntrySize
	// PaddedHashTableSize is HashTableSize rounded up to 16 bytes, the size
	// QEMU writes into guest memory and SEV/SEV-ES measure.
	PaddedHashTableSize = (HashTableSize + 15) &^ 15
)

// HashTable holds the SHA-256 digests that QEMU puts in the SEV hashes table
// for measured direct boot, and OVMF checks before it runs the kernel.
type HashTable struct {
	Cmdline [sha256.Size]byte // SHA-256 of the command line and its terminating NUL
	Initrd  [sha256.Size]byte // SHA-256 of the initrd (of nothing when there is none)
	Kernel  [sha256.Size]byte // SHA-256 of the kernel file
}

// NewHashTable returns the hashes table for a kernel, initrd (nil for none)
// and command line, as QEMU computes it: the command line is hashed with its
// terminating NUL, and an empty command line is a single NUL.
func NewHashTable(kernel, initrd []byte, cmdline string) (HashTable, error) {
	if err := checkCmdline(cmdline); err != nil {
		return HashTable{}, err
	}
	var t HashTable
	t.Kernel = sha256.Sum256(kernel)
	t.Initrd = sha256.Sum256(initrd)
	h := sha256.New()
	h.Write([]byte(cmdline))
	h.Write([]byte{0})
	h.Sum(t.Cmdline[:0])
	return t, nil
}

// checkCmdline refuses a command line QEMU would cut at a NUL byte.
func checkCmdline(cmdline string) error {
	if i := strings.IndexByte(cmdline, 0); i >= 0 {
		return fmt.Errorf("kernel command line has a NUL byte at offset %d: the kernel would see only what comes before it; remove it", i)
	}
	return nil
}

// Bytes returns the table as QEMU lays it out in guest memory, padded to
// PaddedHashTableSize: header GUID and length, then the cmdline, initrd and
// kernel entries (GUID, length, SHA-256).
func (t HashTable) Bytes() []byte {
	b := make([]byte, PaddedHashTableSize)
	t.put(b)
	return b
}

// put writes the padded table into b, which must hold PaddedHashTableSize bytes.
func (t HashTable) put(b []byte) {
	copy(b[0:16], HashTableHeaderGUID[:])
	binary.LittleEndian.PutUint16(b[16:18], HashTableSize)
	off := hashEntryHeaderSize
	for _, e := range []struct {
		guid ovmf.GUID
		hash *[sha256.Size]byte
	}{
		{HashTableCmdlineGUID, &t.Cmdline},
		{HashTableInitrdGUID, &t.Initrd},
		{HashTableKernelGUID, &t.Kernel},
	} {
		copy(b[off:off+16], e.guid[:])
		binary.LittleEndian.PutUint16(b[off+16:off+18], hashEntrySize)
		copy(b[off+18:off+hashEntrySize], e.hash[:])
		off += hashEntrySize
	}
	clear(b[HashTableSize:PaddedHashTableSize])
}

// ParseHashTable decodes an SEV hashes table (for example one read back from
// a dumped guest page) the way OVMF's BlobVerifierLibSevHashes walks it: a
// header GUID and total length, then GUIDed entries. Entries with unknown
// GUIDs are skipped; each of cmdline, initrd and kernel must appear exactly
// once with a 32-byte hash. It never panics.
func ParseHashTable(b []byte) (HashTable, error) {
	var t HashTable
	if len(b) < hashEntryHeaderSize {
		return t, fmt.Errorf("SEV hashes table: %d bytes is shorter than its %d-byte header", len(b), hashEntryHeaderSize)
	}
	if ovmf.GUID(b[0:16]) != HashTableHeaderGUID {
		return t, fmt.Errorf("SEV hashes table: header GUID is %s, want %s", ovmf.GUID(b[0:16]), HashTableHeaderGUID)
	}
	n := int(binary.LittleEndian.Uint16(b[16:18]))
	if n < hashEntryHeaderSize || n > len(b) {
		return t, fmt.Errorf("SEV hashes table: length %d is outside %d..%d", n, hashEntryHeaderSize, len(b))
	}
	seen := map[ovmf.GUID]bool{}
	rest := b[hashEntryHeaderSize:n]
	for len(rest) > 0 {
		if len(rest) < hashEntryHeaderSize {
			return t, fmt.Errorf("SEV hashes table: %d trailing bytes are too short for an entry header", len(rest))
		}
		g := ovmf.GUID(rest[0:16])
		el := int(binary.LittleEndian.Uint16(rest[16:18]))
		if el < hashEntryHeaderSize || el > len(rest) {
			return t, fmt.Errorf("SEV hashes table: entry %s has length %d, outside %d..%d", g, el, hashEntryHeaderSize, len(rest))
		}
		var dst *[sha256.Size]byte
		switch g {
		case HashTableCmdlineGUID:
			dst = &t.Cmdline
		case HashTableInitrdGUID:
			dst = &t.Initrd
		case HashTableKernelGUID:
			dst = &t.Kernel
		}
		if dst != nil {
			if seen[g] {
				return t, fmt.Errorf("SEV hashes table: entry %s appears twice", g)
			}
			seen[g] = true
			if el != hashEntrySize {
				return t, fmt.Errorf("SEV hashes table: entry %s has length %d, want %d (a SHA-256)", g, el, hashEntrySize)
			}
			copy(dst[:], rest[hashEntryHeaderSize:el])
		}
		rest = rest[el:]
	}
	var missing []string
	for _, e := range []struct {
		name string
		guid ovmf.GUID
	}{{"cmdline", HashTableCmdlineGUID}, {"initrd", HashTableInitrdGUID}, {"kernel", HashTableKernelGUID}} {
		if !seen[e.guid] {
			missing = append(missing, e.name)
		}
	}
	if len(missing) > 0 {
		return t, errors.New("SEV hashes table: no entry for " + strings.Join(missing, ", "))
	}
	return t, nil
}
