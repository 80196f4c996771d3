package ovmf

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode/utf16"
)

// Info is what Inspect finds in a firmware image: what its launch
// measurements can vouch for.
type Info struct {
	// Size of the image in bytes.
	Size int `json:"size"`
	// Volumes are the firmware volumes, including those decompressed from
	// inside others (Offset -1).
	Volumes []Volume `json:"volumes"`
	// SEVSections is the SEV metadata (nil when the image has none).
	SEVSections []SEVSection `json:"sev_sections"`
	// HashesTable is where the VMM puts the SEV hashes table of a directly
	// booted kernel, initrd and cmdline; nil when absent or at GPA 0.
	HashesTable *Area `json:"hashes_table"`
	// VerifiesDirectBoot says whether the code that checks a directly
	// booted kernel, initrd and cmdline against the SEV hashes table is
	// built in (edk2's BlobVerifierLibSevHashes, linked into
	// QemuKernelLoaderFsDxe in the OvmfPkg/AmdSev build). Without it, a
	// hashes table in the launch digest binds nothing the guest runs.
	VerifiesDirectBoot bool `json:"verifies_direct_boot"`
	// DirectBootEvidence says what decided VerifiesDirectBoot.
	DirectBootEvidence string `json:"direct_boot_evidence"`
	// TDX is the TDVF metadata (nil when the image has none).
	TDX *TDXMetadata `json:"tdx"`
	// MeasuresRTMR says whether TdTcg2Dxe (the CC measurement protocol,
	// which extends RTMRs with what the firmware loads and publishes the
	// CCEL event log) is built in.
	MeasuresRTMR bool `json:"measures_rtmr"`
	// RTMREvidence says what decided MeasuresRTMR.
	RTMREvidence string `json:"rtmr_evidence"`
	// SecureBoot is the Secure Boot state of the image's variable store.
	SecureBoot SecureBoot `json:"secure_boot"`
	// Variables are the live variables of the image's variable store (nil
	// for a code-only image); see Variables.
	Variables []Variable `json:"-"`
	// Edk2Version is the firmware version string the image records
	// (e.g. "2026.08+ds-2"), "" when it records none.
	Edk2Version string `json:"edk2_version"`
	// Edk2VersionSource says where Edk2Version was found.
	Edk2VersionSource string `json:"edk2_version_source,omitempty"`
	// Modules are the UI names of the image's PEI and DXE modules, sorted,
	// without repeats.
	Modules []string `json:"modules"`
	// Vouches sums up what launch measurements of this firmware cover.
	Vouches Vouches `json:"vouches"`
}

// Volume is a firmware volume of the image.
type Volume struct {
	Offset int    `json:"offset"` // in the image; -1 inside a section
	Size   uint64 `json:"size"`
	Format string `json:"format"` // FFS2, FFS3, NVRAM_EVSA (the variable store), or the file system GUID
	Name   string `json:"name,omitempty"`
	Files  int    `json:"files"`
}

// Vouches says what a launch measurement of the firmware covers beyond the
// firmware itself.
type Vouches struct {
	// SNPDirectBoot: an SEV-SNP launch digest taken with a kernel, initrd
	// and cmdline covers them (an SNP_KERNEL_HASHES section, a hashes
	// table, and the code that checks the blobs against it).
	SNPDirectBoot bool `json:"snp_direct_boot"`
	// SEVDirectBoot: the same for SEV and SEV-ES (a hashes table and the
	// checking code).
	SEVDirectBoot bool `json:"sev_direct_boot"`
	// TDXRTMRs: a TD booted with it records what it boots in RTMRs (TDVF
	// metadata and TdTcg2Dxe).
	TDXRTMRs bool `json:"tdx_rtmrs"`
	// Notes explain each false.
	Notes []string `json:"notes,omitempty"`
}

// Module UI names that decide what the firmware can vouch for.
const (
	moduleKernelLoader = "QemuKernelLoaderFsDxe"
	moduleTdTcg2       = "TdTcg2Dxe"
	moduleSmbios       = "SmbiosPlatformDxe"
)

// sevHashEntryGUIDs are the SEV hashes-table entry GUIDs for the kernel,
// initrd and cmdline (edk2 OvmfPkg/Library/BlobVerifierLib/BlobVerifierSevHashes.c,
// the same that QEMU writes into the table).
var sevHashEntryGUIDs = []struct {
	name string
	guid GUID
}{
	{"kernel", MustGUID("4de79437-abd2-427f-b835-d5b172d2045b")},
	{"initrd", MustGUID("44baf731-3a2f-4bd7-9af1-41e29169781d")},
	{"cmdline", MustGUID("97d02dd8-bd20-4c94-aa78-e7714d36ab2a")},
}

