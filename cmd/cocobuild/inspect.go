package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cocobuild/cocobuild/initramfs"
	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/internal/termsafe"
	"github.com/cocobuild/cocobuild/kernel"
	"github.com/cocobuild/cocobuild/measure/ovmf"
	"github.com/cocobuild/cocobuild/measure/se"
)

// inspectReport is what `inspect --json` prints: the file's digest and,
// depending on what it is, its cpio entries, its kernel setup header, PE
// sections and Authenticode digests, what a firmware image holds and can
// vouch for, or an IBM Z Secure Execution image's header.
type inspectReport struct {
	File     string              `json:"file"`
	SHA256   string              `json:"sha256"`
	Size     int64               `json:"size"`
	Type     string              `json:"type"` // "initramfs", "bzimage", "firmware", "se-image" or "se-header"
	Cpio     *initramfs.Listing  `json:"cpio,omitempty"`
	Kernel   *kernel.Description `json:"kernel,omitempty"`
	Firmware *ovmf.Info          `json:"firmware,omitempty"`
	SE       *se.Info            `json:"se,omitempty"`
}

func newInspectCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "inspect FILE",
		Short: "List an initramfs's entries, a bzImage's setup header and Authenticode digests, or what a firmware image can vouch for",
		Long: `inspect lists the entries of an initramfs — newc cpio archives, uncompressed or
gzip/zstd/xz/bzip2-compressed, several one after another as the kernel reads them — with
mode, uid/gid, size, sha256 and name; or, for a bzImage, what its setup header says
and, when it has an EFI stub, its PE sections and its Authenticode SHA-256 and
SHA-384 digests: the values firmware measures when it loads the kernel as an EFI
application (TDX RTMR1, TPM PCR4), as osslsigncode and sbverify compute them.

For an OVMF/edk2 firmware image (.fd) it walks the firmware volumes and their
compressed files and says what launch measurements of it can vouch for: its SEV
metadata sections (SNP_KERNEL_HASHES among them) and SEV hashes table, whether
the code that checks a directly booted kernel, initrd and cmdline against that
table is built in, its TDX metadata, whether it measures what it boots into
RTMRs (TdTcg2Dxe, CCEL), the Secure Boot state and enrolled certificates of its
variable store, the edk2 version it records, and its modules.

For an IBM Z Secure Execution image (as genprotimg or pvimg wrote it) or a bare SE
header (as pvextract-hdr writes it) it shows the header: version, tag, PLD, ALD, TLD,
number of pages, plaintext control flags, the host-key hashes of its key slots, and
the image's components as its IPIB lists them ('cocobuild measure se' recomputes the
digests).

FILE is opened once and must be a regular file (a pipe or device is refused at once).
An initramfs is read as a stream: each entry's header is checked before it is read,
and --limit bounds what it may hold (decompressed bytes, expansion ratio, entries,
name length); going over one is an error naming the --limit NAME=VALUE that raises
it. Names and strings from FILE are escaped in the text output; --json keeps them
exact.`,
		Example: `  cocobuild inspect out/sample/initramfs/agent/initramfs.cpio.zst
  cocobuild inspect --json out/sample/kernel/guest/vmlinuz
  cocobuild inspect /usr/share/ovmf/OVMF.amdsev.fd
  cocobuild inspect se.img`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErr(fmt.Errorf("inspect takes one FILE, got %d arguments", len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := a.inspectFile(args[0])
			var nr *limits.NotRegularError
			if errors.As(err, &nr) || errors.Is(err, fs.ErrNotExist) {
				return usageErr(err) // FILE names no file inspect can read
			}
			if err != nil {
				return failErr(err)
			}
			if a.json {
				return a.printJSON(rep)
			}
			fmt.Fprintf(a.stdout, "%s: %s, %d bytes, sha256 %s\n", termsafe.Escape(rep.File), rep.Type, rep.Size, rep.SHA256)
			switch {
			case rep.Kernel != nil:
				if err := rep.Kernel.WriteText(a.stdout); err != nil {
					return failErr(err)
				}
			case rep.Cpio != nil:
				if err := rep.Cpio.WriteText(a.stdout); err != nil {
					return failErr(err)
				}
			case rep.Firmware != nil:
				writeFirmwareText(a.stdout, rep.Firmware)
			case rep.SE != nil:
				if err := rep.SE.WriteText(a.stdout); err != nil {
					return failErr(err)
				}
			default:
				return failErr(errors.New("nothing to show"))
			}
			return nil
		},
	}
	a.addLimitFlag(c, false)
	return c
}

