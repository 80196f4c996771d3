package builder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/cocobuild/cocobuild/internal/atomicfile"
	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/internal/ociclient"
	"github.com/cocobuild/cocobuild/recipes"
)

// The OCI media types of a step result in a remote cache: one image
// manifest (artifactType StepArtifactType) per step key, tagged with the
// key; its config is the result record (result.json) and its layers are
// the result's files, in the record's order, each titled with its path.
const (
	StepArtifactType  = "application/vnd.cocobuild.step.v1"
	StepResultType    = "application/vnd.cocobuild.step.result.v1+json"
	StepFileMediaType = "application/vnd.cocobuild.step.file.v1"
)

// RemotePrefix starts a remote cache reference: oci://HOST[:PORT]/REPO.
const RemotePrefix = "oci://"

// RemoteNone, given as --cache-from or --cache-to, turns the remote
// cache off in that direction, whatever the environment or the recipe say.
const RemoteNone = "none"

// DefaultRemoteTimeout bounds each exchange with a remote cache: a
// connection, a response's headers, a stall of a transfer.
const DefaultRemoteTimeout = 15 * time.Second

// maxManifest bounds the manifest of a step result read from a registry.
const maxManifest = 4 << 20

// ParseRemoteRef checks a remote cache reference, oci://HOST[:PORT]/REPO
// (no tag or digest: the tags are step keys), and returns the repository
// (HOST[:PORT]/REPO).
func ParseRemoteRef(ref string) (string, error) {
	r, ok := strings.CutPrefix(ref, RemotePrefix)
	if !ok {
		return "", fmt.Errorf("remote cache %q: want oci://HOST[:PORT]/REPO", ref)
	}
	pr, err := registry.ParseReference(r)
	if err != nil {
		return "", fmt.Errorf("remote cache %q: %w (want oci://HOST[:PORT]/REPO)", ref, err)
	}
	if pr.Reference != "" {
		return "", fmt.Errorf("remote cache %q: name the repository alone, without a tag or digest (each step result is tagged with its key)", ref)
	}
	return pr.String(), nil
}

// Remote is the shared layer of the cache: OCI repositories that step
// results are pulled from, before a step missing locally runs, and pushed
// to, once a step has a result. It is what --cache-from and --cache-to
// set. A registry that fails or stalls is a warning (Warnings), never a
// failed build: the step is built locally, and a registry that cannot be
// reached is not asked again during the build.
//
// Nothing pulled is used unchecked: the manifest and the result record
// are checked against their digests, every file against its layer's
// digest and the record's, before the entry is renamed into the local
// cache. Each result is pushed blobs first and manifest last, tagged with
// the step key, so that a tag only ever names a complete entry; two
// pushers of one key each tag a complete entry, and the tag ends on one.
type Remote struct {
	From, To []*RemoteRepo
	// Timeout bounds each exchange (see DefaultRemoteTimeout).
	Timeout time.Duration

	mu       sync.Mutex
	warnings []string
	down     map[string]bool
	// distrusted are the keys whose local entries a build evicted as
	// corrupt: not pulled again in that build, they are built here.
	distrusted map[string]bool
	pushes     sync.WaitGroup
	pushSem    chan struct{}
	// credErr is why the docker/oras credential configuration could not
	// be read (nil when it was, or when there is none): said when a
	// registry asks for credentials.
	credErr error
}

// RemoteRepo is one repository of a remote cache.
type RemoteRepo struct {
	Ref  string // as given: oci://HOST[:PORT]/REPO
	repo *remote.Repository
	push bool // one of To
}

// OpenRemote opens the remote caches of from and to (references as
// ParseRemoteRef takes them). Registries on a loopback address are spoken
// to over plain HTTP, others over HTTPS; credentials come from the
// docker/oras configuration (docker login, oras login, credential
// helpers). It returns nil when both lists are empty.
func OpenRemote(from, to []string, timeout time.Duration) (*Remote, error) {
	if len(from) == 0 && len(to) == 0 {
		return nil, nil
	}
	if timeout <= 0 {
		timeout = DefaultRemoteTimeout
	}
	dialer := &net.Dialer{Timeout: timeout}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   4,
	}
	client, credErr := ociclient.Client(&http.Client{Transport: tr})
	open := func(refs []string, push bool) ([]*RemoteRepo, error) {
		var out []*RemoteRepo
		for _, ref := range refs {
			name, err := ParseRemoteRef(ref)
			if err != nil {
				return nil, err
			}
			repo, err := remote.NewRepository(name)
			if err != nil {
				return nil, fmt.Errorf("remote cache %q: %w", ref, err)
			}
			repo.PlainHTTP = ociclient.PlainHTTP(repo.Reference.Registry)
			repo.Client = client
			repo.MaxMetadataBytes = maxManifest
			out = append(out, &RemoteRepo{Ref: ref, repo: repo, push: push})
		}
		return out, nil
	}
	r := &Remote{Timeout: timeout, down: map[string]bool{}, distrusted: map[string]bool{}, pushSem: make(chan struct{}, 2), credErr: credErr}
	var err error
	if r.From, err = open(from, false); err != nil {
		return nil, err
	}
	if r.To, err = open(to, true); err != nil {
		return nil, err
	}
	return r, nil
}

