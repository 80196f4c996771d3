package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cocobuild/cocobuild/publish/feed"
)

func newServeCmd(a *app) *cobra.Command {
	var addr string
	c := &cobra.Command{
		Use:   "serve FEED",
		Short: "Serve a directory feed of reference values over read-only HTTP",
		Long: `Serve makes a directory feed (dir:PATH, as publish writes it) readable over HTTP:
GET /index.json (the releases, in the index the publisher signed), GET /blobs/sha256/HEX
(the signed documents, immutable), GET /healthz. Responses carry strong ETags and honour
If-None-Match and Range; nothing can be written. Files are opened confined to the feed
directory: a symbolic link that leads out of it is not followed, and responses show no
host path or file-system error. Releases appended while it runs are served at once. It
stops on Ctrl-C or SIGTERM.

Serve holds no key and signs nothing: it serves the index as the publisher last signed
it. That index expires (7 days after a publish by default: cocobuild publish
--index-ttl) unless the publisher publishes again, which re-signs it (the same release
will do); once it has expired, verify rejects the feed as stale. /healthz answers 200 "ok" while the
index exists, parses and has not expired, and 503 otherwise (no index yet, an index
that does not parse, an expired index); it does not check the signature, which
verifiers do with their copy of the publisher's key.

Serve reads one file whole: the index (at start, and for each GET of /, /index.json and
/healthz), within the document limit (64MiB; --limit document=SIZE raises it, as verify's
does), refused from its size before it is read; an index over it stops serve at start
and is a 500 afterwards. Blobs are streamed from the file, never read whole; a named
pipe or device in the feed is refused, never opened for reading. Requests are bounded
by header size (16 KiB) and read, write and idle timeouts.`,
		Example: `  cocobuild serve out/feed --addr 127.0.0.1:8080
  cocobuild serve out/feed --limit document=256MiB   # an index over 64MiB
  curl -fsS http://127.0.0.1:8080/healthz
  # verify with your copy of the publisher's public key, obtained out of band
  cocobuild verify --key keys/publisher.pub http://127.0.0.1:8080/
  # a feed signed with the development key (the sample's) verifies only knowingly
  cocobuild verify --allow-dev-key --key ~/.cache/cocobuild/dev-key/cosign.pub http://127.0.0.1:8080/`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := strings.TrimPrefix(args[0], "dir:")
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				return usageErr(fmt.Errorf("feed %s is not a directory (publish to dir:%s first)", dir, dir))
			}
			d := feed.Dir{Path: dir, Limits: &a.limits}
			if _, err := d.Index(cmd.Context()); err != nil && !errors.Is(err, feed.ErrNoIndex) {
				return failErr(err)
			}
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return usageErr(err)
			}
			url := "http://" + l.Addr().String() + "/"
			if a.json {
				a.printJSON(map[string]any{"feed": dir, "url": url})
			} else {
				fmt.Fprintf(a.stdout, "serving %s at %s (Ctrl-C stops)\n", dir, url)
			}
			if err := feed.Serve(cmd.Context(), l, d); err != nil {
				return failErr(err)
			}
			return nil
		},
	}
	c.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on (port 0 picks a free port)")
	a.addLimitFlag(c, false)
	return c
}