// inspectFile opens path once (a regular file within the largest of the
// kernel, initrd and firmware limits: FIFOs and devices are refused
// without blocking) and tells what it is: a bzImage (read whole, within
// the kernel limit), an initramfs (read as a stream: the limits on
// entries, names and decompression apply) or a firmware image (read
// whole, within the firmware limit).
func (a *app) inspectFile(path string) (*inspectReport, error) {
	largest := limits.Initrd
	for _, l := range []limits.Limit{limits.Kernel, limits.Firmware} {
		if a.limits.Get(l) > a.limits.Get(largest) {
			largest = l
		}
	}
	f, size, err := a.limits.Open(path, largest)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sum := sha256.New()
	if n, err := io.Copy(sum, io.NewSectionReader(f, 0, size)); err != nil || n != size {
		return nil, fmt.Errorf("%s: read %d of %d bytes: %v", path, n, size, err)
	}
	rep := &inspectReport{File: path, SHA256: hex.EncodeToString(sum.Sum(nil)), Size: size}
	whole := func(l limits.Limit) ([]byte, error) {
		if err := a.limits.Check(path, l, size); err != nil {
			return nil, err
		}
		b := make([]byte, size)
		if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return b, nil
	}
	// An SE header, at the start or where SE images hold it (read in
	// place, a page or two).
	if se.Detect(f, size) {
		im, err := se.Parse(f, size)
		if err != nil {
			return nil, fmt.Errorf("%s: a Secure Execution image or header, but %w", path, err)
		}
		info := im.Info()
		rep.Type, rep.SE = "se-"+info.Kind, &info
		return rep, nil
	}
	head := make([]byte, 0x210)
	n, _ := f.ReadAt(head, 0)
	kerr := errors.New("no Linux setup header (HdrS at 0x202)")
	if n == len(head) && string(head[0x202:0x206]) == "HdrS" {
		b, err := whole(limits.Kernel)
		if err != nil {
			return nil, err
		}
		d, err := kernel.Describe(b)
		if err == nil {
			rep.Type, rep.Kernel = "bzimage", d
			return rep, nil
		}
		kerr = err
	}
	l, cerr := initramfs.InspectReader(io.NewSectionReader(f, 0, size), path, &a.limits)
	if cerr == nil {
		rep.Type, rep.Cpio = "initramfs", l
		return rep, nil
	}
	if errors.Is(cerr, limits.ErrExceeded) {
		return nil, cerr
	}
	b, err := whole(limits.Firmware)
	if err != nil {
		return nil, fmt.Errorf("%s: not an initramfs (%v) nor a bzImage (%v), and %w", path, cerr, kerr, err)
	}
	fw, ferr := ovmf.Inspect(b)
	if ferr != nil {
		return nil, fmt.Errorf("%s: neither an initramfs (%v) nor a bzImage (%v) nor a firmware image (%v)", path, cerr, kerr, ferr)
	}
	rep.Type, rep.Firmware = "firmware", fw
	return rep, nil
}

// writeFirmwareText prints what inspect found in a firmware image.
func writeFirmwareText(w io.Writer, fw *ovmf.Info) {
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	p := func(k, f string, a ...any) { fmt.Fprintf(w, "%-19s %s\n", k, fmt.Sprintf(f, a...)) }
	if fw.Edk2Version != "" {
		p("edk2 version", "%s (%s)", fw.Edk2Version, fw.Edk2VersionSource)
	} else {
		p("edk2 version", "not recorded")
	}
	var vols []string
	for _, v := range fw.Volumes {
		where := "compressed"
		if v.Offset >= 0 {
			where = fmt.Sprintf("at %#x", v.Offset)
		}
		vols = append(vols, fmt.Sprintf("%s %s, %#x bytes, %d files", v.Format, where, v.Size, v.Files))
	}
	p("firmware volumes", "%d", len(vols))
	for _, v := range vols {
		fmt.Fprintf(w, "  %s\n", v)
	}
	if fw.SEVSections == nil {
		p("SEV metadata", "none")
	} else {
		p("SEV metadata", "%d sections", len(fw.SEVSections))
		for _, s := range fw.SEVSections {
			fmt.Fprintf(w, "  %-18s GPA %#x, %#x bytes\n", s.Type, s.GPA, s.Size)
		}
	}
	if fw.HashesTable == nil {
		p("SEV hashes table", "none")
	} else {
		p("SEV hashes table", "GPA %#x, %#x bytes", fw.HashesTable.GPA, fw.HashesTable.Size)
	}
	p("checks direct boot", "%s: %s", yes(fw.VerifiesDirectBoot), fw.DirectBootEvidence)
	if fw.TDX == nil {
		p("TDX metadata", "none")
	} else {
		p("TDX metadata", "%d sections", len(fw.TDX.Sections))
		for _, s := range fw.TDX.Sections {
			fmt.Fprintf(w, "  %-18s GPA %#x, %#x bytes, raw %#x+%#x, attributes %#x\n", s.Type, s.GPA, s.MemorySize, s.DataOffset, s.RawDataSize, s.Attributes)
		}
	}
	p("measures into RTMRs", "%s: %s", yes(fw.MeasuresRTMR), fw.RTMREvidence)
	sb := fw.SecureBoot
	state := "off"
	if sb.Enabled {
		state = "on"
	}
	enrolled := "nothing enrolled"
	if len(sb.Enrolled) > 0 {
		enrolled = strings.Join(sb.Enrolled, ", ") + " enrolled"
	}
	if sb.VariableStore {
		p("Secure Boot", "%s, %s: %s", state, enrolled, sb.Evidence)
	} else {
		p("Secure Boot", "%s", sb.Evidence)
	}
	for _, c := range sb.Certificates {
		fmt.Fprintf(w, "  %-4s %s\n", c.Variable, c.Subject)
	}
	for _, k := range []string{"PK", "KEK", "db", "dbx"} {
		if n := sb.Hashes[k]; n > 0 {
			fmt.Fprintf(w, "  %-4s %d SHA-256 hashes\n", k, n)
		}
	}
	p("modules", "%d: %s", len(fw.Modules), strings.Join(fw.Modules, " "))
	p("vouches for", "SNP direct boot %s, SEV/SEV-ES direct boot %s, TDX RTMRs %s",
		yes(fw.Vouches.SNPDirectBoot), yes(fw.Vouches.SEVDirectBoot), yes(fw.Vouches.TDXRTMRs))
	for _, n := range fw.Vouches.Notes {
		fmt.Fprintf(w, "  %s\n", n)
	}
}