// Warnings are the remote cache's warnings so far: registries that failed,
// entries that did not check out.
func (r *Remote) Warnings() []string {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.warnings...)
}

func (r *Remote) warn(format string, a ...any) {
	r.mu.Lock()
	r.warnings = append(r.warnings, "WARNING: remote cache: "+fmt.Sprintf(format, a...))
	r.mu.Unlock()
}

// failed records an error of repository rr (not a missing tag, not an
// entry that does not check out): a registry that cannot be reached,
// stalls, refuses the credentials or fails otherwise is not asked again
// during this build, so that it costs one timeout and one warning. A
// push refused for want of credentials stops the pushes alone: a
// repository that anyone may pull from and only some may push to (a
// public cache, read-only credentials) is still pulled from.
func (r *Remote) failed(rr *RemoteRepo, what string, err error) {
	if errdefNotFound(err) {
		return
	}
	why, isAuth := authFailure(err)
	key, tail := rr.Ref, "not using it for the rest of this build (steps build locally)"
	if isAuth && rr.push {
		key, tail = pushDown+rr.Ref, "not pushing to it for the rest of this build"
	}
	r.mu.Lock()
	already := r.down[key] || r.down[rr.Ref]
	r.down[key] = true
	r.mu.Unlock()
	if already {
		return
	}
	if !isAuth {
		r.warn("%s: %s: %v; %s", rr.Ref, what, err, tail)
		return
	}
	if r.credErr != nil {
		why += "; the credential configuration could not be read: " + r.credErr.Error()
	}
	host := rr.repo.Reference.Registry
	r.warn("%s: authentication failed (%s) %s; log in with `oras login %s` or `docker login %s` (credentials are read from $DOCKER_CONFIG/config.json, else ~/.docker/config.json, and its credential helpers); %s",
		rr.Ref, why, what, host, host, tail)
}

// pushDown prefixes the key of Remote.down that stops the pushes alone.
const pushDown = "push "

// authFailure says whether err is a registry refusing us for want of
// credentials, and why in a few words: none configured for the registry,
// a credential helper that failed, credentials refused (401) or not
// allowed this (403). The words never hold the credentials, nor the
// registry's answer, which may echo them.
func authFailure(err error) (string, bool) {
	var er *errcode.ErrorResponse
	switch {
	case errors.Is(err, auth.ErrBasicCredentialNotFound):
		return "the registry asks for credentials and none are configured for it", true
	case errors.As(err, &er) && er.StatusCode == http.StatusUnauthorized:
		return "401 Unauthorized: the registry refused the credentials configured for it, if any", true
	case errors.As(err, &er) && er.StatusCode == http.StatusForbidden:
		return "the credentials configured for the registry do not allow this: 403 Forbidden", true
	}
	// A credential helper that is missing or failed: oras-go says so
	// after the request, with no error value to match.
	if _, cause, ok := strings.Cut(err.Error(), "failed to resolve credential: "); ok {
		return "reading the credentials configured for the registry failed: " + cause, true
	}
	return "", false
}

func (r *Remote) isDown(rr *RemoteRepo) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.down[rr.Ref] || rr.push && r.down[pushDown+rr.Ref]
}

func errdefNotFound(err error) bool { return errors.Is(err, errdef.ErrNotFound) }

// Has says which repository of From holds an entry for key ("" for
// none), without pulling it: what a plan reports.
func (r *Remote) Has(ctx context.Context, key string) string {
	for _, rr := range r.From {
		if r.isDown(rr) {
			continue
		}
		octx, cancel := context.WithTimeout(ctx, r.Timeout)
		_, err := rr.repo.Resolve(octx, key)
		cancel()
		if err == nil {
			return rr.Ref
		}
		if ctx.Err() != nil {
			return ""
		}
		r.failed(rr, "looking up step "+key[:12], err)
	}
	return ""
}

