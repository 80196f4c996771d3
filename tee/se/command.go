package se

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/internal/termsafe"
	model "github.com/cocobuild/cocobuild/measure/se"
	"github.com/cocobuild/cocobuild/tee"
)

// Command implements tee.TEE: `cocobuild measure se IMAGE`.
func (TEE) Command(cli *tee.CLI) *cobra.Command {
	return &cobra.Command{
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

IMAGE must be a regular file within --limit file (4GiB); it is read one page at a time.`,
		Example: `  cocobuild measure se se.img
  cocobuild measure se --json se.img`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return cli.Usage(fmt.Errorf("measure se takes one IMAGE, got %d arguments", len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMeasure(cli, cmd, args[0])
		},
	}
}

func runMeasure(cli *tee.CLI, cmd *cobra.Command, path string) error {
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
	out := struct {
		File string `json:"file"`
		*Result
		ReferenceValues map[string]any `json:"reference_values"`
	}{path, r, map[string]any{"se.tag": r.Header.Tag, "se.image_phkh": r.Header.HostKeyHashes, "se.version": model.AttestationVersion1}}
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
