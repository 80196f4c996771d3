package tdx

import (
	"crypto"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"

	"github.com/cocobuild/cocobuild/measure/ovmf"
	"github.com/cocobuild/cocobuild/measure/pe"
)

// Separator says where TDVF logs the EV_SEPARATOR of ReadyToBoot.
type Separator string

// Separator placements.
const (
	// SeparatorCurrent: edk2 since commit efaf893 (after
	// edk2-stable202408.01) logs it in RTMR1, after "Calling EFI Application
	// from Boot Option".
	SeparatorCurrent Separator = "current"
	// SeparatorLegacy: older TDVF logs it in RTMR0, at the end, and RTMR1
	// has none.
	SeparatorLegacy Separator = "legacy"
)

// ParseSeparator accepts "current" or "legacy".
func ParseSeparator(s string) (Separator, error) {
	switch v := Separator(s); v {
	case SeparatorCurrent, SeparatorLegacy:
		return v, nil
	}
	return "", fmt.Errorf("unknown TDVF separator placement %q: want %q (edk2 after 202408.01) or %q (older TDVF, separator in RTMR0)", s, SeparatorCurrent, SeparatorLegacy)
}

// SecureBootVariables are the data of the Secure Boot variables TDVF
// measures into RTMR0. A nil field is an absent (empty) variable, which is
// what a fresh OVMF variable store has.
type SecureBootVariables struct {
	SecureBoot []byte // 8be4df61-…:SecureBoot, one byte (1: enabled) when set
	PK         []byte // EFI_SIGNATURE_LIST data
	KEK        []byte
	DB         []byte // d719b2cb-…:db
	DBX        []byte // d719b2cb-…:dbx
}

// DefaultMemory is the guest RAM assumed when none is given (2 GiB).
const DefaultMemory = 2 << 30

// Options are the parameters of a TD launch. The zero value of each field
// selects its documented default.
type Options struct {
	PageOrder    PageOrder   // default PageOrderSinglePass
	Memory       uint64      // guest RAM in bytes; default DefaultMemory
	QEMU         QEMUVersion // default DefaultQEMUVersion (10.2)
	Separator    Separator   // default SeparatorCurrent
	ACPIDataSize uint64      // default DefaultACPIDataSize

	// Kernel, Initrd and Cmdline describe QEMU direct boot (-kernel,
	// -initrd, -append). Without a kernel, RTMR1 and RTMR2 depend on the
	// boot loader and are reported as not computable. A nil Initrd means no
	// -initrd; an empty non-nil one is an empty initrd file, which QEMU
	// before 10.2 still writes into the kernel's setup header (RTMR1) but
	// OVMF skips like no initrd: no " initrd=initrd" in LoadOptions and no
	// initrd event in RTMR2.
	Kernel  []byte
	Initrd  []byte
	Cmdline string
	// NoKernelSHA256 leaves out the kernel's SHA-256 Authenticode digest
	// (Result.KernelAuthenticodeSHA256, the Report's Kernel block and
	// DirectBootDigests), which no register depends on: for a caller that
	// prints only the registers, hashing the kernel a second time was 12%
	// of measure tdx's CPU time.
	NoKernelSHA256 bool

	// UKI describes a TD that boots a unified kernel image from its
	// disk's ESP instead (no direct boot): RTMR1 and RTMR2 are
	// UKIBootEvents'; RTMR0 is not computable, because its boot variables
	// are the ones OVMF's boot manager creates for the VM's devices. Its
	// Separator is the Options' own.
	UKI *UKIBoot

	// ACPI are QEMU's ACPI fw_cfg blobs. Without them RTMR0 is not
	// computable; its other events are still returned. ACPISource says
	// where they came from (recorded in Variant.ACPITables); without them,
	// it says why they are missing (RTMR0's Reason).
	ACPI       *ACPITables
	ACPISource string
	// SecureBoot are the Secure Boot variables; nil means all empty.
	SecureBoot *SecureBootVariables
	// BootOrder and Boot0000 are the boot variables' data; nil means
	// DefaultBootOrder and DefaultBoot0000 (a fresh OVMF variable store).
	BootOrder []byte
	Boot0000  []byte
}

