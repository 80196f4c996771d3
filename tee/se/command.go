package se

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/internal/termsafe"
	model "github.com/cocobuild/cocobuild/measure/se"
	"github.com/cocobuild/cocobuild/tee"
)

// Command implements tee.TEE: `cocobuild measure se IMAGE`.
func (TEE) Command(cli *tee.CLI) *cobra.Command {
	var headerKey string
	c := &cobra.Command{
		Use:   "se IMAGE",
		Short: "Check an IBM Z Secure Execution image: recompute PLD, ALD and TLD and compare them with its header",
		Long: `Recompute the page-list, address-list and tweak-list digests (PLD, ALD, TLD) of an IBM Z
Secure Execution image from its encrypted components — their pages, the addresses its IPIB
lists and the tweaks it stores — as genprotimg computes them, and say whether each equals
the one in the image's SE header. The header's tag, which the Ultravisor checks and IBM's
attestation reports, authenticates these digests, so an image whose digests match has the
components its tag vouches for.

It prints the header (version, tag, the host-key hashes of its key slots, flags) and the
reference values Trustee's se verifier and its example policy compare: se.tag,
se.image_phkh (one per key slot) and se.version. The exit status is 1 when a digest
differs (the image is damaged or altered) or the image cannot be read as one; --json
prints the same as JSON.

With --header-key (the 32-byte AES key the image's header is encrypted with, genprotimg's
--x-header-key), it also checks the header's tag, which then vouches for the values, decrypts
the header's keys and the stage3b loader's arguments, and prints the size and SHA-256 of the
kernel, the initrd and the cmdline (and its text) the image holds. Without the key only the
Ultravisor can check the tag.

IMAGE must be a regular file within --limit file (4GiB); it is read one page at a time.`,
		Example: `  cocobuild measure se se.img
  cocobuild measure se --json se.img
  cocobuild measure se --header-key hdr.key se.img   # also check the tag and digest the kernel, initrd and cmdline inside`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return cli.Usage(fmt.Errorf("measure se takes one IMAGE, got %d arguments", len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMeasure(cli, cmd, args[0], headerKey)
		},
	}
	c.Flags().StringVar(&headerKey, "header-key", "", "file with the header's AES-256-GCM key (32 bytes): check the tag and digest the image's kernel, initrd and cmdline")
	return c
}

// opened is what the header key shows of an image.
type opened struct {
	TagVerified bool                     `json:"tag_verified"`
	Contents    map[string]model.Content `json:"contents"`
}

// open checks the tag of the image's header with the header key and
// digests the kernel, initrd and cmdline it holds.
func open(ctx context.Context, r io.ReaderAt, size int64, key []byte) (*opened, error) {
	im, err := model.Parse(r, size)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, im.Header.Size)
	if _, err := r.ReadAt(raw, im.HeaderOffset); err != nil {
		return nil, err
	}
	s, err := im.Header.Open(raw, key)
	if err != nil {
		return nil, err
	}
	args, err := im.ReadStage3bArgs(ctx, r, s)
	if err != nil {
		return nil, err
	}
	c, err := im.Contents(ctx, r, s, args)
	if err != nil {
		return nil, err
	}
	return &opened{TagVerified: true, Contents: c}, nil
}

func runMeasure(cli *tee.CLI, cmd *cobra.Command, path, headerKey string) error {
	var key []byte
	if headerKey != "" {
		var err error
		if key, err = tee.ReadInput(cli.Limits, "header-key", headerKey, limits.File); err != nil {
			return cli.Usage(err)
		}
		if len(key) != model.HeaderKeySize {
			return cli.Usage(fmt.Errorf("--header-key: %d bytes, want the %d-byte AES-256 key", len(key), model.HeaderKeySize))
		}
	}
	f, size, err := cli.Limits.Open(path, limits.File)
	if err != nil {
		var nr *limits.NotRegularError
		if errors.As(err, &nr) || !errors.Is(err, limits.ErrExceeded) {
			return cli.Usage(tee.Escaped(err))
		}
		return cli.Failure(tee.Escaped(err))
	}
	defer f.Close()
	r, err := Check(cmd.Context(), f, size)
	if err != nil {
		return cli.Failure(tee.Escaped(fmt.Errorf("%s: %w", path, err)))
	}
	var op *opened
	if key != nil {
		if op, err = open(cmd.Context(), f, size, key); err != nil {
			return cli.Failure(tee.Escaped(fmt.Errorf("%s: --header-key: %w", path, err)))
		}
	}
	out := struct {
		File string `json:"file"`
		*Result
		Opened          *opened        `json:"opened,omitempty"`
		ReferenceValues map[string]any `json:"reference_values"`
	}{path, r, op, map[string]any{"se.tag": r.Header.Tag, "se.image_phkh": r.Header.HostKeyHashes, "se.version": model.AttestationVersion1}}
	if cli.JSON() {
		if err := cli.PrintJSON(out); err != nil {
			return err
		}
	} else {
		w := cli.Stdout
		fmt.Fprintf(w, "%s: Secure Execution image, %d bytes\n", termsafe.Escape(path), size)
		if err := r.Header.WriteText(w); err != nil {
			return err
		}
		for _, d := range []struct{ name, got, want string }{
			{"pld", r.Recomputed.PLD, r.Header.PLD}, {"ald", r.Recomputed.ALD, r.Header.ALD}, {"tld", r.Recomputed.TLD, r.Header.TLD},
			{"pages", fmt.Sprint(r.Recomputed.Pages), fmt.Sprint(r.Header.Pages)},
		} {
			verdict := "equals the header's"
			if d.got != d.want {
				verdict = "DIFFERS from the header's " + d.want
			}
			fmt.Fprintf(w, "recomputed %-5s %s: %s\n", d.name, d.got, verdict)
		}
		if op != nil {
			fmt.Fprintln(w, "tag              verified with the header key")
			for _, name := range []string{"kernel", "initrd", "cmdline"} {
				if c, ok := op.Contents[name]; ok {
					fmt.Fprintf(w, "%-16s %d bytes, sha256 %s\n", name, c.Size, c.SHA256)
				}
			}
			if c, ok := op.Contents["cmdline"]; ok {
				fmt.Fprintf(w, "cmdline text     %s\n", strconv.QuoteToASCII(c.Text))
			}
		}
		fmt.Fprintf(w, "se.tag           %s\n", r.Header.Tag)
		for _, k := range r.Header.HostKeyHashes {
			fmt.Fprintf(w, "se.image_phkh    %s\n", k)
		}
		fmt.Fprintf(w, "se.version       %d\n", model.AttestationVersion1)
	}
	if !r.OK {
		return cli.Failure(fmt.Errorf("%s: the recomputed %s differ from the SE header's: the image is damaged or was altered after it was built", termsafe.Escape(path), strings.Join(r.Mismatches, ", ")))
	}
	return nil
}
