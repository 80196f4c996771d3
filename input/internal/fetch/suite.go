package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cocobuild/cocobuild/internal/atomicfile"
	"github.com/cocobuild/cocobuild/internal/procgroup"
)

// SuiteRe is what a suite name looks like (a codename such as "forky", or
// "unstable", "trixie-backports").
var SuiteRe = regexp.MustCompile(`^[a-z0-9][a-z0-9.+-]*$`)

// SuiteApt fetches the packages of one Debian suite that the host's apt
// does not serve (e.g. testing's packages on a stable host), with apt-get
// and a private configuration: a sources file that asks the host's own
// Debian mirrors for that suite, and package lists kept in a state
// directory of its own. Neither the host's lists nor root are needed.
//
// The state directory (one per suite and sources file) holds:
//
//	sources.sources   the private sources (deb822)
//	lists/            apt's lists (Dir::State::Lists)
//	cache/            apt's Dir::Cache (no binary caches are written)
//	updated           present when the lists are complete
//	lock              flock: exclusive while the lists are updated, shared while they are read
type SuiteApt struct {
	Suite string
	dir   string
	opts  []string
}

// OpenSuite prepares the private apt configuration for suite under
// stateDir, from the apt sources and os-release of the system whose root
// is root (os.DirFS("/") for the host).
func OpenSuite(root fs.FS, stateDir, suite string) (*SuiteApt, error) {
	if !SuiteRe.MatchString(suite) {
		return nil, fmt.Errorf("invalid suite %q: a suite is a name such as \"forky\" or \"unstable\"", suite)
	}
	entries, err := ReadSources(root)
	if err != nil {
		return nil, err
	}
	rel, err := ReadOSRelease(root)
	if err != nil {
		return nil, err
	}
	src, err := SuiteSources(entries, rel, suite)
	if err != nil {
		return nil, fmt.Errorf("suite %s: %w", suite, err)
	}
	sum := sha256.Sum256([]byte(src))
	dir := filepath.Join(stateDir, suite+"-"+hex.EncodeToString(sum[:6]))
	for _, d := range []string{"lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("creating apt's state for suite %s: %w", suite, err)
		}
	}
	sources := filepath.Join(dir, "sources.sources")
	if b, err := os.ReadFile(sources); err != nil || string(b) != src {
		if err := atomicfile.WriteFile(sources, []byte(src), 0o644); err != nil {
			return nil, err
		}
	}
	opts := []string{
		"-o", "Dir::Etc::SourceList=" + sources,
		"-o", "Dir::Etc::SourceParts=-",
		"-o", "Dir::State::Lists=" + filepath.Join(dir, "lists"),
		"-o", "Dir::Cache=" + filepath.Join(dir, "cache"),
		// No binary caches on disk: readers under a shared lock never write.
		"-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache=",
		// The candidate is the suite's, whatever the host has installed.
		"-o", "Dir::State::status=/dev/null",
		"-o", "APT::Update::Error-Mode=any",
	}
	if os.Geteuid() == 0 {
		// apt drops to its own user for downloads when run as root; that
		// user cannot write the caller's cache.
		opts = append(opts, "-o", "APT::Sandbox::User=root")
	}
	return &SuiteApt{Suite: suite, dir: dir, opts: opts}, nil
}

// Dir is the suite's state directory.
func (a *SuiteApt) Dir() string { return a.dir }

// Update fetches the suite's package lists again.
func (a *SuiteApt) Update(ctx context.Context) error {
	unlock, err := a.lock(ctx, syscall.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	return a.update(ctx)
}

// update runs apt-get update; the caller holds the exclusive lock.
func (a *SuiteApt) update(ctx context.Context) error {
	marker := filepath.Join(a.dir, "updated")
	if err := os.Remove(marker); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	cmd := procgroup.Command(ctx, "apt-get", append(a.opts, "update", "-q")...)
	cmd.Env = append(cmd.Env, "LC_ALL=C") // procgroup.Command: childenv.Environ(ctx)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		msg := strings.TrimSpace(out.String())
		if strings.Contains(msg, "does not have a Release file") {
			return fmt.Errorf("updating the package lists of suite %s: the host's Debian mirrors do not serve it (%s); check the suite's name", a.Suite, firstError(msg))
		}
		return fmt.Errorf("updating the package lists of suite %s (apt-get update: %v): %s", a.Suite, err, firstError(msg))
	}
	return atomicfile.WriteFile(marker, nil, 0o644)
}

