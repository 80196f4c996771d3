package pcr

import (
	"crypto"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"

	"github.com/cocobuild/cocobuild/measure/pe"
)

// PCRs of the UKI boot path (TCG PC Client Platform Firmware Profile).
const (
	// BootApps holds the boot applications' Authenticode digests and
	// the boot manager's actions.
	BootApps = 4
	// SecureBootPolicy holds the Secure Boot state and the authorities
	// that verified the boot applications.
	SecureBootPolicy = 7
	// KernelData is where Linux's EFI stub measures its load options
	// and the initrd it loads (EV_EVENT_TAG).
	KernelData = 9
)

// Event types of the TCG PC Client event log that the model produces.
const (
	EvSeparator               = 0x4
	EvIPL                     = 0xd
	EvEventTag                = 0x6
	EvEFIVariableDriverConfig = 0x80000001
	EvEFIBootServicesApp      = 0x80000003
	EvEFIAction               = 0x80000007
)

// BootOptions describe a boot of a UKI from a disk's ESP by an edk2
// firmware (OVMF), with Secure Boot off unless SecureBoot is set.
type BootOptions struct {
	// UKI is the unified kernel image the firmware boots.
	UKI []byte
	// FailedBootOptions is the number of boot options the firmware
	// tried before the UKI's, which returned without starting an
	// image (QEMU's default CD-ROM drive without a medium is one): each
	// adds "Returning from EFI Application from Boot Option" and another
	// "Calling EFI Application from Boot Option" to PCR 4.
	FailedBootOptions int
	// SecureBoot, when not nil, is the state of a boot with Secure Boot
	// on; nil is Secure Boot off with no keys enrolled.
	SecureBoot *SecureBoot
}

// Firmware action strings edk2 measures into PCR 4 (EV_EFI_ACTION, the
// string without a NUL).
const (
	actionCalling   = "Calling EFI Application from Boot Option"
	actionReturning = "Returning from EFI Application from Boot Option"
)

// hashOf is the crypto.Hash of a bank, for Authenticode digests.
func hashOf(b Bank) crypto.Hash {
	return map[string]crypto.Hash{"sha1": crypto.SHA1, "sha256": crypto.SHA256, "sha384": crypto.SHA384, "sha512": crypto.SHA512}[b.Name]
}

// BootEvents returns the events of PCRs 4, 7, 9 and 11 of a UKI boot,
// by PCR, in the order they are measured:
//
//   - PCR 4: edk2's BDS at ReadyToBoot, "Calling EFI Application from
//     Boot Option", and the separator (PCRs 0-7 get theirs then); for each
//     failed boot option "Returning from …" and "Calling …" again; the
//     Authenticode digest of the UKI, which the firmware loads
//     (EV_EFI_BOOT_SERVICES_APPLICATION); the Authenticode digest of the
//     kernel (.linux), which systemd-stub 252 loads with LoadImage.
//   - PCR 7, Secure Boot off, variable store without keys (Debian's
//     OVMF_VARS): the variables SecureBoot (one byte, 0), PK, KEK, db and
//     dbx, empty (EV_EFI_VARIABLE_DRIVER_CONFIG), then the separator; no
//     authority is measured when nothing is verified. With
//     BootOptions.SecureBoot: SecureBoot 1 and the keys' contents, the
//     separator, then the db entry that verified the UKI
//     (EV_EFI_VARIABLE_AUTHORITY); PCR 4 then has no kernel event (see
//     secureBootOnEvents).
//   - PCR 9: Linux's EFI stub measures its LoadOptions (the command line
//     systemd-stub passes it: .cmdline as UTF-16LE with a NUL) and the
//     initrd it loads from systemd-stub (the .initrd section), as
//     EV_EVENT_TAG events "LOADED_IMAGE::LoadOptions" and "Linux initrd"
//     (Linux 6.1 and later).
//   - PCR 11: the sections systemd-stub measures (UKIEvents of
//     UKISections).
func BootEvents(b Bank, o BootOptions) (map[int][]Event, error) {
	secs, err := UKISections(o.UKI)
	if err != nil {
		return nil, err
	}
	pcr11, err := UKIEvents(b, secs)
	if err != nil {
		return nil, err
	}
	var linux, cmdline, initrd []byte
	for _, s := range secs {
		switch s.Name {
		case ".linux":
			linux = s.Data
		case ".cmdline":
			cmdline = s.Data
		case ".initrd":
			initrd = s.Data
		}
	}
	if linux == nil {
		return nil, errors.New("the UKI has no .linux section")
	}
	h := hashOf(b)
	ukiDigest, err := pe.Authenticode(o.UKI, h)
	if err != nil {
		return nil, fmt.Errorf("the UKI's Authenticode digest: %w", err)
	}
	kernelDigest, err := pe.Authenticode(linux, h)
	if err != nil {
		return nil, fmt.Errorf("the kernel's (.linux) Authenticode digest: %w", err)
	}
	sep := digest(b, make([]byte, 4))
	action := func(s string) Event {
		return Event{PCR: BootApps, Type: EvEFIAction, Description: s, Digest: digest(b, []byte(s))}
	}
	pcr4 := []Event{action(actionCalling), {PCR: BootApps, Type: EvSeparator, Description: "separator", Digest: sep}}
	for range o.FailedBootOptions {
		pcr4 = append(pcr4, action(actionReturning), action(actionCalling))
	}
	pcr4 = append(pcr4,
		Event{PCR: BootApps, Type: EvEFIBootServicesApp, Description: `UKI \EFI\BOOT\BOOTX64.EFI (Authenticode)`, Digest: ukiDigest})
	pcr7 := secureBootOffEvents(b)
	if o.SecureBoot != nil {
		// With Secure Boot on, systemd-stub 252 starts the kernel without
		// the firmware's LoadImage (observed under OVMF: no kernel event in
		// PCR 4, no second authority in PCR 7).
		pcr7 = secureBootOnEvents(b, o.SecureBoot)
	} else {
		pcr4 = append(pcr4, Event{PCR: BootApps, Type: EvEFIBootServicesApp, Description: "kernel .linux, loaded by systemd-stub (Authenticode)", Digest: kernelDigest})
	}

	var pcr9 []Event
	if len(cmdline) > 0 {
		opts, err := loadOptions(cmdline)
		if err != nil {
			return nil, err
		}
		pcr9 = append(pcr9, Event{PCR: KernelData, Type: EvEventTag, Description: "LOADED_IMAGE::LoadOptions", Digest: digest(b, opts)})
	}
	if len(initrd) > 0 {
		pcr9 = append(pcr9, Event{PCR: KernelData, Type: EvEventTag, Description: "Linux initrd", Digest: digest(b, initrd)})
	}
	for i := range pcr11 {
		pcr11[i].Type = EvIPL
	}
	return map[int][]Event{BootApps: pcr4, SecureBootPolicy: pcr7, KernelData: pcr9, KernelImage: pcr11}, nil
}

