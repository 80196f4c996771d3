package tdx

import (
	"bytes"
	"crypto"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cocobuild/cocobuild/measure/pcr"
	"github.com/cocobuild/cocobuild/measure/pe"
)

// EvEFIGPTEvent is EV_EFI_GPT_EVENT: the GPT of the disk an image is
// loaded from (PCR 5, RTMR1 in a TD).
const EvEFIGPTEvent EventType = 0x80000006

// GPTHeadSize is how much of a disk GPTEventData needs at most: the
// protective MBR, the header and the partition entry array (128 entries
// of 128 bytes fill 34 sectors; the header's limits allow up to 1024
// entries of up to 4 KiB after LBA 2, which the first MiB does not always
// hold, and GPTEventData says so).
const GPTHeadSize = 1 << 20

// GPTEventData returns the UEFI_GPT_DATA edk2's DxeTpm2MeasureBootLib
// (Tcg2MeasureGptTable) measures before the first image it loads from a
// GPT disk: the partition table header (the 92 bytes of
// EFI_PARTITION_TABLE_HEADER), the number of used entries as a UINT64,
// then each used entry (partition type GUID not zero), in table order.
// disk holds the disk's first sectors (512-byte sectors), at least up to
// the end of the partition entry array.
func GPTEventData(disk []byte) ([]byte, error) {
	const sector, hdrSize = 512, 92
	if len(disk) < 2*sector || !bytes.Equal(disk[sector:sector+8], []byte("EFI PART")) {
		return nil, errors.New("no GPT header at LBA 1")
	}
	h := disk[sector : sector+hdrSize]
	le := binary.LittleEndian
	entLBA, n, size := le.Uint64(h[72:]), le.Uint32(h[80:]), le.Uint32(h[84:])
	if size < 128 || size > 4096 || n > 1024 || entLBA > uint64(len(disk)/sector) {
		return nil, fmt.Errorf("GPT header: %d entries of %d bytes at LBA %d", n, size, entLBA)
	}
	start := int(entLBA) * sector
	end := start + int(n)*int(size)
	if end > len(disk) {
		return nil, fmt.Errorf("the GPT's partition entries end at %d, beyond the %d bytes given", end, len(disk))
	}
	var used [][]byte
	for i := range int(n) {
		e := disk[start+i*int(size) : start+(i+1)*int(size)]
		if !bytes.Equal(e[:16], make([]byte, 16)) {
			used = append(used, e)
		}
	}
	out := append([]byte(nil), h...)
	out = le.AppendUint64(out, uint64(len(used)))
	for _, e := range used {
		out = append(out, e...)
	}
	return out, nil
}

// UKIBoot describes a TD that boots a UKI from its disk's ESP
// (\EFI\BOOT\BOOTX64.EFI), as TDVF's boot manager does with no direct
// kernel boot.
type UKIBoot struct {
	// UKI is the image; Disk the disk's first sectors (for the GPT event).
	UKI, Disk []byte
	// FailedBootOptions are the boot options tried before the disk's
	// that return without starting an image.
	FailedBootOptions int
	// Separator is TDVF's separator placement (default SeparatorCurrent).
	Separator Separator
	// LinuxCC says the kernel's EFI stub measures its LoadOptions and
	// initrd through the CC measurement protocol (Linux 6.9 and later).
	LinuxCC bool
}

// ccStubSince is the first systemd release whose stub measures its
// sections through the CC measurement protocol when a TD has no TPM
// (into RTMR2); Debian 12's stub (252) uses the TCG2 protocol only.
const ccStubSince = 255

