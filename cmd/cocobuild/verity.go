package main

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/cocobuild/cocobuild/internal/derive"
	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/rootfs/verity"
)

func newVerityCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "verity",
		Short: "Format and verify dm-verity hash trees (as veritysetup does, reproducibly)",
		Example: `  cocobuild verity format rootfs.erofs rootfs.verity
  cocobuild verity verify rootfs.erofs rootfs.verity 3b1f…`,
		Args: cobra.NoArgs,
	}
	c.AddCommand(newVerityFormatCmd(a), newVerityVerifyCmd(a))
	return c
}

func newVerityFormatCmd(a *app) *cobra.Command {
	var (
		salt, algo, uuidStr string
		dataBS, hashBS      uint32
		noSuperblock        bool
	)
	c := &cobra.Command{
		Use:   "format DATA [HASH]",
		Short: "Write the hash tree of DATA into HASH, or after the data when HASH is left out",
		Long: `format writes the dm-verity hash tree of DATA, byte for byte what
veritysetup format writes with the same parameters. The salt and the
superblock UUID are derived from DATA's sha256 unless given, so the same
data always gives the same tree and root hash. Without HASH the tree is
appended to DATA (which must be a whole number of blocks).`,
		Example: `  cocobuild verity format rootfs.erofs rootfs.verity
  cocobuild verity format --salt - --no-superblock rootfs.erofs rootfs.verity
  cocobuild verity format rootfs.img --json`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := verity.Params{Algorithm: algo, DataBlockSize: dataBS, HashBlockSize: hashBS, Superblock: !noSuperblock}
			if err := p.Check(); err != nil {
				return usageErr(err)
			}
			var digest string
			if salt == "" || uuidStr == "" && !noSuperblock {
				d, err := verity.FileSHA256(args[0])
				if err != nil {
					return failErr(err)
				}
				digest = d
			}
			switch salt {
			case "":
				p.Salt = verity.DeriveSalt(digest)
			case "-":
			default:
				b, err := hex.DecodeString(salt)
				if err != nil {
					return usageErr(fmt.Errorf("--salt %q is not hexadecimal (or - for none)", salt))
				}
				p.Salt = b
			}
			if !noSuperblock {
				u := derive.UUID("verity superblock", digest)
				if uuidStr != "" {
					var err error
					if u, err = uuid.Parse(uuidStr); err != nil {
						return usageErr(fmt.Errorf("--uuid %q is not a UUID", uuidStr))
					}
				}
				p.UUID = u
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			var r *verity.Result
			var err error
			if len(args) == 2 {
				r, err = verity.Format(ctx, args[0], args[1], p)
			} else {
				r, err = verity.Append(ctx, args[0], p)
			}
			if err != nil {
				return failErr(err)
			}
			return printVerity(a, r)
		},
	}
	f := c.Flags()
	f.StringVar(&salt, "salt", "", "salt in hex, - for none (default: derived from the data's sha256)")
	f.StringVar(&algo, "hash", verity.DefaultAlgorithm, "hash algorithm: sha256, sha512 or sha1")
	f.Uint32Var(&dataBS, "data-block-size", verity.DefaultBlockSize, "data block size in bytes")
	f.Uint32Var(&hashBS, "hash-block-size", verity.DefaultBlockSize, "hash block size in bytes")
	f.BoolVar(&noSuperblock, "no-superblock", false, "write no veritysetup superblock")
	f.StringVar(&uuidStr, "uuid", "", "superblock UUID (default: derived from the data's sha256)")
	return c
}

func printVerity(a *app, r *verity.Result) error {
	if a.json {
		return a.printJSON(r)
	}
	salt := r.Salt
	if salt == "" {
		salt = "-"
	}
	fmt.Fprintf(a.stdout, "Layout:           %s\nUUID:             %s\nHash type:        %d\nData blocks:      %d\nData block size:  %d\nHash block size:  %d\nHash algorithm:   %s\nSalt:             %s\nHash offset:      %d\nHash start block: %d\nRoot hash:        %s\n",
		r.Layout, r.UUID, r.HashType, r.DataBlocks, r.DataBlockSize, r.HashBlockSize, r.Algorithm, salt, r.HashOffset, r.HashStartBlock, r.RootHash)
	return nil
}

func newVerityVerifyCmd(a *app) *cobra.Command {
	var hashOffset uint64
	c := &cobra.Command{
		Use:   "verify DATA HASH ROOT_HASH",
		Short: "Check DATA against the hash tree in HASH (with a superblock) and the root hash",
		Example: `  cocobuild verity verify rootfs.erofs rootfs.verity 3b1f…
  cocobuild verity verify rootfs.img rootfs.img 3b1f… --hash-offset 10485760`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Both are regular files within the file limit, checked
			// before a byte is read: a pipe or device never ends.
			d, _, err := a.limits.Open(args[0], limits.File)
			if err != nil {
				return usageErr(fmt.Errorf("DATA: %w", err))
			}
			d.Close()
			f, _, err := a.limits.Open(args[1], limits.File)
			if err != nil {
				return usageErr(fmt.Errorf("HASH: %w", err))
			}
			r, err := verity.ReadSuperblock(f, hashOffset)
			f.Close()
			if err != nil {
				return failErr(fmt.Errorf("%s: %w (verify reads the parameters from a veritysetup superblock; give --hash-offset for an appended tree)", args[1], err))
			}
			r.RootHash = args[2]
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			if err := verity.Verify(ctx, args[0], args[1], r); err != nil {
				return failErr(err)
			}
			if a.json {
				return a.printJSON(map[string]any{"verified": true, "parameters": r})
			}
			fmt.Fprintf(a.stdout, "%s verified with root hash %s\n", args[0], args[2])
			return nil
		},
	}
	c.Flags().Uint64Var(&hashOffset, "hash-offset", 0, "byte offset of the superblock in HASH")
	a.addLimitFlag(c, false)
	return c
}
