package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cocobuild/cocobuild/repro"
	"github.com/cocobuild/cocobuild/repro/diff"
)

func newReproCmd(a *app) *cobra.Command {
	var rf recipeFlags
	var rmf remoteFlags
	var keep bool
	var work string
	var reuse []string
	c := &cobra.Command{
		Use:   "repro [RECIPE]",
		Short: "Build a recipe twice, the second time perturbed, and compare every artifact",
		Long: `Repro builds the recipe twice in separate directories. The second build runs with a
cold cache and a different build path, working directory, TZ, locale, umask, HOME,
TMPDIR and GOMAXPROCS, and, when run as root, as another uid. It then compares every
artifact and every measurement. Exit 0: identical. Exit 1: the report names each
differing artifact and, inside it, the first differing members.

Neither build publishes (they run build --no-publish): they sign nothing, need no
private key and append to none of the recipe's feeds, and the outputs compared hold
no publish/ files. To check a published release against a rebuild, use verify-build.

--reuse BLOCK lets the second build take that block's steps from the first build's
cache instead of building them again (the report says so): for a slow block whose
reproducibility is checked by other means, e.g. a kernel compared with its published
digest by verify-build.

--cache-from and --cache-to (or $COCOBUILD_CACHE_FROM/_TO, or the recipe's cache
setting) apply to the first build only: it pulls what a remote cache holds and pushes
what it builds. The second build never uses a remote cache (--cache-from none
--cache-to none): it builds every step from scratch, so that it checks the first.`,
		Example: `  cocobuild repro recipes/sample
  cocobuild repro --json --keep recipes/sample
  cocobuild repro --reuse kernel.guest recipes/sample`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			recipe := "."
			if len(args) > 0 {
				recipe = args[0]
			}
			exe, err := os.Executable()
			if err != nil {
				return failErr(err)
			}
			var extra []string
			for _, v := range rf.vars {
				extra = append(extra, "--var", v)
			}
			for _, f := range rf.varFiles {
				abs, _ := filepath.Abs(f)
				extra = append(extra, "--var-file", abs)
			}
			if rf.locked {
				extra = append(extra, "--locked")
			}
			if rf.allowUnpinned {
				extra = append(extra, "--allow-unpinned")
			}
			if _, _, err := rmf.refs(a, nil); err != nil {
				return err
			}
			var remoteA []string
			if cmd.Flags().Changed("cache-from") {
				for _, r := range rmf.from {
					remoteA = append(remoteA, "--cache-from", r)
				}
			}
			if cmd.Flags().Changed("cache-to") {
				for _, r := range rmf.to {
					remoteA = append(remoteA, "--cache-to", r)
				}
			}
			// The two builds' own output is shown only when one fails.
			var log bytes.Buffer
			rep, err := repro.Run(cmd.Context(), recipe, repro.Options{
				Exe: exe, Args: extra, RemoteArgs: remoteA, Reuse: reuse, Env: a.childEnv, CacheDir: rf.cacheDir, WorkDir: work, Keep: keep, Log: &log,
				Limits: &a.limits,
			})
			if err != nil {
				a.stderr.Write(log.Bytes())
				return failErr(err)
			}
			if a.json {
				a.printJSON(map[string]any{"reproducible": rep.Reproducible(), "report": rep})
			} else {
				repro.Format(a.stdout, rep)
			}
			if !rep.Reproducible() {
				return &exitError{code: exitFailure, err: fmt.Errorf("%s is not reproducible", recipe), printed: a.json}
			}
			return nil
		},
	}
	rf.register(c)
	rmf.register(c)
	c.Flags().BoolVar(&keep, "keep", false, "keep both build directories for inspection")
	c.Flags().StringVar(&work, "work-dir", "", "where to put the two builds (default: a new temporary directory)")
	c.Flags().StringArrayVar(&reuse, "reuse", nil, "a block (TYPE.NAME) whose steps the second build copies from the first build's cache; repeatable")
	a.addLimitFlag(c, false) // bounds the comparison of the two outputs
	return c
}

func newDiffCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "diff A B",
		Short: "Explain how two build directories or two artifacts differ",
		Long: `Diff compares two output directories file by file, or two files. Inside files it
understands — cpio archives (also gzip/zstd/xz compressed), tar archives, erofs,
squashfs and ext4 images (also with a dm-verity tree appended, and inside differing
GPT partitions: extracted with fsck.erofs, unsquashfs or debugfs into a temporary
directory), GPT disk images, JSON documents such as manifest.json — it names the
differing members: the entry, file, partition or field, and what differs (content,
mode, owner, size, link, mtime, order).

Inputs may come from anyone: symbolic links below a directory are compared by their
targets and never followed, pipes, sockets and devices by type, mode and device
numbers and never opened, and a file given as A or B must be a regular file.
Files and archives are read as streams, within the limits of --limit (file size,
decompressed bytes and expansion ratio, entries, name length); going over one is an
error that names it and the --limit NAME=VALUE that raises it.
Exit 0 when identical, 1 when they differ, 2 when they cannot be compared.`,
		Example: `  cocobuild diff out/sample /tmp/other/out/sample
  cocobuild diff a/initramfs.cpio.zst b/initramfs.cpio.zst
  cocobuild diff a/rootfs.erofs b/rootfs.erofs
  cocobuild diff --json --limit decompressed=4GiB a/big.cpio.zst b/big.cpio.zst`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := diff.Comparer{Limits: &a.limits, Context: cmd.Context()}.Paths(args[0], args[1])
			if err != nil {
				return usageErr(err)
			}
			if a.json {
				a.printJSON(map[string]any{"identical": rep.Identical(), "compared": rep.Compared, "differences": rep.Differences})
			} else if rep.Identical() {
				fmt.Fprintf(a.stdout, "identical (%d files compared)\n", rep.Compared)
			} else {
				for _, d := range rep.Differences {
					fmt.Fprintln(a.stdout, d)
				}
			}
			if !rep.Identical() {
				return &exitError{code: exitFailure, printed: true}
			}
			return nil
		},
	}
	a.addLimitFlag(c, false)
	return c
}
