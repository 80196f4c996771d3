// Package childenv gives the environment of every process cocobuild starts
// (mkfs, make, the go command, qemu, apt-get, cocobuild itself): the
// caller's environment without the secrets that signing reads from it.
//
// A variable is a secret when it is
//   - COSIGN_PASSWORD (the passphrase of every private key) or
//     COCOBUILD_SIGNING_KEY (the documented env:// key variable);
//   - named by an env:// key reference of the recipe or the command line,
//     which reach the exec sites through the context (WithSecrets);
//   - or holds a PEM private key, whatever its name (defence in depth: an
//     env:// key that no reference names, e.g. one built by an expression).
//
// Every exec site sets cmd.Env from Environ; nothing else in cocobuild
// reads os.Environ (a test checks both).
package childenv

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
)

// PasswordEnv is the variable the passphrase of a private key is read from
// (publish/sign.PasswordEnv; cosign reads the same one).
const PasswordEnv = "COSIGN_PASSWORD"

// SigningKeyEnv is the env:// key variable the documentation uses.
const SigningKeyEnv = "COCOBUILD_SIGNING_KEY"

// secretsKey is the context key of the secret names.
type secretsKey struct{}

// WithSecrets returns a context whose child processes do not get the named
// variables either, besides those ctx already names.
func WithSecrets(ctx context.Context, names ...string) context.Context {
	if len(names) == 0 {
		return ctx
	}
	all := slices.Concat(Secrets(ctx), names)
	slices.Sort(all)
	return context.WithValue(ctx, secretsKey{}, slices.Compact(all))
}

// Secrets returns the names WithSecrets put into ctx, sorted (without the
// fixed ones), or nil.
func Secrets(ctx context.Context) []string {
	if ctx == nil {
		return nil
	}
	names, _ := ctx.Value(secretsKey{}).([]string)
	return slices.Clone(names)
}

// Environ is the environment for a child process started under ctx: this
// process's environment without COSIGN_PASSWORD, COCOBUILD_SIGNING_KEY,
// the variables named by WithSecrets or extra, and every variable that
// holds a PEM private key. Add a child's own variables after it (the last
// value of a name wins).
func Environ(ctx context.Context, extra ...string) []string {
	return Filter(os.Environ(), slices.Concat(Secrets(ctx), extra)...)
}

// Filter returns env (KEY=VALUE entries) without the secrets: the fixed
// ones, the named ones and every PEM private key.
func Filter(env []string, names ...string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if k == PasswordEnv || k == SigningKeyEnv || slices.Contains(names, k) || IsPrivateKey(v) {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// privatePEM matches the header of a PEM private key block: "PRIVATE KEY",
// "EC PRIVATE KEY", "ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN
// PRIVATE KEY", "OPENSSH PRIVATE KEY" …
var privatePEM = regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----`)

// IsPrivateKey says whether a value holds a PEM private key.
func IsPrivateKey(v string) bool { return privatePEM.MatchString(v) }

// envRef matches an env:// key reference and captures the variable name.
var envRef = regexp.MustCompile(`env://([A-Za-z_][A-Za-z0-9_]*)`)

// RefNames returns the variables that the env:// references in texts name
// (recipe sources, variable values, command-line arguments), sorted and
// without repeats.
func RefNames(texts ...string) []string {
	var names []string
	for _, t := range texts {
		for _, m := range envRef.FindAllStringSubmatch(t, -1) {
			names = append(names, m[1])
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}