// Variant records every choice the result depends on, defaults included.
type Variant struct {
	Machine             string      `json:"machine"`
	PageOrder           PageOrder   `json:"page_order"`
	MemoryBytes         uint64      `json:"memory_bytes"`
	Below4GBytes        uint64      `json:"below_4g_bytes"`
	Above4GBytes        uint64      `json:"above_4g_bytes"`
	QEMUVersion         QEMUVersion `json:"qemu_version"`
	KernelHeaderPatched bool        `json:"kernel_header_patched"`
	ACPIDataSize        uint64      `json:"acpi_data_size"`
	TDVFSeparator       Separator   `json:"tdvf_separator"`
	SecureBoot          string      `json:"secure_boot_variables"`
	BootVariables       string      `json:"boot_variables"`
	ACPITables          string      `json:"acpi_tables"`
	LinuxEFIStub        string      `json:"linux_efi_stub"`
	Boot                string      `json:"boot"`
}

// Register is an RTMR value, or why it cannot be computed.
type Register struct {
	Value      Digest `json:"value"`
	Computable bool   `json:"computable"`
	Reason     string `json:"reason,omitempty"`
}

// Result is a TD's expected measurements.
type Result struct {
	MRTD    Digest
	RTMR    [4]Register
	Events  []Event // every known event, in log order; see EventLog
	Variant Variant

	Metadata *Metadata
	RAM      []RAMRange // the TD HOB's memory ranges
	TDHOB    []byte     // the TD HOB as QEMU writes it (the measured part excludes the end HOB)

	// Kernel details, when a kernel was given.
	KernelAuthenticodeSHA384 Digest        // of the bytes OVMF loads (patched or not)
	KernelAuthenticodeSHA256 []byte        // same bytes, SHA-256 (for TPM PCR 4 comparisons)
	KernelHeader             *KernelHeader // QEMU's patches, when it applies them
}

// EventLog returns the CC event log (see the EventLog function) of the
// events of the computable registers: a log with a register's events but
// not all of them could not replay.
func (r *Result) EventLog() []byte {
	var evs []Event
	for _, e := range r.Events {
		if r.RTMR[e.RTMR].Computable {
			evs = append(evs, e)
		}
	}
	return EventLog(evs)
}

