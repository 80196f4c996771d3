// Package fetch brings inputs onto the machine: HTTP downloads, Debian
// packages through the host's apt-get, and files extracted from .deb archives.
package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cocobuild/cocobuild/internal/childenv"
	"github.com/cocobuild/cocobuild/internal/procgroup"
)

// HTTP downloads url into w, reporting progress (total is -1 when unknown).
func HTTP(ctx context.Context, client *http.Client, url string, w io.Writer, progress func(done, total int64)) (int64, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	pw := &progressWriter{w: w, total: resp.ContentLength, fn: progress}
	n, err := io.Copy(pw, resp.Body)
	if err != nil {
		return n, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("GET %s: got %d of %d bytes", url, n, resp.ContentLength)
	}
	return n, nil
}

type progressWriter struct {
	w     io.Writer
	done  int64
	total int64
	fn    func(done, total int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += int64(n)
	if p.fn != nil {
		p.fn(p.done, p.total)
	}
	return n, err
}

// ErrVersionGone reports a package version that the archive no longer serves.
var ErrVersionGone = errors.New("version not in the package archive")

// AptDownload runs `apt-get download PKG=VERSION` in dir with the host's
// apt configuration and returns the path of the .deb it wrote.
func AptDownload(ctx context.Context, pkg, version, dir string) (string, error) {
	return aptDownload(ctx, nil, pkg, version, dir)
}

// aptDownload runs `apt-get OPTS download PKG=VERSION` in dir.
func aptDownload(ctx context.Context, opts []string, pkg, version, dir string) (string, error) {
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", fmt.Errorf("apt-get not found: deb inputs need a Debian or Ubuntu host")
	}
	// apt-get starts its download methods as children: a process group,
	// killed whole on cancellation.
	args := append(slices.Clone(opts), "download", "-q", pkg+"="+version)
	cmd := procgroup.Command(ctx, "apt-get", args...)
	cmd.Dir = dir
	cmd.Env = append(cmd.Env, "LC_ALL=C") // procgroup.Command: childenv.Environ(ctx)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if strings.Contains(msg, "was not found") || strings.Contains(msg, "Unable to locate package") || strings.Contains(msg, "has no installation candidate") {
			return "", fmt.Errorf("%w: %s", ErrVersionGone, lastLine(msg))
		}
		return "", fmt.Errorf("apt-get download %s=%s: %v: %s", pkg, version, err, lastLine(msg))
	}
	// apt-get escapes ':' in versions as %3a in the file name.
	matches, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if len(matches) != 1 {
		return "", fmt.Errorf("apt-get download %s=%s wrote %d .deb files, want 1", pkg, version, len(matches))
	}
	return matches[0], nil
}

// AptCandidate returns the version apt would install for pkg now, with the
// host's apt configuration.
func AptCandidate(ctx context.Context, pkg string) (string, error) {
	v, err := aptCandidate(ctx, nil, pkg)
	if errors.Is(err, ErrVersionGone) {
		return "", fmt.Errorf("%w (run apt-get update, or check the package name)", err)
	}
	return v, err
}

// aptCandidate runs `apt-cache OPTS policy PKG` and returns its candidate.
func aptCandidate(ctx context.Context, opts []string, pkg string) (string, error) {
	cmd := exec.CommandContext(ctx, "apt-cache", append(slices.Clone(opts), "policy", pkg)...)
	cmd.Env = append(childenv.Environ(ctx), "LC_ALL=C")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache policy %s: %w", pkg, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "Candidate:"); ok {
			v = strings.TrimSpace(v)
			if v == "" || v == "(none)" {
				break
			}
			return v, nil
		}
	}
	return "", fmt.Errorf("%w: apt has no candidate for %s", ErrVersionGone, pkg)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