// Inspect parses a firmware image: its footer table and SEV/TDX metadata,
// its firmware volumes and their (LZMA-compressed) files with fiano, and
// its variable store; and decides from the modules present and the
// metadata what the firmware can vouch for. It does no I/O, bounds what it
// decompresses, and returns an error rather than panicking on a malformed
// image.
func Inspect(fw []byte) (*Info, error) {
	info := &Info{Size: len(fw)}
	ft, err := ParseFooterTable(fw)
	if err != nil && !errors.Is(err, ErrNoFooterTable) {
		return nil, err
	}
	if info.SEVSections, err = inspectSEVMetadata(fw, ft); err != nil {
		return nil, err
	}
	if info.HashesTable, err = inspectHashesTable(ft); err != nil {
		return nil, err
	}
	if info.TDX, err = inspectTDXMetadata(fw, ft); err != nil {
		return nil, err
	}
	w, err := walkImage(fw)
	if err != nil {
		return nil, err
	}
	if ft == nil && len(w.volumes) == 0 {
		return nil, ErrNotFirmware
	}
	haveStore := false
	for _, v := range w.volumes {
		vol := Volume{Offset: v.Offset, Size: v.Length, Format: v.FSGUID.String(), Files: v.Files}
		if name, ok := fvFormats[GUID(v.FSGUID)]; ok {
			vol.Format = name
		}
		if g := GUID(v.Name); g != (GUID{}) {
			vol.Name = g.String()
		}
		haveStore = haveStore || vol.Format == "NVRAM_EVSA"
		info.Volumes = append(info.Volumes, vol)
	}
	if haveStore {
		if info.Variables, err = Variables(fw); err != nil {
			return nil, fmt.Errorf("variable store: %w", err)
		}
	}
	if info.SecureBoot, err = secureBootState(info.Variables, haveStore); err != nil {
		return nil, fmt.Errorf("Secure Boot variables: %w", err)
	}
	byName := map[string][]*module{}
	for _, m := range w.modules {
		if m.Name == "" {
			continue
		}
		if _, seen := byName[m.Name]; !seen {
			info.Modules = append(info.Modules, m.Name)
		}
		byName[m.Name] = append(byName[m.Name], m)
	}
	slices.Sort(info.Modules)
	info.VerifiesDirectBoot, info.DirectBootEvidence = directBoot(len(w.volumes) > 0, byName[moduleKernelLoader], info.HashesTable)
	if _, ok := byName[moduleTdTcg2]; ok {
		info.MeasuresRTMR, info.RTMREvidence = true, "module TdTcg2Dxe is built in: the CC measurement protocol extends RTMRs with what the firmware loads and publishes the CCEL event log"
	} else if len(w.volumes) == 0 {
		info.RTMREvidence = fmt.Sprintf("the image holds no firmware volume (%d bytes, a fragment): its modules cannot be checked", len(fw))
	} else {
		info.RTMREvidence = "no TdTcg2Dxe module: no CC measurement protocol and no CCEL, so a TD's RTMRs do not record the kernel, initrd and cmdline it boots"
	}
	info.Edk2Version, info.Edk2VersionSource = firmwareVersion(byName[moduleSmbios])
	info.Vouches = vouches(info)
	return info, nil
}

// fvFormats names firmware volume file systems.
var fvFormats = map[GUID]string{
	MustGUID("7a9354d9-0468-444a-81ce-0bf617d890df"): "FFS1",
	MustGUID("8c8ce578-8a3d-4f1c-9935-896185c32dd3"): "FFS2",
	MustGUID("5473c07a-3dcb-4dca-bd6f-1e9689e7349a"): "FFS3",
	MustGUID("fff12b8d-7696-4c8b-a985-2747075b4f50"): "NVRAM_EVSA",
}

