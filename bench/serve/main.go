// Command serve is a bounded load test of `cocobuild serve`: it builds
// cocobuild (or takes -cocobuild), makes a directory feed with signed
// releases, starts `cocobuild serve` on a loopback port and runs -clients
// concurrent clients for -duration against it. Each client reads the index,
// then blobs, half of the time revalidating with If-None-Match, and checks
// every body against its digest. It prints the request rate and latency
// percentiles, and exits 1 if any request failed.
//
//	go run ./bench/serve                 # 50 clients, 20 s
//	go run ./bench/serve -clients 10 -duration 5s
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cocobuild/cocobuild/internal/childenv"
	"github.com/cocobuild/cocobuild/internal/tees"
	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/publish/feed"
	"github.com/cocobuild/cocobuild/publish/sign"
)

func main() {
	clients := flag.Int("clients", 50, "concurrent clients")
	duration := flag.Duration("duration", 20*time.Second, "how long the clients run")
	bin := flag.String("cocobuild", "", "cocobuild binary (default: go build ./cmd/cocobuild)")
	releases := flag.Int("releases", 20, "releases in the generated feed")
	flag.Parse()
	if err := run(*clients, *duration, *bin, *releases); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(clients int, duration time.Duration, bin string, releases int) error {
	tmp, err := os.MkdirTemp("", "cocobuild-serve-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if bin == "" {
		bin = filepath.Join(tmp, "cocobuild")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/cocobuild")
		cmd.Env = childenv.Environ(context.Background())
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building cocobuild (run from the module root): %w", err)
		}
	}
	feedDir := filepath.Join(tmp, "feed")
	blobs, err := makeFeed(feedDir, releases)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := exec.CommandContext(ctx, bin, "serve", feedDir, "--addr", "127.0.0.1:0")
	srv.Env = childenv.Environ(ctx)
	srv.Stderr = os.Stderr
	out, err := srv.StdoutPipe()
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { cancel(); srv.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return fmt.Errorf("cocobuild serve said nothing: %w", err)
	}
	base := ""
	for _, f := range strings.Fields(line) {
		if strings.HasPrefix(f, "http://") {
			base = strings.TrimSuffix(f, "/")
		}
	}
	if base == "" {
		return fmt.Errorf("no URL in %q", line)
	}
	fmt.Printf("cocobuild serve at %s: %d releases, %d blobs; %d clients for %s\n", base, releases, len(blobs), clients, duration)

	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var mu sync.Mutex
	var lat []time.Duration
	var errs []string
	statuses := map[int]int{}
	var wg sync.WaitGroup
	deadline := time.Now().Add(duration)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			var mine []time.Duration
			var myErrs []string
			myStatus := map[int]int{}
			etags := map[string]string{}
			for time.Now().Before(deadline) {
				path, want := "/index.json", ""
				if rng.IntN(4) != 0 {
					d := blobs[rng.IntN(len(blobs))]
					path, want = "/blobs/sha256/"+strings.TrimPrefix(d, "sha256:"), d
				}
				t0 := time.Now()
				status, etag, err := get(client, base+path, etags[path], want, rng.IntN(2) == 0)
				mine = append(mine, time.Since(t0))
				myStatus[status]++
				if err != nil {
					myErrs = append(myErrs, path+": "+err.Error())
					continue
				}
				etags[path] = etag
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs = append(errs, myErrs...)
			for s, n := range myStatus {
				statuses[s] += n
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[int(p*float64(len(lat)-1))]
	}
	fmt.Printf("requests: %d (%.0f/s), errors: %d, statuses: %v\n", len(lat), float64(len(lat))/duration.Seconds(), len(errs), statuses)
	fmt.Printf("latency: p50 %s  p90 %s  p99 %s  max %s\n", pct(0.50), pct(0.90), pct(0.99), pct(1))
	if len(errs) > 0 {
		for _, e := range errs[:min(len(errs), 10)] {
			fmt.Println("  ", e)
		}
		return fmt.Errorf("%d of %d requests failed", len(errs), len(lat))
	}
	return nil
}

// get fetches a URL, revalidating with the ETag when asked, and checks the
// body of a blob against its digest.
func get(c *http.Client, url, etag, digest string, revalidate bool) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if revalidate && etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, "", err
	}
	switch resp.StatusCode {
	case http.StatusNotModified:
		if !revalidate || etag == "" {
			return resp.StatusCode, "", errors.New("304 without If-None-Match")
		}
		return resp.StatusCode, etag, nil
	case http.StatusOK:
	default:
		return resp.StatusCode, "", fmt.Errorf("status %s", resp.Status)
	}
	if digest != "" {
		sum := sha256.Sum256(body)
		if "sha256:"+hex.EncodeToString(sum[:]) != digest {
			return resp.StatusCode, "", errors.New("body does not match its digest")
		}
	}
	return resp.StatusCode, resp.Header.Get("ETag"), nil
}

// makeFeed publishes n signed releases of a synthetic manifest into a
// directory feed and returns the digests of its blobs.
func makeFeed(dir string, n int) ([]string, error) {
	s, err := sign.Generate(sign.ECDSAP256)
	if err != nil {
		return nil, err
	}
	hexOf := func(label string, size int) string {
		d := sha256.Sum256([]byte(label))
		return strings.Repeat(hex.EncodeToString(d[:]), 2)[:2*size]
	}
	ctx := context.Background()
	for i := range n {
		m := &manifest.Manifest{
			Cocobuild: "bench", Recipe: manifest.Recipe{Name: "bench", SHA256: hexOf("recipe", 32)}, Epoch: 1700000000,
			Artifacts: []manifest.Artifact{{Name: "disk.guest", Kind: "disk", Path: "disk/guest.qcow2", SHA256: hexOf(fmt.Sprint("disk", i), 32), Size: 1}},
			Measurements: []manifest.Measurement{
				{TEE: "snp", Name: "snp", Values: map[string]any{"launch_measurement": hexOf(fmt.Sprint("snp", i), 48)}},
				{TEE: "tdx", Name: "tdx", Values: map[string]any{"mrtd": hexOf(fmt.Sprint("mrtd", i), 48), "rtmr1": hexOf(fmt.Sprint("r1", i), 48)}},
			},
		}
		cfg := publish.Config{Options: publish.Options{Name: "bench", Version: fmt.Sprintf("1.%d.0", i), Expires: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC),
			TEEs: tees.All()},
			To: []string{"dir:" + dir}}
		if _, err := publish.Publish(ctx, m, s, cfg); err != nil {
			return nil, err
		}
	}
	ix, err := feed.Dir{Path: dir}.Index(ctx)
	if err != nil {
		return nil, err
	}
	var digests []string
	for _, r := range ix.Releases {
		for _, d := range r.Documents {
			digests = append(digests, d.Digest)
		}
	}
	return digests, nil
}