// Pull fetches the entry of key from the first repository of From that
// holds a valid one into the local cache c (the caller holds the step's
// lock), and returns the repository's reference ("" when none did). An
// entry that does not check out is a warning; the next repository is
// tried.
func (r *Remote) Pull(ctx context.Context, c *Cache, key string) string {
	r.mu.Lock()
	distrusted := r.distrusted[key]
	r.mu.Unlock()
	if distrusted {
		return ""
	}
	for _, rr := range r.From {
		if r.isDown(rr) || ctx.Err() != nil {
			continue
		}
		err := r.pullFrom(ctx, rr, c, key)
		if err == nil {
			return rr.Ref
		}
		if ctx.Err() != nil {
			return ""
		}
		if errdefNotFound(err) {
			continue
		}
		var bad *badEntryError
		if errors.As(err, &bad) {
			r.warn("%s: the entry of step %.12s is not what its record states (%v): not used, the step builds locally", rr.Ref, key, bad.err)
			continue
		}
		r.failed(rr, "pulling step "+key[:12], err)
	}
	return ""
}

// distrust marks key as evicted: it is not pulled again by this Remote.
func (r *Remote) distrust(key string) {
	if r != nil {
		r.mu.Lock()
		r.distrusted[key] = true
		r.mu.Unlock()
	}
}

// badEntryError says that an entry in a registry does not check out: a
// blob that is not its digest, a layer that is not the record's file.
type badEntryError struct{ err error }

func (e *badEntryError) Error() string { return e.err.Error() }

func bad(format string, a ...any) error { return &badEntryError{fmt.Errorf(format, a...)} }

// errStalled says a transfer moved less than minProgress within the timeout.
var errStalled = fmt.Errorf("the registry stalled: less than %d KiB moved within the timeout", minProgress>>10)

func (r *Remote) pullFrom(ctx context.Context, rr *RemoteRepo, c *Cache, key string) error {
	octx, cancel := context.WithTimeout(ctx, r.Timeout)
	desc, err := rr.repo.Resolve(octx, key)
	cancel()
	if err != nil {
		return err
	}
	if desc.MediaType != ocispec.MediaTypeImageManifest {
		return bad("tag %.12s is a %s, not an image manifest", key, desc.MediaType)
	}
	if desc.Size > maxManifest {
		return bad("its manifest states %d bytes, more than %d", desc.Size, maxManifest)
	}
	mb, err := r.fetchSmall(ctx, rr, desc)
	if err != nil {
		return err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return bad("manifest: %v", err)
	}
	if m.ArtifactType != StepArtifactType || m.Config.MediaType != StepResultType {
		return bad("manifest of artifact type %q with a config of type %q, want %s and %s", m.ArtifactType, m.Config.MediaType, StepArtifactType, StepResultType)
	}
	if m.Config.Size > limits.Document.Default {
		return bad("its result record states %d bytes, more than %d", m.Config.Size, limits.Document.Default)
	}
	rb, err := r.fetchSmall(ctx, rr, m.Config)
	if err != nil {
		return err
	}
	var res recipes.Result
	if err := json.Unmarshal(rb, &res); err != nil {
		return bad("result record: %v", err)
	}
	if res.Key != key {
		return bad("the result record is that of step %.12s", res.Key)
	}
	if err := checkRemoteFiles(res.Files, m.Layers); err != nil {
		return err
	}
	work, err := c.TempDir("pull-" + key[:12])
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	entry := filepath.Join(work, "entry")
	if err := os.MkdirAll(filepath.Join(entry, "files"), 0o755); err != nil {
		return err
	}
	for i, f := range res.Files {
		if err := r.fetchFile(ctx, rr, m.Layers[i], f, filepath.Join(entry, "files", filepath.FromSlash(f.Path))); err != nil {
			return err
		}
	}
	if err := atomicfile.WriteFile(filepath.Join(entry, "result.json"), rb, 0o644); err != nil {
		return err
	}
	if err := os.Rename(entry, c.stepDir(key)); err != nil {
		if _, ok := c.Lookup(key); ok {
			return nil
		}
		return fmt.Errorf("storing step %.12s: %w", key, err)
	}
	return nil
}

