package ovmf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrNotFirmware reports an image that is not a firmware image this
// package recognizes: it has neither an OVMF footer table nor a firmware
// volume. Test with errors.Is.
var ErrNotFirmware = errors.New("not a UEFI firmware image: no OVMF footer table at its end and no firmware volume (\"_FVH\") in it; give an OVMF/edk2 .fd file")

// The fixed part of a firmware volume header (EFI_FIRMWARE_VOLUME_HEADER,
// PI specification vol. 3): ZeroVector[16], FileSystemGuid[16],
// FvLength u64 at 32, Signature "_FVH" at 40, Attributes u32, HeaderLength
// u16 at 48, Checksum u16 at 50, ExtHeaderOffset u16, Reserved u8,
// Revision u8, then the block map, ended by a zero entry of 8 bytes.
const (
	fvSignatureOffset = 40
	fvFixedHeaderSize = 56
	fvMinHeaderSize   = fvFixedHeaderSize + 8
)

// Recognize says whether image is a firmware image the measurement models
// know: one with an OVMF footer table (the SEV/TDX builds), or with at
// least one firmware volume whose header is consistent (its signature at an
// 8-byte aligned offset, a header length and volume length that fit, and a
// header checksum of zero, as edk2 writes it). It reads no more than the
// headers and decompresses nothing. An unrecognized image gives an error
// wrapping ErrNotFirmware; a corrupt footer table gives its own error.
func Recognize(image []byte) error {
	_, err := ParseFooterTable(image)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, ErrNoFooterTable):
		return err
	}
	if firmwareVolumeAt(image) >= 0 {
		return nil
	}
	return fmt.Errorf("%w (%d bytes)", ErrNotFirmware, len(image))
}

// firmwareVolumeAt returns the offset of the first consistent firmware
// volume header of image, or -1.
func firmwareVolumeAt(image []byte) int {
	sig := []byte("_FVH")
	for off := fvSignatureOffset; off+len(sig) <= len(image); off += 8 {
		if bytes.Equal(image[off:off+len(sig)], sig) && validVolumeHeader(image[off-fvSignatureOffset:]) {
			return off - fvSignatureOffset
		}
	}
	return -1
}

// validVolumeHeader checks the header of a firmware volume at the start of
// b: its lengths fit in b and its 16-bit words sum to zero.
func validVolumeHeader(b []byte) bool {
	if len(b) < fvMinHeaderSize {
		return false
	}
	length := binary.LittleEndian.Uint64(b[32:40])
	hdrLen := int(binary.LittleEndian.Uint16(b[48:50]))
	if hdrLen < fvMinHeaderSize || hdrLen%2 != 0 || uint64(hdrLen) > length || length > uint64(len(b)) {
		return false
	}
	var sum uint16
	for i := 0; i < hdrLen; i += 2 {
		sum += binary.LittleEndian.Uint16(b[i : i+2])
	}
	return sum == 0
}