// UKIBootEvents returns the RTMR1 and RTMR2 events of a UKI boot, in log
// order (see docs/recipes.md, *A TD that boots a UKI*):
//
//  1. ReadyToBoot: "Calling EFI Application from Boot Option" and the
//     separator (RTMR1, or RTMR0 for legacy TDVF);
//  2. per failed boot option "Returning from EFI Application from Boot
//     Option" and "Calling EFI Application from Boot Option";
//  3. LoadImage of BOOTX64.EFI from the disk: the GPT (EV_EFI_GPT_EVENT,
//     PCR 5) then the UKI's SHA-384 Authenticode digest
//     (EV_EFI_BOOT_SERVICES_APPLICATION, PCR 4), both RTMR1;
//  4. systemd-stub: from 255 on its sections would go to RTMR2 (PCR 11)
//     — not modelled, an error; before (the stub's .sdmagic says which),
//     nothing;
//  5. systemd-stub 252 starts the kernel (.linux) with LoadImage: its
//     SHA-384 Authenticode digest (RTMR1);
//  6. with LinuxCC, the kernel's EFI stub: LoadOptions (.cmdline as
//     UTF-16LE with its NUL) and the initrd (.initrd), RTMR2 (PCR 9);
//  7. ExitBootServices: "Exit Boot Services Invocation" and "Exit Boot
//     Services Returned with Success" (PCR 5, RTMR1).
//
// Steps 1-3, 5 and 7 are the PCR 4 and 5 events OVMF logs for the same
// boot with a TPM (uki's boot test compares their SHA-384 digests with
// the guest's event log); their RTMR placement is TdTcg2Dxe's PCR-to-MR
// map. Unverified on a TD.
func UKIBootEvents(o UKIBoot) ([]Event, error) {
	v, err := pcr.StubVersion(o.UKI)
	if err != nil {
		return nil, fmt.Errorf("the UKI: %w", err)
	}
	if v >= ccStubSince {
		return nil, fmt.Errorf("the UKI's systemd-stub %d measures its sections into RTMR2 through the CC measurement protocol (systemd %d and later), which is not modelled: build the UKI with an older stub (Debian 12's systemd-boot-efi, 252)", v, ccStubSince)
	}
	f, err := pe.Parse(o.UKI)
	if err != nil {
		return nil, fmt.Errorf("the UKI: %w", err)
	}
	ukiD, err := f.Authenticode(crypto.SHA384)
	if err != nil {
		return nil, fmt.Errorf("the UKI: %w", err)
	}
	// The sections as the stub reads them (their virtual size, zero
	// padded), which is what it hands the kernel.
	secs, err := pcr.UKISections(o.UKI)
	if err != nil {
		return nil, fmt.Errorf("the UKI: %w", err)
	}
	sec := func(name string) []byte {
		for _, s := range secs {
			if s.Name == name {
				return s.Data
			}
		}
		return nil
	}
	linux := sec(".linux")
	if linux == nil {
		return nil, errors.New("the UKI has no .linux section")
	}
	kernelD, err := pe.Authenticode(linux, crypto.SHA384)
	if err != nil {
		return nil, fmt.Errorf("the kernel (.linux): %w", err)
	}
	gpt, err := GPTEventData(o.Disk)
	if err != nil {
		return nil, fmt.Errorf("the disk: %w", err)
	}
	var ev []Event
	ev = append(ev, efiAction(1, "Calling EFI Application from Boot Option"))
	if o.Separator == SeparatorLegacy {
		ev = append(ev, separatorEvent(0, "separator at ReadyToBoot (legacy TDVF logs it in RTMR0)"))
	} else {
		ev = append(ev, separatorEvent(1, "separator at ReadyToBoot"))
	}
	for range o.FailedBootOptions {
		ev = append(ev, efiAction(1, "Returning from EFI Application from Boot Option"), efiAction(1, "Calling EFI Application from Boot Option"))
	}
	var ud, kd Digest
	copy(ud[:], ukiD)
	copy(kd[:], kernelD)
	ev = append(ev,
		Event{RTMR: 1, Type: EvEFIGPTEvent, Digest: sha384(gpt), Data: gpt, Description: "GPT of the boot disk (PCR 5)"},
		Event{RTMR: 1, Type: EvEFIBootServicesApplication, Digest: ud, Description: `UKI \EFI\BOOT\BOOTX64.EFI, Authenticode SHA-384 (PCR 4)`},
		Event{RTMR: 1, Type: EvEFIBootServicesApplication, Digest: kd, Description: fmt.Sprintf("kernel .linux, loaded by systemd-stub %d, Authenticode SHA-384 (PCR 4)", v)})
	if o.LinuxCC {
		cmdline, initrd := sec(".cmdline"), sec(".initrd")
		if len(cmdline) > 0 {
			lo := widenASCII(string(cmdline))
			ev = append(ev, Event{RTMR: 2, Type: EvEventTag, Digest: sha384(lo), Data: taggedEventData(loadOptionsTagID, "LOADED_IMAGE::LoadOptions"),
				Description: "Linux EFI stub: LoadOptions (.cmdline as UTF-16LE with its NUL)"})
		}
		if len(initrd) > 0 {
			ev = append(ev, Event{RTMR: 2, Type: EvEventTag, Digest: sha384(initrd), Data: taggedEventData(initrdTagID, "Linux initrd"),
				Description: "Linux EFI stub: initrd (.initrd)"})
		}
	}
	return append(ev, efiAction(1, "Exit Boot Services Invocation"), efiAction(1, "Exit Boot Services Returned with Success")), nil
}