// checkRemoteFiles checks that the record's files are safe to write and
// that the layers are those files: one each, in order, with the record's
// digest, size and path.
func checkRemoteFiles(files []recipes.FileDigest, layers []ocispec.Descriptor) error {
	if len(files) != len(layers) {
		return bad("%d layers for the %d files of the record", len(layers), len(files))
	}
	seen := map[string]bool{}
	for i, f := range files {
		p := f.Path
		if p == "" || path.IsAbs(p) || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") || strings.Contains(p, "\\") || seen[p] {
			return bad("the record names the file %q", p)
		}
		seen[p] = true
		for q := path.Dir(p); q != "."; q = path.Dir(q) {
			if seen[q] {
				return bad("the record names %q both as a file and a directory", q)
			}
		}
		if f.Mode != 0o644 && f.Mode != 0o755 {
			return bad("the record gives %s mode %o", p, f.Mode)
		}
		if _, err := hex.DecodeString(f.SHA256); err != nil || len(f.SHA256) != 64 || f.Size < 0 {
			return bad("the record gives %s the digest %q and size %d", p, f.SHA256, f.Size)
		}
		l := layers[i]
		if l.MediaType != StepFileMediaType || l.Digest != digest.Digest("sha256:"+f.SHA256) || l.Size != f.Size || l.Annotations[ocispec.AnnotationTitle] != p {
			return bad("layer %d (%s, %s, %d bytes, title %q) is not the record's file %s (sha256:%s, %d bytes)",
				i, l.MediaType, l.Digest, l.Size, l.Annotations[ocispec.AnnotationTitle], p, f.SHA256, f.Size)
		}
	}
	return nil
}

// fetchSmall reads a manifest or record, checked against its descriptor.
func (r *Remote) fetchSmall(ctx context.Context, rr *RemoteRepo, desc ocispec.Descriptor) ([]byte, error) {
	octx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	rc, err := rr.repo.Fetch(octx, desc)
	if errdefNotFound(err) {
		return nil, bad("blob %s is missing", desc.Digest)
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := content.ReadAll(rc, desc)
	if errors.Is(err, content.ErrMismatchedDigest) || errors.Is(err, content.ErrTrailingData) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, bad("%s: %v", desc.Digest, err)
	}
	return b, err
}

// fetchFile writes the layer desc, the record's file f, to dst, hashing
// it as it is written: bytes that are not f's digest are a *badEntryError.
func (r *Remote) fetchFile(ctx context.Context, rr *RemoteRepo, desc ocispec.Descriptor, f recipes.FileDigest, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	sctx, stop := r.stallGuard(ctx)
	defer stop(nil)
	rc, err := rr.repo.Fetch(sctx.ctx, desc)
	if errdefNotFound(err) {
		return bad("file %s: blob %s is missing", f.Path, desc.Digest)
	}
	if err != nil {
		return sctx.cause(err)
	}
	defer rc.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, os.FileMode(f.Mode))
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), sctx.reader(io.LimitReader(rc, f.Size+1)))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return sctx.cause(err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != f.Size || got != f.SHA256 {
		return bad("file %s: %d bytes of sha256 %s, its record states %d bytes of sha256 %s", f.Path, n, got, f.Size, f.SHA256)
	}
	return os.Chmod(dst, os.FileMode(f.Mode)) // whatever the umask
}

// minProgress is how many bytes a transfer must move within each timeout
// (4 KiB/s at the default 15 s): a registry that trickles a few bytes at
// a time is as stalled as one that sends none.
const minProgress = 64 << 10

// stall cancels a transfer's context when fewer than minProgress bytes
// moved within the timeout: a slow registry is bounded, a large file that
// flows is not cut short.
type stall struct {
	ctx     context.Context
	cancel  context.CancelCauseFunc
	timer   *time.Timer
	timeout time.Duration
	moved   int64 // bytes since the timer was last reset
}

func (r *Remote) stallGuard(ctx context.Context) (*stall, func(error)) {
	cctx, cancel := context.WithCancelCause(ctx)
	s := &stall{ctx: cctx, cancel: cancel, timeout: r.Timeout}
	s.timer = time.AfterFunc(r.Timeout, func() { cancel(errStalled) })
	return s, func(err error) { s.timer.Stop(); cancel(err) }
}

func (s *stall) reader(r io.Reader) io.Reader { return &stallReader{r: r, s: s} }