// Measure computes MRTD, RTMR0-3 and the event log of a TD booted by QEMU
// (q35) with the given TDVF firmware, as opts describe.
func Measure(firmware []byte, opts Options) (out *Result, err error) {
	o, v, err := withDefaults(opts)
	if err != nil {
		return nil, err
	}
	md, err := ParseMetadata(firmware)
	if err != nil {
		return nil, err
	}
	res := &Result{Metadata: md, Variant: v}
	// The kernel's digests, the longest work, start first, on another
	// core; directBoot waits for them, and so does every return.
	var kernel func() (kernelDigests, error)
	if o.Kernel != nil && o.UKI == nil {
		kernel = sync.OnceValues(startKernelDigests(o))
		defer func() { _, _ = kernel() }()
	}
	// MRTD hashes the firmware's pages on another core while the RTMRs
	// are computed; its error comes first, as when it was computed first.
	var mrtd Digest
	mrtdErr := make(chan error, 1)
	go func() {
		var err error
		mrtd, err = MRTD(firmware, md, o.PageOrder)
		mrtdErr <- err
	}()
	defer func() {
		if e := <-mrtdErr; e != nil {
			out, err = nil, e
		}
		if err == nil {
			out.MRTD = mrtd
		}
	}()

	// RTMR0, in the order TDVF measures: SEC (TD HOB, CFV), DXE (Secure
	// Boot variables and their separator, ACPI), BDS (boot variables).
	if res.RAM, err = RAMLayout(md, o.Memory); err != nil {
		return nil, err
	}
	hob, measured, err := TDHOB(md, res.RAM)
	if err != nil {
		return nil, err
	}
	res.TDHOB = hob
	hobSec, _ := md.Section(SectionTDHOB)
	cfv, ok := md.Section(SectionCFV)
	if !ok {
		return nil, errors.New("TDVF metadata has no CFV section: TDVF measures the variable store from it; use a TDVF build with a CFV")
	}
	cfvData := firmware[cfv.DataOffset : cfv.DataOffset+cfv.RawDataSize]

	var rtmr0 []Event
	rtmr0 = append(rtmr0,
		Event{RTMR: 0, Type: EvEFIHandoffTables2, Digest: sha384(measured), Data: tdHOBEventData(hobSec.MemoryAddress),
			Description: fmt.Sprintf("TD HOB at 0x%x (%d bytes, %d memory ranges for %d bytes of RAM)", hobSec.MemoryAddress, len(measured), len(res.RAM), o.Memory)},
		Event{RTMR: 0, Type: EvEFIPlatformFirmwareBlob2, Digest: sha384(cfvData), Data: cfvEventData(cfvData, cfv),
			Description: fmt.Sprintf("CFV (UEFI variable store) at 0x%x, %d bytes", cfv.MemoryAddress, cfv.RawDataSize)},
	)
	sb := o.SecureBoot
	if sb == nil {
		sb = &SecureBootVariables{}
	}
	for _, vr := range []struct {
		vendor ovmf.GUID
		name   string
		data   []byte
	}{
		{efiGlobalVariableGUID, "SecureBoot", sb.SecureBoot},
		{efiGlobalVariableGUID, "PK", sb.PK},
		{efiGlobalVariableGUID, "KEK", sb.KEK},
		{efiImageSecurityDatabaseGUID, "db", sb.DB},
		{efiImageSecurityDatabaseGUID, "dbx", sb.DBX},
	} {
		data := uefiVariableData(vr.vendor, vr.name, vr.data)
		state := "empty"
		if len(vr.data) > 0 {
			state = fmt.Sprintf("%d bytes", len(vr.data))
		}
		rtmr0 = append(rtmr0, Event{RTMR: 0, Type: EvEFIVariableDriverConfig, Digest: sha384(data), Data: data,
			Description: fmt.Sprintf("Secure Boot variable %s:%s (%s)", vr.vendor, vr.name, state)})
	}
	rtmr0 = append(rtmr0, separatorEvent(0, "separator after the Secure Boot configuration (PCR 7)"))
	if o.ACPI != nil {
		acpi, err := acpiEvents(o.ACPI)
		if err != nil {
			return nil, fmt.Errorf("ACPI tables: %w", err)
		}
		rtmr0 = append(rtmr0, acpi...)
		res.RTMR[0].Computable = true
	} else {
		res.RTMR[0].Reason = "the QEMU ACPI fw_cfg blobs (etc/table-loader, etc/acpi/rsdp, etc/acpi/tables) were not given; the other RTMR0 events are listed"
		if o.ACPISource != "" {
			res.RTMR[0].Reason = o.ACPISource + "; the other RTMR0 events are listed"
		}
	}
	bootOrder, boot0000 := o.BootOrder, o.Boot0000
	if bootOrder == nil {
		bootOrder = DefaultBootOrder()
	}
	if boot0000 == nil {
		boot0000 = DefaultBoot0000()
	}
	// TdTcg2Dxe measures the boot variables at the first ReadyToBoot.
	bootVars := []Event{
		{RTMR: 0, Type: EvEFIVariableBoot, Digest: sha384(bootOrder), Data: uefiVariableData(efiGlobalVariableGUID, "BootOrder", bootOrder),
			Description: fmt.Sprintf("boot variable BootOrder (%x) at ReadyToBoot", bootOrder)},
		{RTMR: 0, Type: EvEFIVariableBoot, Digest: sha384(boot0000), Data: uefiVariableData(efiGlobalVariableGUID, "Boot0000", boot0000),
			Description: "boot variable Boot0000 (" + loadOptionDescription(boot0000) + ") at ReadyToBoot"},
	}
	res.Events = append(res.Events, rtmr0...)

	// RTMR1 and RTMR2: QEMU direct kernel boot with a Linux >= 6.9 EFI stub,
	// or a UKI from the disk.
	if o.Kernel != nil && o.UKI != nil {
		return nil, errors.New("a TD boots either a kernel directly (QEMU -kernel) or a UKI from its disk, not both")
	}
	if o.UKI != nil {
		u := *o.UKI
		u.Separator = o.Separator
		evs, err := UKIBootEvents(u)
		if err != nil {
			return nil, err
		}
		res.Events = append(res.Events, evs...)
		res.RTMR[0].Computable = false
		res.RTMR[0].Reason = "a TD booted from its disk measures the boot variables (BootOrder, Boot####) that OVMF's boot manager creates for the VM's devices, which are not modelled; the other RTMR0 events are listed"
		res.RTMR[1].Computable, res.RTMR[2].Computable = true, true
	} else if o.Kernel == nil {
		reason := "no kernel given: without QEMU direct boot the boot loader decides what is measured"
		res.RTMR[1].Reason, res.RTMR[2].Reason = reason, reason
		res.Events = append(res.Events, bootVars...)
		if o.Separator == SeparatorLegacy {
			res.Events = append(res.Events, separatorEvent(0, "separator at ReadyToBoot (legacy TDVF logs it in RTMR0)"))
		}
	} else if err := res.directBoot(o, kernel, bootVars); err != nil {
		return nil, err
	}
	res.RTMR[3] = Register{Computable: true}

	for i := range res.RTMR {
		if !res.RTMR[i].Computable {
			continue
		}
		var ds []Digest
		for _, e := range res.Events {
			if e.RTMR == i {
				ds = append(ds, e.Digest)
			}
		}
		res.RTMR[i].Value = Replay(ds...)
	}
	return res, nil
}