// directBoot decides whether the blob verifier that checks the SEV hashes
// table is built in: BlobVerifierLibSevHashes compares the kernel, initrd
// and cmdline QemuKernelLoaderFsDxe loads against the table entries with
// these GUIDs, so the module's code carries them; the null verifier of the
// other builds does not.
func directBoot(haveVolumes bool, loaders []*module, table *Area) (bool, string) {
	if !haveVolumes {
		return false, "the image holds no firmware volume (a fragment): its modules cannot be checked"
	}
	if len(loaders) == 0 {
		return false, "no QemuKernelLoaderFsDxe module: the firmware does not load a kernel that QEMU passes"
	}
	var missing []string
	for _, e := range sevHashEntryGUIDs {
		found := false
		for _, m := range loaders {
			for _, b := range m.Bodies {
				found = found || bytes.Contains(b, e.guid[:])
			}
		}
		if !found {
			missing = append(missing, e.name)
		}
	}
	if len(missing) == 0 {
		return true, "QemuKernelLoaderFsDxe carries the SEV hashes-table entry GUIDs of the kernel, initrd and cmdline: it is linked with BlobVerifierLibSevHashes, which refuses blobs whose hashes differ from the table"
	}
	why := fmt.Sprintf("QemuKernelLoaderFsDxe lacks the SEV hashes-table entry GUIDs (%s): it is linked with a blob verifier that checks nothing (BlobVerifierLibNull)", strings.Join(missing, ", "))
	if table != nil {
		why += fmt.Sprintf("; the hashes table at GPA %#x is filled by the VMM and measured, but no code reads it", table.GPA)
	}
	return false, why
}

// versionLike matches the version strings edk2 builds record: a release
// ("2026.08+ds-2", "edk2-stable202405", "202405").
var versionLike = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(edk2-stable)?20[0-9]{2}\.?[0-9]{2}([^0-9/].*)?$`)
}) // compiled on first use, not at every process start

// firmwareVersion finds the firmware version string (PcdFirmwareVersionString,
// which SmbiosPlatformDxe puts into SMBIOS type 0 as the BIOS version) among
// the UTF-16 strings of SmbiosPlatformDxe. Builds that leave the PCD at its
// default record no version (QEMU's SMBIOS then says "0.0.0").
func firmwareVersion(mods []*module) (string, string) {
	for _, m := range mods {
		for _, b := range m.Bodies {
			for _, s := range utf16Strings(b, 4, 64) {
				if versionLike().MatchString(s) {
					return s, "SmbiosPlatformDxe: the firmware version string (PcdFirmwareVersionString, the SMBIOS type 0 BIOS version)"
				}
			}
		}
	}
	return "", ""
}

// utf16Strings lists the NUL-terminated printable-ASCII UTF-16LE strings
// of b with min..max characters, at even offsets.
func utf16Strings(b []byte, min, max int) []string {
	var out []string
	cur := make([]uint16, 0, max)
	long := false
	for i := 0; i+1 < len(b); i += 2 {
		c := uint16(b[i]) | uint16(b[i+1])<<8
		switch {
		case c >= 0x20 && c < 0x7f:
			if len(cur) == max {
				long = true
			} else {
				cur = append(cur, c)
			}
			continue
		case c == 0 && !long && len(cur) >= min:
			out = append(out, string(utf16.Decode(cur)))
		}
		cur, long = cur[:0], false
	}
	return out
}

// vouches sums up what a launch measurement of the firmware covers.
func vouches(info *Info) Vouches {
	var v Vouches
	kernelHashes := false
	for _, s := range info.SEVSections {
		kernelHashes = kernelHashes || s.Type == "SNP_KERNEL_HASHES"
	}
	switch {
	case len(info.Volumes) == 0:
		v.Notes = append(v.Notes, "SEV/SNP and TDX: the image is a fragment without firmware volumes, so what its code checks and measures cannot be determined")
		return v
	case info.HashesTable == nil:
		v.Notes = append(v.Notes, "SEV/SNP: no SEV hashes table, so a launch digest covers the firmware alone, not a kernel, initrd or cmdline")
	case !info.VerifiesDirectBoot:
		v.Notes = append(v.Notes, "SEV/SNP: a hashes table but no code that checks the kernel, initrd and cmdline against it, so a launch digest vouches for the firmware alone")
	default:
		v.SEVDirectBoot = true
		if kernelHashes {
			v.SNPDirectBoot = true
		} else {
			v.Notes = append(v.Notes, "SNP: no SNP_KERNEL_HASHES section in the SEV metadata, so an SNP launch does not measure the hashes table")
		}
	}
	switch {
	case info.TDX == nil:
		v.Notes = append(v.Notes, "TDX: no TDVF metadata, so it does not launch a TD")
	case !info.MeasuresRTMR:
		v.Notes = append(v.Notes, "TDX: no TdTcg2Dxe, so RTMRs do not record the kernel, initrd and cmdline it boots; MRTD covers the firmware alone")
	default:
		v.TDXRTMRs = true
	}
	return v
}
