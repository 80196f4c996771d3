package ovmf

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// volumeImage is a size-byte image holding one empty firmware volume at
// offset at, with a header as edk2 writes it (checksummed).
func volumeImage(size, at int) []byte {
	b := make([]byte, size)
	fv := b[at:]
	ffs2 := MustGUID("8c8ce578-8a3d-4f1c-9935-896185c32dd3")
	copy(fv[16:32], ffs2[:])
	binary.LittleEndian.PutUint64(fv[32:40], uint64(size-at))
	copy(fv[40:44], "_FVH")
	binary.LittleEndian.PutUint16(fv[48:50], 72) // fixed header, one block map entry and its terminator
	binary.LittleEndian.PutUint32(fv[56:60], uint32((size-at)/512))
	binary.LittleEndian.PutUint32(fv[60:64], 512)
	var sum uint16
	for i := 0; i < 72; i += 2 {
		sum += binary.LittleEndian.Uint16(fv[i:])
	}
	binary.LittleEndian.PutUint16(fv[50:52], -sum)
	return b
}

func TestRecognize(t *testing.T) {
	// Every firmware of the vectors is recognized: the Debian builds by
	// their volumes and footer tables, the 4 KiB suffixes and GCE's
	// synthetic images by their footer tables.
	for _, file := range []string{
		"inputs/debian12_OVMF.fd", "inputs/debian12_OVMF_CODE.fd", "inputs/debian12_OVMF_CODE_4M.fd",
		"inputs/debian-sid_OVMF.fd", "inputs/debian-sid_OVMF.amdsev.fd", "inputs/debian-sid_OVMF.inteltdx.ms.fd",
		"inputs/ovmf_AmdSev_suffix.bin", "inputs/ovmf_OvmfX64_suffix.bin",
		"inputs/gce_fake_CleanExample_0x1000.bin", "inputs/gce_fake_UnsignedSnp.bin",
	} {
		if err := Recognize(testenv.ReadVector(t, file)); err != nil {
			t.Errorf("Recognize(%s) = %v, want nil", file, err)
		}
	}
	// An image without a footer table is recognized by its volume: the
	// first volume of OVMF_CODE_4M (DXEFV, 0x348000 bytes; the footer table
	// is in the SEC volume after it).
	code := testenv.ReadVector(t, "inputs/debian12_OVMF_CODE_4M.fd")[:0x348000]
	if _, err := ParseFooterTable(code); !errors.Is(err, ErrNoFooterTable) {
		t.Fatalf("the first volume of OVMF_CODE_4M has a footer table (%v): the test needs one without", err)
	}
	if err := Recognize(code); err != nil {
		t.Errorf("Recognize(first volume of OVMF_CODE_4M) = %v, want nil", err)
	}
	if err := Recognize(volumeImage(8192, 4096)); err != nil {
		t.Errorf("Recognize(a checksummed volume at 4096) = %v, want nil", err)
	}

	badSum := volumeImage(8192, 0)
	badSum[70] ^= 1
	unaligned := append([]byte{0, 0, 0, 0}, volumeImage(8192, 0)...)
	tooLong := volumeImage(8192, 0)[:8000] // the header says 8192 bytes
	for _, tc := range []struct {
		name  string
		image []byte
	}{
		{"one byte", []byte{0x5a}},
		{"a page of zeros", make([]byte, 4096)},
		{"a kernel", testenv.ReadVector(t, "inputs/tiny-kernel.bin")},
		{"a signed bzImage", testenv.ReadVector(t, "inputs/vmlinuz-6.1.0-56-cloud-amd64")},
		{"an initrd", testenv.ReadVector(t, "inputs/tiny-initrd.cpio")},
		{"_FVH with a bad checksum", badSum},
		{"_FVH not 8-byte aligned", unaligned},
		{"a volume longer than the image", tooLong},
	} {
		if err := Recognize(tc.image); !errors.Is(err, ErrNotFirmware) {
			t.Errorf("Recognize(%s) = %v, want ErrNotFirmware", tc.name, err)
		}
	}
}

// FuzzRecognize: Recognize never panics, and an image it recognizes
// without a footer table has a firmware volume signature where fiano's
// scan finds one.
func FuzzRecognize(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x5a})
	f.Add(volumeImage(4096, 0))
	f.Add(volumeImage(8192, 4096))
	huge := volumeImage(4096, 0)
	binary.LittleEndian.PutUint64(huge[32:40], 1<<62) // a volume length far past the image
	f.Add(huge)
	f.Fuzz(func(t *testing.T, image []byte) {
		err := Recognize(image)
		if err != nil {
			return
		}
		if _, ferr := ParseFooterTable(image); ferr == nil {
			return
		}
		at := firmwareVolumeAt(image)
		if at < 0 || string(image[at+40:at+44]) != "_FVH" {
			t.Errorf("Recognize accepted an image without a footer table or a volume (volume at %d)", at)
		}
	})
}