// kernelDigests are what QEMU direct boot measures of the kernel and initrd.
type kernelDigests struct {
	image     []byte // the kernel as OVMF loads it, patched or not
	imageBase uint64
	header    *KernelHeader
	patchNote string
	sha384    Digest
	sha256    []byte // nil with NoKernelSHA256
	initrd    Digest // of a non-empty initrd
}

// startKernelDigests starts hashing the kernel (and the initrd) as QEMU
// hands them to OVMF, and returns the function that waits for the
// digests. The kernel's SHA-384, the longest hash, runs on one goroutine;
// the initrd's and the kernel's SHA-256 digest (for the report) on
// another.
func startKernelDigests(o Options) func() (kernelDigests, error) {
	type result struct {
		d   kernelDigests
		err error
	}
	done := make(chan result, 1)
	go func() {
		d, err := kernelDigestsOf(o)
		done <- result{d, err}
	}()
	return func() (kernelDigests, error) {
		r := <-done
		return r.d, r.err
	}
}

func kernelDigestsOf(o Options) (kernelDigests, error) {
	d := kernelDigests{image: o.Kernel, patchNote: "as given (QEMU >= 10.2 serves it unpatched)"}
	if o.QEMU.PatchesKernelHeader() {
		patched, hdr, err := PatchKernel(QEMUKernel{Kernel: o.Kernel, Initrd: o.Initrd, Cmdline: o.Cmdline, Memory: o.Memory, ACPIDataSize: o.ACPIDataSize})
		if err != nil {
			return d, fmt.Errorf("modelling QEMU %v's kernel loader: %w", o.QEMU, err)
		}
		d.image, d.header = patched, &hdr
		d.patchNote = fmt.Sprintf("with the setup header QEMU %v patches in (ramdisk 0x%x+0x%x)", o.QEMU, hdr.RamdiskImage, hdr.RamdiskSize)
	}
	f, err := pe.Parse(d.image)
	if err != nil {
		return d, fmt.Errorf("kernel: %w; TDVF measures the kernel as a PE image, so give a bzImage with an EFI stub", err)
	}
	d.imageBase = f.ImageBase
	err256 := make(chan error, 1)
	go func() {
		var err error
		if len(o.Initrd) > 0 {
			d.initrd = sha384(o.Initrd)
		}
		if !o.NoKernelSHA256 {
			d.sha256, err = f.Authenticode(crypto.SHA256)
		}
		err256 <- err
	}()
	d384, err := f.Authenticode(crypto.SHA384)
	if e := <-err256; err == nil {
		err = e
	}
	if err != nil {
		return d, fmt.Errorf("kernel: %w", err)
	}
	copy(d.sha384[:], d384)
	return d, nil
}

