// Package ociclient is cocobuild's one way to reach an OCI registry, for
// the feeds (publish/feed) and the remote build cache (builder): an
// oras-go client that takes credentials from the docker/oras
// configuration, as crane, oras and docker users expect, and plain HTTP
// for registries on the loopback interface only.
package ociclient

import (
	"net"
	"net/http"
	"strings"

	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
)

// Client returns an authenticating client over base (its transport sets
// the timeouts and retries). Credentials come from the docker
// configuration ($DOCKER_CONFIG/config.json, credential helpers); when
// that cannot be read the client works without them and the error says
// why, for a caller that reports it.
func Client(base *http.Client) (*auth.Client, error) {
	client := &auth.Client{Client: base, Cache: auth.NewCache()}
	store, err := credentials.NewStoreFromDocker(credentials.StoreOptions{})
	if err == nil {
		client.Credential = credentials.Credential(store)
	}
	client.SetUserAgent("cocobuild")
	return client, err
}

// PlainHTTP says whether a registry (host[:port]) is reached over plain
// HTTP: only on the loopback interface (localhost, 127.0.0.0/8, ::1),
// as test and local registries run; every other registry over HTTPS.
func PlainHTTP(registry string) bool {
	host, _, err := net.SplitHostPort(registry)
	if err != nil {
		host = registry
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