// cause is err, or errStalled when the guard stopped the transfer.
func (s *stall) cause(err error) error {
	if c := context.Cause(s.ctx); errors.Is(c, errStalled) {
		return errStalled
	}
	return err
}

type stallReader struct {
	r io.Reader
	s *stall
}

func (sr *stallReader) Read(p []byte) (int, error) {
	n, err := sr.r.Read(p)
	if sr.s.moved += int64(n); sr.s.moved >= minProgress {
		sr.s.moved = 0
		sr.s.timer.Reset(sr.s.timeout)
	}
	return n, err
}

// Push sends the local entry of key to every repository of To that does
// not hold one yet (except skip, where it was just pulled from), in the
// background; Wait waits for every push. A failed push is a warning.
func (r *Remote) Push(ctx context.Context, res *recipes.Result, skip string) {
	if len(r.To) == 0 || res == nil || res.Key == "" {
		return
	}
	r.pushes.Add(1)
	go func() {
		defer r.pushes.Done()
		select {
		case r.pushSem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-r.pushSem }()
		for _, rr := range r.To {
			if rr.Ref == skip || r.isDown(rr) || ctx.Err() != nil {
				continue
			}
			err := r.pushTo(ctx, rr, res)
			var ce *CorruptError
			switch {
			case err == nil || ctx.Err() != nil:
			case errors.As(err, &ce): // ours, not the registry's: nothing tagged
				r.warn("%s: not pushing step %.12s: %v", rr.Ref, res.Key, err)
			default:
				r.failed(rr, "pushing step "+res.Key[:12], err)
			}
		}
	}()
}

// Wait waits for the pushes started so far.
func (r *Remote) Wait() {
	if r != nil {
		r.pushes.Wait()
	}
}

// StepManifest is the manifest of a step result in a remote cache, whose
// record (result.json) is record: the same bytes for the same result,
// wherever it was built (no time, no host).
func StepManifest(res *recipes.Result, record []byte) ([]byte, error) {
	m := ocispec.Manifest{
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: StepArtifactType,
		Config:       ocispec.Descriptor{MediaType: StepResultType, Digest: digest.FromBytes(record), Size: int64(len(record))},
		Layers:       []ocispec.Descriptor{},
	}
	m.SchemaVersion = 2
	for _, f := range res.Files {
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: StepFileMediaType, Digest: digest.Digest("sha256:" + f.SHA256), Size: f.Size,
			Annotations: map[string]string{ocispec.AnnotationTitle: f.Path}})
	}
	return json.Marshal(m)
}

// record reads the result.json of a local entry, the bytes pushed as its
// record, and checks that it is res's.
func record(res *recipes.Result) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(res.Dir), "result.json"))
	if err != nil {
		return nil, err
	}
	var got recipes.Result
	if err := json.Unmarshal(b, &got); err != nil || got.Key != res.Key {
		return nil, fmt.Errorf("the local result.json of step %.12s is not its record", res.Key)
	}
	return b, nil
}

func (r *Remote) pushTo(ctx context.Context, rr *RemoteRepo, res *recipes.Result) error {
	octx, cancel := context.WithTimeout(ctx, r.Timeout)
	_, err := rr.repo.Resolve(octx, res.Key)
	cancel()
	if err == nil {
		return nil // there already: an entry is complete once tagged
	}
	if !errdefNotFound(err) {
		return err
	}
	rb, err := record(res)
	if err != nil {
		return err
	}
	mb, err := StepManifest(res, rb)
	if err != nil {
		return err
	}
	// Another pusher of the same blobs can make a registry see one of them
	// as missing for a moment (distribution rewrites the repository's link
	// to a blob in place as each upload of it completes) and refuse the
	// manifest: push the blobs again and retry, unless the other pusher
	// has tagged the key meanwhile.
	for attempt := 0; ; attempt++ {
		err := r.pushEntry(ctx, rr, res, rb, mb)
		if err == nil || attempt == 3 || ctx.Err() != nil {
			return err
		}
		var ce *CorruptError
		if _, refused := authFailure(err); refused || errors.As(err, &ce) {
			return err // not the other pusher's doing
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
		octx, cancel := context.WithTimeout(ctx, r.Timeout)
		_, rerr := rr.repo.Resolve(octx, res.Key)
		cancel()
		if rerr == nil {
			return nil
		}
	}
}

// pushEntry pushes the files and the record of res, then its manifest
// mb, tagged with the key.
func (r *Remote) pushEntry(ctx context.Context, rr *RemoteRepo, res *recipes.Result, rb, mb []byte) error {
	// Blobs first, the manifest last: the tag names only complete entries.
	for _, f := range res.Files {
		desc := ocispec.Descriptor{MediaType: StepFileMediaType, Digest: digest.Digest("sha256:" + f.SHA256), Size: f.Size}
		if err := r.pushFile(ctx, rr, desc, filepath.Join(res.Dir, filepath.FromSlash(f.Path))); err != nil {
			return fmt.Errorf("file %s: %w", f.Path, err)
		}
	}
	cdesc := ocispec.Descriptor{MediaType: StepResultType, Digest: digest.FromBytes(rb), Size: int64(len(rb))}
	if err := r.pushBytes(ctx, rr, cdesc, rb); err != nil {
		return fmt.Errorf("result record: %w", err)
	}
	mdesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mb), Size: int64(len(mb))}
	octx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	if err := rr.repo.PushReference(octx, mdesc, bytes.NewReader(mb), res.Key); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	return nil
}