// directBoot adds the events of QEMU direct kernel boot in the order a TD
// logs them (OvmfPkg PlatformBootManagerLib TryRunningQemuKernel): LoadImage
// measures the kernel (RTMR1); ReadyToBoot, signalled after it, measures the
// boot variables bootVars (RTMR0), "Calling EFI Application from Boot
// Option" and the separator; StartImage runs the EFI stub, which measures
// LoadOptions and the initrd (RTMR2); ExitBootServices comes last. kernel
// waits for the digests startKernelDigests started.
func (res *Result) directBoot(o Options, kernel func() (kernelDigests, error), bootVars []Event) error {
	k, err := kernel()
	if err != nil {
		return err
	}
	res.KernelHeader = k.header
	res.KernelAuthenticodeSHA256 = k.sha256
	res.KernelAuthenticodeSHA384 = k.sha384

	// OVMF serves an initrd only when fw_cfg's initrd size is not zero: an
	// empty file gets neither "initrd=initrd" (X86QemuLoadImageLib) nor the
	// LoadFile2 initrd device (QemuKernelLoaderFsDxe), so the EFI stub
	// measures no initrd.
	hasInitrd := len(o.Initrd) > 0
	loadOptions := o.Cmdline
	if hasInitrd {
		loadOptions += " initrd=initrd"
	}
	var rtmr2 []Event
	if loadOptions != "" {
		lo := widenASCII(loadOptions)
		rtmr2 = append(rtmr2, Event{RTMR: 2, Type: EvEventTag, Digest: sha384(lo), Data: taggedEventData(loadOptionsTagID, "LOADED_IMAGE::LoadOptions"),
			Description: fmt.Sprintf("Linux EFI stub: LoadOptions %q as UTF-16LE with its NUL (%d bytes)", loadOptions, len(lo))})
	}
	if hasInitrd {
		rtmr2 = append(rtmr2, Event{RTMR: 2, Type: EvEventTag, Digest: k.initrd, Data: taggedEventData(initrdTagID, "Linux initrd"),
			Description: fmt.Sprintf("Linux EFI stub: initrd (%d bytes)", len(o.Initrd))})
	}

	ev := []Event{
		{RTMR: 1, Type: EvEFIBootServicesApplication, Digest: res.KernelAuthenticodeSHA384, Data: imageLoadEventData(uint64(len(k.image)), k.imageBase),
			Description: "kernel PE image from QEMU fw_cfg, Authenticode SHA-384, " + k.patchNote},
	}
	ev = append(ev, bootVars...)
	ev = append(ev, efiAction(1, "Calling EFI Application from Boot Option"))
	if o.Separator == SeparatorLegacy {
		ev = append(ev, separatorEvent(0, "separator at ReadyToBoot (legacy TDVF logs it in RTMR0)"))
	} else {
		ev = append(ev, separatorEvent(1, "separator at ReadyToBoot"))
	}
	ev = append(ev, rtmr2...)
	ev = append(ev,
		efiAction(1, "Exit Boot Services Invocation"),
		efiAction(1, "Exit Boot Services Returned with Success"),
	)
	res.Events = append(res.Events, ev...)
	res.RTMR[1].Computable, res.RTMR[2].Computable = true, true
	return nil
}

