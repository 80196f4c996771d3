package kernel

import (
	"crypto"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/cocobuild/cocobuild/internal/termsafe"
	"github.com/cocobuild/cocobuild/measure/pe"
)

// Description is what `cocobuild inspect` shows of a bzImage: the setup
// header, the PE/COFF view of its EFI stub (sections) and its Authenticode
// digests, the values firmware measures when it loads the kernel as an EFI
// application (TDX RTMR1, TPM PCR4).
type Description struct {
	Release         string            `json:"release"`
	Version         string            `json:"version"`
	BootProtocol    string            `json:"boot_protocol"`
	SetupSects      uint8             `json:"setup_sectors"`
	XLoadFlags      uint16            `json:"xloadflags"`
	XLoadFlagNames  []string          `json:"xloadflag_names"`
	InitSize        uint32            `json:"init_size"`
	Size            int               `json:"size"`
	PE              bool              `json:"efi_stub"` // a PE/COFF header: the kernel can be loaded as an EFI application
	Sections        []DescSection     `json:"sections,omitempty"`
	Authenticode    map[string]string `json:"authenticode,omitempty"` // "sha256", "sha384": lowercase hex
	Signatures      int               `json:"signatures"`
	AuthenticodeErr string            `json:"authenticode_error,omitempty"`
}

// DescSection is one PE section.
type DescSection struct {
	Name             string `json:"name"`
	VirtualAddress   uint32 `json:"virtual_address"`
	VirtualSize      uint32 `json:"virtual_size"`
	PointerToRawData uint32 `json:"pointer_to_raw_data"`
	SizeOfRawData    uint32 `json:"size_of_raw_data"`
	Characteristics  uint32 `json:"characteristics"`
}

// xloadflags are the bits of the setup header's xloadflags.
var xloadflags = []string{"XLF_KERNEL_64", "XLF_CAN_BE_LOADED_ABOVE_4G", "XLF_EFI_HANDOVER_32", "XLF_EFI_HANDOVER_64", "XLF_EFI_KEXEC", "XLF_5LEVEL", "XLF_5LEVEL_ENABLED", "XLF_MEM_ENCRYPTION"}

// Describe reads a bzImage. It returns an error only when b has no Linux
// setup header; a broken PE view is reported in AuthenticodeErr.
func Describe(b []byte) (*Description, error) {
	info, err := Inspect(b)
	if err != nil {
		return nil, err
	}
	d := &Description{
		Release: info.Release, Version: info.Version, BootProtocol: info.ProtocolString(),
		SetupSects: info.SetupSects, XLoadFlags: info.XLoadFlags, InitSize: info.InitSize, Size: len(b), PE: info.PE,
		XLoadFlagNames: []string{},
	}
	for i, n := range xloadflags {
		if info.XLoadFlags&(1<<i) != 0 {
			d.XLoadFlagNames = append(d.XLoadFlagNames, n)
		}
	}
	if !info.PE {
		return d, nil
	}
	f, err := pe.Parse(b)
	if err != nil {
		d.AuthenticodeErr = err.Error()
		return d, nil
	}
	for _, s := range f.Sections {
		d.Sections = append(d.Sections, DescSection{Name: s.Name, VirtualAddress: s.VirtualAddress, VirtualSize: s.VirtualSize,
			PointerToRawData: s.PointerToRawData, SizeOfRawData: s.SizeOfRawData, Characteristics: s.Characteristics})
	}
	if certs, err := f.Certificates(); err == nil {
		d.Signatures = len(certs)
	}
	d.Authenticode = map[string]string{}
	for name, h := range map[string]crypto.Hash{"sha256": crypto.SHA256, "sha384": crypto.SHA384} {
		sum, err := f.Authenticode(h)
		if err != nil {
			d.AuthenticodeErr = err.Error()
			d.Authenticode = nil
			break
		}
		d.Authenticode[name] = hex.EncodeToString(sum)
	}
	return d, nil
}

// WriteText prints the description for people, under a line naming the
// file that the caller writes. Strings taken from the image (release,
// version, section names, a PE error) are escaped with termsafe.Escape, so
// that a hostile image cannot drive the terminal; JSON keeps them exact.
func (d *Description) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "  release        %s\n", termsafe.Escape(d.Release))
	fmt.Fprintf(&b, "  version        %s\n", termsafe.Escape(d.Version))
	fmt.Fprintf(&b, "  boot protocol  %s\n", d.BootProtocol)
	fmt.Fprintf(&b, "  setup sectors  %d\n", d.SetupSects)
	fmt.Fprintf(&b, "  xloadflags     %#x %s\n", d.XLoadFlags, strings.Join(d.XLoadFlagNames, " "))
	fmt.Fprintf(&b, "  init size      %d (%#x)\n", d.InitSize, d.InitSize)
	if d.PE {
		b.WriteString("  EFI stub       yes\n")
	} else {
		b.WriteString("  EFI stub       no (no PE header)\n")
	}
	if len(d.Sections) > 0 {
		b.WriteString("PE sections\n  name      vaddr      vsize      raw offset raw size   flags\n")
		for _, s := range d.Sections {
			fmt.Fprintf(&b, "  %-8s  %#08x  %#08x  %#08x  %#08x  %#08x\n", termsafe.Escape(s.Name), s.VirtualAddress, s.VirtualSize, s.PointerToRawData, s.SizeOfRawData, s.Characteristics)
		}
	}
	if d.Authenticode != nil {
		signed := "unsigned"
		switch {
		case d.Signatures == 1:
			signed = "1 signature"
		case d.Signatures > 1:
			signed = fmt.Sprintf("%d signatures", d.Signatures)
		}
		fmt.Fprintf(&b, "Authenticode digests (%s)\n  sha256  %s\n  sha384  %s\n", signed, d.Authenticode["sha256"], d.Authenticode["sha384"])
	}
	if d.AuthenticodeErr != "" {
		fmt.Fprintf(&b, "PE: %s\n", termsafe.Escape(d.AuthenticodeErr))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