// secureBootOffEvents are PCR 7's events with Secure Boot off and no
// keys enrolled.
func secureBootOffEvents(b Bank) []Event {
	var evs []Event
	for _, v := range []struct {
		guid [16]byte
		name string
		data []byte
	}{
		{efiGlobalVariable, "SecureBoot", []byte{0}},
		{efiGlobalVariable, "PK", nil},
		{efiGlobalVariable, "KEK", nil},
		{efiImageSecurityDatabase, "db", nil},
		{efiImageSecurityDatabase, "dbx", nil},
	} {
		evs = append(evs, Event{PCR: SecureBootPolicy, Type: EvEFIVariableDriverConfig, Description: "variable " + v.name,
			Digest: digest(b, variableData(v.guid, v.name, v.data))})
	}
	return append(evs, Event{PCR: SecureBootPolicy, Type: EvSeparator, Description: "separator", Digest: digest(b, make([]byte, 4))})
}

// loadOptions are the LoadOptions systemd-stub gives the kernel for a
// .cmdline: its bytes as UTF-16LE code units, with a NUL. Only printable
// ASCII is modelled (the stubs of later releases mangle other bytes).
func loadOptions(cmdline []byte) ([]byte, error) {
	var u []uint16
	for _, c := range cmdline {
		if c < 0x20 || c > 0x7e {
			return nil, fmt.Errorf(".cmdline has the byte %#x: only printable ASCII command lines are modelled", c)
		}
		u = append(u, uint16(c))
	}
	u = append(u, 0)
	out := make([]byte, 0, 2*len(u))
	for _, c := range u {
		out = binary.LittleEndian.AppendUint16(out, c)
	}
	return out, nil
}

// EFI variable GUIDs, in their binary (mixed-endian) form.
var (
	efiGlobalVariable        = guid(0x8be4df61, 0x93ca, 0x11d2, [8]byte{0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c})
	efiImageSecurityDatabase = guid(0xd719b2cb, 0x3d3a, 0x4596, [8]byte{0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f})
)

func guid(a uint32, b, c uint16, d [8]byte) [16]byte {
	var g [16]byte
	binary.LittleEndian.PutUint32(g[0:], a)
	binary.LittleEndian.PutUint16(g[4:], b)
	binary.LittleEndian.PutUint16(g[6:], c)
	copy(g[8:], d[:])
	return g
}

// variableData is a UEFI_VARIABLE_DATA: the variable's GUID, the lengths
// of its name (in UTF-16 code units) and data, its name (UTF-16LE, no
// NUL) and its data.
func variableData(g [16]byte, name string, data []byte) []byte {
	n := utf16.Encode([]rune(name))
	out := append([]byte(nil), g[:]...)
	out = binary.LittleEndian.AppendUint64(out, uint64(len(n)))
	out = binary.LittleEndian.AppendUint64(out, uint64(len(data)))
	for _, c := range n {
		out = binary.LittleEndian.AppendUint16(out, c)
	}
	return append(out, data...)
}