func withDefaults(o Options) (Options, Variant, error) {
	if o.PageOrder == "" {
		o.PageOrder = PageOrderSinglePass
	}
	if _, err := ParsePageOrder(string(o.PageOrder)); err != nil {
		return o, Variant{}, err
	}
	if o.Memory == 0 {
		o.Memory = DefaultMemory
	}
	if o.QEMU == (QEMUVersion{}) {
		o.QEMU = DefaultQEMUVersion
	}
	if o.Separator == "" {
		o.Separator = SeparatorCurrent
	}
	if _, err := ParseSeparator(string(o.Separator)); err != nil {
		return o, Variant{}, err
	}
	if o.ACPIDataSize == 0 {
		o.ACPIDataSize = DefaultACPIDataSize
	}
	below, above := Q35Memory(o.Memory)
	v := Variant{
		Machine:             "q35",
		PageOrder:           o.PageOrder,
		MemoryBytes:         o.Memory,
		Below4GBytes:        below,
		Above4GBytes:        above,
		QEMUVersion:         o.QEMU,
		KernelHeaderPatched: o.Kernel != nil && o.QEMU.PatchesKernelHeader(),
		ACPIDataSize:        o.ACPIDataSize,
		TDVFSeparator:       o.Separator,
		SecureBoot:          "empty",
		BootVariables:       "default (BootOrder 0000, Boot0000 UiApp)",
		ACPITables:          "not given",
		LinuxEFIStub:        "none (no kernel)",
		Boot:                "none (no kernel, no UKI)",
	}
	if o.SecureBoot != nil {
		v.SecureBoot = "given"
	}
	if o.BootOrder != nil || o.Boot0000 != nil {
		v.BootVariables = "given"
	}
	if o.ACPI != nil {
		v.ACPITables = "given"
		if o.ACPISource != "" {
			v.ACPITables = "given: " + o.ACPISource
		}
	}
	if o.Kernel != nil {
		v.LinuxEFIStub = "linux >= 6.9 (measures LoadOptions and the initrd into RTMR2)"
		v.Boot = "QEMU direct kernel boot (-kernel)"
	}
	if o.UKI != nil {
		v.BootVariables = "not modelled (a disk boot: OVMF's boot manager creates them)"
		v.LinuxEFIStub = "linux before 6.9 (measures nothing into RTMR2)"
		if o.UKI.LinuxCC {
			v.LinuxEFIStub = "linux >= 6.9 (measures the UKI's .cmdline and .initrd into RTMR2)"
		}
		v.Boot = fmt.Sprintf(`UKI \EFI\BOOT\BOOTX64.EFI from the disk's ESP, after %d failed boot options`, o.UKI.FailedBootOptions)
	}
	return o, v, nil
}

func separatorEvent(rtmr int, desc string) Event {
	data := []byte{0, 0, 0, 0}
	return Event{RTMR: rtmr, Type: EvSeparator, Digest: sha384(data), Data: data, Description: desc}
}

func efiAction(rtmr int, s string) Event {
	return Event{RTMR: rtmr, Type: EvEFIAction, Digest: sha384([]byte(s)), Data: []byte(s), Description: s}
}

// Linux EFI stub tagged event IDs (drivers/firmware/efi/libstub).
const (
	initrdTagID      = 0x8f3b22ec
	loadOptionsTagID = 0x8f3b22ed
)

