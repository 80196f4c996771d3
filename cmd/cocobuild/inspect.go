package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/cocobuild/cocobuild/initramfs"
	"github.com/cocobuild/cocobuild/kernel"
)

// inspectReport is what `inspect --json` prints: the file's digest and,
// depending on what it is, its cpio entries or its kernel setup header, PE
// sections and Authenticode digests.
type inspectReport struct {
	File   string              `json:"file"`
	SHA256 string              `json:"sha256"`
	Size   int64               `json:"size"`
	Type   string              `json:"type"` // "initramfs" or "bzimage"
	Cpio   *initramfs.Listing  `json:"cpio,omitempty"`
	Kernel *kernel.Description `json:"kernel,omitempty"`
}

func newInspectCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect FILE",
		Short: "List an initramfs's entries (any compression) or a bzImage's setup header, PE sections and Authenticode digests",
		Long: `inspect lists the entries of an initramfs — newc cpio archives, uncompressed or
gzip/zstd/xz-compressed, several one after another as the kernel reads them — with
mode, uid/gid, size, sha256 and name; or, for a bzImage, what its setup header says
and, when it has an EFI stub, its PE sections and its Authenticode SHA-256 and
SHA-384 digests: the values firmware measures when it loads the kernel as an EFI
application (TDX RTMR1, TPM PCR4), as osslsigncode and sbverify compute them.`,
		Example: `  cocobuild inspect out/sample/initramfs/agent/initramfs.cpio.zst
  cocobuild inspect --json out/sample/kernel/guest/vmlinuz`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErr(fmt.Errorf("inspect takes one FILE, got %d arguments", len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[0])
			if err != nil {
				return failErr(err)
			}
			sum := sha256.Sum256(b)
			rep := inspectReport{File: args[0], SHA256: hex.EncodeToString(sum[:]), Size: int64(len(b))}
			if d, kerr := kernel.Describe(b); kerr == nil {
				rep.Type, rep.Kernel = "bzimage", d
			} else {
				l, cerr := initramfs.Inspect(b)
				if cerr != nil {
					return failErr(fmt.Errorf("%s: neither an initramfs (%v) nor a bzImage (%v)", args[0], cerr, kerr))
				}
				rep.Type, rep.Cpio = "initramfs", l
			}
			if a.json {
				return a.printJSON(rep)
			}
			fmt.Fprintf(a.stdout, "%s: %s, %d bytes, sha256 %s\n", rep.File, rep.Type, rep.Size, rep.SHA256)
			switch {
			case rep.Kernel != nil:
				if err := rep.Kernel.WriteText(a.stdout); err != nil {
					return failErr(err)
				}
			case rep.Cpio != nil:
				if err := rep.Cpio.WriteText(a.stdout); err != nil {
					return failErr(err)
				}
			default:
				return failErr(errors.New("nothing to show"))
			}
			return nil
		},
	}
}