// firstError is the first "E:" line of apt's output, or its last line.
func firstError(msg string) string {
	for _, l := range strings.Split(msg, "\n") {
		if strings.HasPrefix(l, "E: ") {
			return l
		}
	}
	return lastLine(msg)
}

// readLocked runs fn under the shared lock, with complete lists: they are
// fetched first when missing or left incomplete by an interrupted update.
func (a *SuiteApt) readLocked(ctx context.Context, fn func() error) error {
	for {
		unlock, err := a.lock(ctx, syscall.LOCK_SH)
		if err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(a.dir, "updated")); err == nil {
			defer unlock()
			return fn()
		}
		unlock()
		if err := a.Update(ctx); err != nil {
			return err
		}
	}
}

// Download runs `apt-get download PKG=VERSION` for the suite in dir and
// returns the .deb's path. A version the lists do not have is looked up
// again in freshly fetched lists before Download fails with ErrVersionGone.
func (a *SuiteApt) Download(ctx context.Context, pkg, version, dir string) (string, error) {
	var deb string
	err := a.readLocked(ctx, func() (err error) {
		deb, err = aptDownload(ctx, a.opts, pkg, version, dir)
		return err
	})
	if !errors.Is(err, ErrVersionGone) {
		return deb, err
	}
	if err := a.Update(ctx); err != nil {
		return "", err
	}
	err = a.readLocked(ctx, func() (err error) {
		deb, err = aptDownload(ctx, a.opts, pkg, version, dir)
		return err
	})
	return deb, err
}

// DownloadAll runs one `apt-get download` for every PKG=VERSION of specs
// in dir, with the suite's lists as they are (fetched when missing); any
// version they lack fails it (Download then tells which).
func (a *SuiteApt) DownloadAll(ctx context.Context, specs []string, dir string) error {
	return a.readLocked(ctx, func() error {
		cmd := procgroup.Command(ctx, "apt-get", append(append(slices.Clone(a.opts), "download", "-q"), specs...)...)
		cmd.Dir = dir
		cmd.Env = append(cmd.Env, "LC_ALL=C")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get download of %d packages: %v: %s", len(specs), err, lastLine(string(out)))
		}
		return nil
	})
}

// Candidate returns the version of pkg the suite serves now, from freshly
// fetched lists.
func (a *SuiteApt) Candidate(ctx context.Context, pkg string) (string, error) {
	if err := a.Update(ctx); err != nil {
		return "", err
	}
	return a.candidate(ctx, pkg)
}

// CachedCandidate is Candidate from the lists as they are (fetched when
// missing): for error messages after a refresh.
func (a *SuiteApt) CachedCandidate(ctx context.Context, pkg string) (string, error) {
	return a.candidate(ctx, pkg)
}

func (a *SuiteApt) candidate(ctx context.Context, pkg string) (string, error) {
	var v string
	err := a.readLocked(ctx, func() (err error) {
		v, err = aptCandidate(ctx, a.opts, pkg)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("suite %s: %w", a.Suite, err)
	}
	return v, nil
}

// lock takes the state directory's flock (LOCK_SH or LOCK_EX), waiting
// for it while ctx allows, and returns its release.
func (a *SuiteApt) lock(ctx context.Context, how int) (func(), error) {
	f, err := os.OpenFile(filepath.Join(a.dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking apt's state for suite %s: %w", a.Suite, err)
	}
	fd := int(f.Fd())
	for {
		err := syscall.Flock(fd, how|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(fd, syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking apt's state for suite %s: %w", a.Suite, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
