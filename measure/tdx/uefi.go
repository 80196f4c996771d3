package tdx

import (
	"encoding/binary"
	"unicode/utf16"

	"github.com/cocobuild/cocobuild/measure/ovmf"
)

// UEFI GUIDs the event log refers to.
var (
	// efiGlobalVariableGUID owns SecureBoot, PK, KEK, BootOrder, Boot####.
	efiGlobalVariableGUID = ovmf.MustGUID("8be4df61-93ca-11d2-aa0d-00e098032b8c")
	// efiImageSecurityDatabaseGUID owns db and dbx.
	efiImageSecurityDatabaseGUID = ovmf.MustGUID("d719b2cb-3d3a-4596-a3bc-dad00e67656f")
	// ovmfPkgTokenSpaceGUID is the vendor GUID of the TD HOB handoff table.
	ovmfPkgTokenSpaceGUID = ovmf.MustGUID("93bb96af-b9f2-4eb8-9462-e0ba74564236")
	// ovmfDXEFVGUID names OVMF's DXE firmware volume, which holds UiApp.
	ovmfDXEFVGUID = ovmf.MustGUID("7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1")
	// uiAppFileGUID is the file GUID of MdeModulePkg's UiApp.
	uiAppFileGUID = ovmf.MustGUID("462caa21-7614-4503-836e-8ab6f4662331")
	// qemuKernelLoaderFsMediaGUID is the vendor media GUID under which OVMF's
	// QemuKernelLoaderFsDxe exposes the kernel from fw_cfg.
	qemuKernelLoaderFsMediaGUID = ovmf.MustGUID("1428f772-b64a-441e-b8c3-9ebdd7f893c7")
)

// utf16le encodes s as UTF-16LE without a terminator.
func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// widenASCII widens each byte of s to a UTF-16LE code unit, as OVMF does
// when it turns the fw_cfg command line into LoadOptions, and appends a
// U+0000 terminator.
func widenASCII(s string) []byte {
	b := make([]byte, 0, 2*len(s)+2)
	for i := 0; i < len(s); i++ {
		b = append(b, s[i], 0)
	}
	return append(b, 0, 0)
}

// uefiVariableData encodes UEFI_VARIABLE_DATA: VariableName GUID,
// UnicodeNameLength and VariableDataLength (u64), the name in UTF-16 without
// terminator, then the data.
func uefiVariableData(vendor ovmf.GUID, name string, data []byte) []byte {
	n := utf16le(name)
	b := make([]byte, 0, 32+len(n)+len(data))
	b = append(b, vendor[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(n)/2))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(data)))
	b = append(b, n...)
	return append(b, data...)
}

// Device path node types used here.
const (
	dpTypeMedia      = 0x04
	dpSubMediaFvFile = 0x06
	dpSubMediaFv     = 0x07
	dpSubVendor      = 0x03
	dpTypeEnd        = 0x7f
	dpSubEndEntire   = 0xff
)

func dpNode(typ, sub byte, data []byte) []byte {
	b := []byte{typ, sub, 0, 0}
	binary.LittleEndian.PutUint16(b[2:], uint16(4+len(data)))
	return append(b, data...)
}

func dpEnd() []byte { return dpNode(dpTypeEnd, dpSubEndEntire, nil) }

// Load option attributes (UEFI spec 3.1.3).
const (
	loadOptionActive      = 0x00000001
	loadOptionHidden      = 0x00000008
	loadOptionCategoryApp = 0x00000100
)

// efiLoadOption encodes an EFI_LOAD_OPTION.
func efiLoadOption(attrs uint32, description string, filePath []byte, optional []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, attrs)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(filePath)))
	b = append(b, utf16le(description)...)
	b = append(b, 0, 0)
	b = append(b, filePath...)
	return append(b, optional...)
}

// DefaultBoot0000 is the Boot0000 variable OVMF creates on a fresh variable
// store: the hidden, active "UiApp" application in the DXE firmware volume.
func DefaultBoot0000() []byte {
	fp := dpNode(dpTypeMedia, dpSubMediaFv, ovmfDXEFVGUID[:])
	fp = append(fp, dpNode(dpTypeMedia, dpSubMediaFvFile, uiAppFileGUID[:])...)
	fp = append(fp, dpEnd()...)
	return efiLoadOption(loadOptionActive|loadOptionHidden|loadOptionCategoryApp, "UiApp", fp, nil)
}

// DefaultBootOrder is the BootOrder that lists only Boot0000.
func DefaultBootOrder() []byte { return []byte{0, 0} }
