package input

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cocobuild/cocobuild/input/internal/fetch"
	"github.com/cocobuild/cocobuild/internal/debroot"
	"github.com/cocobuild/cocobuild/internal/filehash"
	"github.com/cocobuild/cocobuild/recipes"
)

// Debian is the input kind's side of Debian package sets, for the blocks
// that install packages (internal/registry hands it to the rootfs kind):
// the sets the lock file pins, and their .debs, fetched from the suite
// through the host's own apt sources and kept in the cache by sha256.
func (k Kind) Debian() debroot.Archive { return &archive{cfg: k.cfg} }

type archive struct{ cfg *config }

// Pinned implements debroot.Archive.
func (a *archive) Pinned(addr string, req debroot.Request) (*debroot.Set, error) {
	if a.cfg == nil || a.cfg.lock == nil {
		return nil, nil
	}
	s, ok := a.cfg.lock.Packages[addr]
	if ok && s.Suite == req.Suite && s.Request == req.Digest() {
		return &s, nil
	}
	if !a.cfg.Locked || a.cfg.Resolving {
		return nil, nil
	}
	if ok {
		return nil, fmt.Errorf("--locked: the packages of %s changed since %s recorded them (suite, packages, exclude, essential_only or architecture); run `cocobuild lock` to resolve them again", addr, recipes.LockFileName)
	}
	return nil, fmt.Errorf("--locked: %s installs Debian packages and %s has no packages entry for it; run `cocobuild lock`", addr, recipes.LockFileName)
}

// Unpinned implements debroot.Archive.
func (a *archive) Unpinned() bool { return a.cfg != nil && a.cfg.AllowUnpinned }

func (a *archive) suite(name string) (*fetch.SuiteApt, error) {
	if a.cfg == nil || a.cfg.cache == nil {
		return nil, fmt.Errorf("no cache to fetch Debian packages into (make the input kind with input.New)")
	}
	return fetch.OpenSuite(os.DirFS("/"), a.cfg.aptDir, name)
}

// Resolve implements debroot.Archive: mmdebstrap installs the request from
// the suite, through a private apt configuration that asks the host's own
// Debian mirrors for it; the .debs it used are kept in the cache.
func (a *archive) Resolve(ctx context.Context, req debroot.Request) (*debroot.Set, error) {
	apt, err := a.suite(req.Suite)
	if err != nil {
		return nil, err
	}
	mode, err := debroot.ChooseMode(debroot.ReadHost(os.Geteuid()))
	if err != nil {
		return nil, err
	}
	work, err := a.cfg.cache.TempDir("debroot")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	r := debroot.Run{Mode: mode, Work: work}
	set, debs, err := r.Resolve(ctx, req, filepath.Join(apt.Dir(), "sources.sources"), filepath.Join(work, "resolved.tar"))
	if err != nil {
		return nil, fmt.Errorf("resolving the packages of suite %s: %w", req.Suite, err)
	}
	for sum, p := range debs {
		if err := a.keep(p, sum); err != nil {
			return nil, err
		}
	}
	return set, nil
}

// keep moves a verified .deb into the blob cache under its sha256.
func (a *archive) keep(path, sum string) error {
	dst := a.cfg.cache.BlobPath(sum)
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	if err := os.Chmod(path, 0o444); err != nil {
		return err
	}
	if err := os.Rename(path, dst); err != nil {
		return fmt.Errorf("storing download: %w", err)
	}
	return nil
}

// Debs implements debroot.Archive: the .debs kept in the cache, and the
// others downloaded with one apt-get call (one per package when that
// fails, to name the package at fault).
func (a *archive) Debs(ctx context.Context, suite string, ps []debroot.Package) (map[string]string, error) {
	if a.cfg == nil || a.cfg.cache == nil {
		return nil, fmt.Errorf("no cache to fetch Debian packages into (make the input kind with input.New)")
	}
	out := map[string]string{}
	var missing []debroot.Package
	for _, p := range ps {
		blob := a.cfg.cache.BlobPath(p.SHA256)
		if got, _, err := filehash.SHA256(blob); err == nil && got == p.SHA256 {
			out[p.SHA256] = blob
		} else {
			missing = append(missing, p)
		}
	}
	if len(missing) > 1 {
		if apt, err := a.suite(suite); err == nil {
			if tmp, err := a.cfg.cache.TempDir("fetch"); err == nil {
				defer os.RemoveAll(tmp)
				specs := make([]string, len(missing))
				for i, p := range missing {
					specs[i] = p.Name + "=" + p.Version
				}
				if apt.DownloadAll(ctx, specs, tmp) == nil {
					var left []debroot.Package
					for _, p := range missing {
						f := filepath.Join(tmp, debroot.DebFileName(p))
						if got, _, err := filehash.SHA256(f); err == nil && got == p.SHA256 && a.keep(f, got) == nil {
							out[p.SHA256] = a.cfg.cache.BlobPath(got)
						} else {
							left = append(left, p)
						}
					}
					missing = left
				}
			}
		}
	}
	for _, p := range missing {
		path, err := a.deb(ctx, suite, p)
		if err != nil {
			return nil, err
		}
		out[p.SHA256] = path
	}
	return out, nil
}

// deb is the path of p's .deb, its sha256 checked.
func (a *archive) deb(ctx context.Context, suite string, p debroot.Package) (string, error) {
	if a.cfg == nil || a.cfg.cache == nil {
		return "", fmt.Errorf("no cache to fetch Debian packages into (make the input kind with input.New)")
	}
	blob := a.cfg.cache.BlobPath(p.SHA256)
	if got, _, err := filehash.SHA256(blob); err == nil && got == p.SHA256 {
		return blob, nil
	} else if err == nil {
		if err := a.cfg.cache.RemoveBlob(p.SHA256); err != nil {
			return "", err
		}
	}
	apt, err := a.suite(suite)
	if err != nil {
		return "", err
	}
	tmp, err := a.cfg.cache.TempDir("fetch")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	deb, err := apt.Download(ctx, p.Name, p.Version, tmp)
	if errors.Is(err, fetch.ErrVersionGone) {
		return "", fmt.Errorf("Debian package %s, pinned in %s, is no longer in suite %s of the package archive (its lists were fetched again to check): %w. To fix it, run `cocobuild lock -update` to move the set to the versions it serves now", p, recipes.LockFileName, suite, err)
	}
	if err != nil {
		return "", fmt.Errorf("Debian package %s: %w", p, err)
	}
	got, _, err := filehash.SHA256(deb)
	if err != nil {
		return "", err
	}
	if got != p.SHA256 {
		return "", fmt.Errorf("Debian package %s: the archive's .deb has sha256 %s, the lock pins %s; if the new bytes are the ones you want, run `cocobuild lock -update`", p, got, p.SHA256)
	}
	if err := a.keep(deb, got); err != nil {
		return "", err
	}
	return blob, nil
}