func (r *Remote) pushBytes(ctx context.Context, rr *RemoteRepo, desc ocispec.Descriptor, b []byte) error {
	octx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	if ok, err := rr.repo.Exists(octx, desc); err == nil && ok {
		return nil
	}
	err := rr.repo.Push(octx, desc, bytes.NewReader(b))
	if errors.Is(err, errdef.ErrAlreadyExists) {
		return nil
	}
	return err
}

// pushFile uploads a cached file, hashing it as it is read: a file that
// is not its record's digest fails the upload before it completes.
func (r *Remote) pushFile(ctx context.Context, rr *RemoteRepo, desc ocispec.Descriptor, p string) error {
	octx, cancel := context.WithTimeout(ctx, r.Timeout)
	ok, err := rr.repo.Exists(octx, desc)
	cancel()
	if err == nil && ok {
		return nil // pushed before, by us or by another pusher
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	s, stop := r.stallGuard(ctx)
	defer stop(nil)
	vr := &verifyingReader{r: s.reader(f), h: sha256.New(), want: desc.Digest.Encoded(), path: p}
	err = rr.repo.Push(s.ctx, desc, vr)
	if errors.Is(err, errdef.ErrAlreadyExists) {
		return nil
	}
	if vr.err != nil {
		return vr.err
	}
	return s.cause(err)
}

// verifyingReader returns a *CorruptError instead of io.EOF when the bytes
// read are not want.
type verifyingReader struct {
	r    io.Reader
	h    hash.Hash
	want string
	path string
	err  error
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want {
			v.err = &CorruptError{Path: v.path, Want: v.want, Got: got}
			return n, v.err
		}
	}
	return n, err
}

// The environment variables that name remote caches when the command line
// names none: references separated by commas or spaces.
const (
	EnvCacheFrom = "COCOBUILD_CACHE_FROM"
	EnvCacheTo   = "COCOBUILD_CACHE_TO"
)

// RemoteRefs picks the remote caches of one direction: the command line's
// (flags, when given), else the environment's (env, when set), else the
// recipe's. A list holding "none" turns the direction off.
func RemoteRefs(flags []string, flagsSet bool, env string, recipe []string) []string {
	refs := recipe
	if fields := strings.FieldsFunc(env, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }); len(fields) > 0 {
		refs = fields
	}
	if flagsSet {
		refs = flags
	}
	var out []string
	for _, r := range refs {
		if r == RemoteNone {
			return nil
		}
		if r != "" {
			out = append(out, r)
		}
	}
	return out
}

// UseRemote opens the remote caches from and to (see RemoteRefs) for the
// builds and plans of l. A reference that comes from the recipe and is
// wrong is a *DiagError pointing at the recipe's cache setting.
func (l *Loaded) UseRemote(from, to []string, timeout time.Duration) error {
	for _, ref := range append(append([]string{}, from...), to...) {
		if _, err := ParseRemoteRef(ref); err != nil {
			if rng := l.Recipe.Cache.Range; rng.Filename != "" && (slices.Contains(l.Recipe.Cache.From, ref) || slices.Contains(l.Recipe.Cache.To, ref)) {
				return &DiagError{Diags: hcl.Diagnostics{recipes.Diag("Invalid cache reference", err.Error()+".", rng)}, Files: l.Recipe.Files, Err: err}
			}
			return err
		}
	}
	rm, err := OpenRemote(from, to, timeout)
	if err != nil {
		return err
	}
	l.Remote = rm
	return nil
}