// taggedEventData encodes TCG_PCClientTaggedEvent with a NUL-terminated
// description, as the Linux EFI stub logs it.
func taggedEventData(id uint32, desc string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, id)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(desc)+1))
	b = append(b, desc...)
	return append(b, 0)
}

// tdHOBEventData encodes TDVF's TDX_HANDOFF_TABLE_POINTERS2 for the TD HOB.
func tdHOBEventData(addr uint64) []byte {
	desc := "TdxTable\x00"
	b := []byte{byte(len(desc))}
	b = append(b, desc...)
	b = binary.LittleEndian.AppendUint64(b, 1) // NumberOfTables
	b = append(b, ovmfPkgTokenSpaceGUID[:]...)
	return binary.LittleEndian.AppendUint64(b, addr)
}

// cfvEventData encodes PLATFORM_FIRMWARE_BLOB2 for the CFV: "Fv(<name>)"
// from the volume's extended header, or the literal template when it has
// none, as TDVF does.
func cfvEventData(cfv []byte, s Section) []byte {
	desc := []byte("Fv(XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX)\x00")
	if name, ok := fvName(cfv); ok {
		copy(desc, "Fv("+name.String()+")\x00")
	}
	b := []byte{byte(len(desc))}
	b = append(b, desc...)
	b = binary.LittleEndian.AppendUint64(b, s.MemoryAddress)
	return binary.LittleEndian.AppendUint64(b, uint64(s.RawDataSize))
}

// fvName returns the FvName of a firmware volume's extended header.
func fvName(fv []byte) (ovmf.GUID, bool) {
	const fvHeaderSize, extOff = 64, 52 // sizeof(EFI_FIRMWARE_VOLUME_HEADER), ExtHeaderOffset
	if len(fv) < fvHeaderSize || string(fv[40:44]) != "_FVH" {
		return ovmf.GUID{}, false
	}
	off := int(binary.LittleEndian.Uint16(fv[extOff:]))
	if off < fvHeaderSize || off+20 > len(fv) {
		return ovmf.GUID{}, false
	}
	return ovmf.GUID(fv[off : off+16]), true
}

// imageLoadEventData encodes UEFI_IMAGE_LOAD_EVENT for the kernel OVMF loads
// from its QEMU kernel loader file system. The load address is only known at
// run time and is zero here.
func imageLoadEventData(length, linkAddr uint64) []byte {
	dp := dpNode(dpTypeMedia, dpSubVendor, qemuKernelLoaderFsMediaGUID[:])
	dp = append(dp, dpNode(dpTypeMedia, 0x04, append(utf16le("kernel"), 0, 0))...) // file path node
	dp = append(dp, dpEnd()...)
	b := binary.LittleEndian.AppendUint64(nil, 0) // ImageLocationInMemory
	b = binary.LittleEndian.AppendUint64(b, length)
	b = binary.LittleEndian.AppendUint64(b, linkAddr)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(dp)))
	return append(b, dp...)
}

// loadOptionDescription returns the description of an EFI_LOAD_OPTION.
func loadOptionDescription(opt []byte) string {
	if len(opt) < 6 {
		return "malformed load option"
	}
	var u []uint16
	for i := 6; i+1 < len(opt); i += 2 {
		c := binary.LittleEndian.Uint16(opt[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// ParseMemory parses a size the way QEMU's -m does: a number with a K, M,
// G or T suffix (binary units), or a bare number of MiB.
func ParseMemory(s string) (uint64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	shift := 20 // QEMU: a bare -m value is MiB
	if n := len(t); n > 0 {
		if i := strings.IndexByte("KMGT", t[n-1]); i >= 0 {
			shift = 10 * (i + 1)
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseUint(t, 10, 64)
	if err != nil || v == 0 || v > (1<<50)>>shift {
		return 0, fmt.Errorf("%q is not a memory size: want e.g. 2G, 1536M or 2048 (MiB, as QEMU -m)", s)
	}
	return v << shift, nil
}
