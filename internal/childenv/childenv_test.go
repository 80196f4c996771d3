package childenv_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/internal/childenv"
	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/publish/sign"
)

func TestFilter(t *testing.T) {
	pkcs8, pub := testenv.KeyPEMs(t, "PRIVATE KEY")
	ec, _ := testenv.KeyPEMs(t, "EC PRIVATE KEY")
	sigstore, _ := testenv.KeyPEMs(t, "ENCRYPTED SIGSTORE PRIVATE KEY")
	for _, tc := range []struct {
		name  string
		env   []string
		names []string
		want  []string
	}{
		{"ordinary variables stay", []string{"PATH=/usr/bin", "HOME=/root", "GOCACHE=/c", "GOFLAGS=-mod=mod", "https_proxy=http://p:3128", "XDG_CACHE_HOME=/x"}, nil,
			[]string{"PATH=/usr/bin", "HOME=/root", "GOCACHE=/c", "GOFLAGS=-mod=mod", "https_proxy=http://p:3128", "XDG_CACHE_HOME=/x"}},
		{"fixed names", []string{"COSIGN_PASSWORD=pw", "A=1", "COCOBUILD_SIGNING_KEY=k"}, nil, []string{"A=1"}},
		{"empty passphrase too", []string{"COSIGN_PASSWORD=", "A=1"}, nil, []string{"A=1"}},
		{"named", []string{"MY_KEY=not a pem", "A=1", "MY_KEY_2=x"}, []string{"MY_KEY"}, []string{"A=1", "MY_KEY_2=x"}},
		{"PKCS#8 PEM under any name", []string{"WHATEVER=" + pkcs8, "A=1"}, nil, []string{"A=1"}},
		{"EC PEM", []string{"K=" + ec}, nil, []string{}},
		{"cosign encrypted PEM", []string{"K=" + sigstore}, nil, []string{}},
		{"PEM after other text", []string{"K=key: " + pkcs8}, nil, []string{}},
		{"a public key stays", []string{"PUB=" + pub}, nil, []string{"PUB=" + pub}},
		{"value with =", []string{"GOFLAGS=-ldflags=-s", "X=a=b"}, []string{"a"}, []string{"GOFLAGS=-ldflags=-s", "X=a=b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := childenv.Filter(tc.env, tc.names...)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Filter(%q, %q) (-want +got):\n%s", tc.env, tc.names, diff)
			}
		})
	}
}

func TestEnviron(t *testing.T) {
	pkcs8, _ := testenv.KeyPEMs(t, "PRIVATE KEY")
	t.Setenv("COSIGN_PASSWORD", "pw")
	t.Setenv("CHILDENV_TEST_RECIPE", "r")
	t.Setenv("CHILDENV_TEST_CLI", "c")
	t.Setenv("CHILDENV_TEST_EXTRA", "e")
	t.Setenv("CHILDENV_TEST_PEM", pkcs8)
	t.Setenv("CHILDENV_TEST_KEEP", "k")
	ctx := childenv.WithSecrets(context.Background(), "CHILDENV_TEST_CLI")
	ctx = childenv.WithSecrets(ctx, "CHILDENV_TEST_RECIPE", "CHILDENV_TEST_CLI")
	if got, want := childenv.Secrets(ctx), []string{"CHILDENV_TEST_CLI", "CHILDENV_TEST_RECIPE"}; !cmp.Equal(got, want) {
		t.Errorf("Secrets = %q, want %q", got, want)
	}
	got := map[string]bool{}
	for _, kv := range childenv.Environ(ctx, "CHILDENV_TEST_EXTRA") {
		k, _, _ := strings.Cut(kv, "=")
		got[k] = true
	}
	for _, k := range []string{"COSIGN_PASSWORD", "CHILDENV_TEST_RECIPE", "CHILDENV_TEST_CLI", "CHILDENV_TEST_EXTRA", "CHILDENV_TEST_PEM"} {
		if got[k] {
			t.Errorf("Environ has %s, want it left out", k)
		}
	}
	for _, k := range []string{"CHILDENV_TEST_KEEP", "PATH"} {
		if !got[k] {
			t.Errorf("Environ has no %s, want it kept", k)
		}
	}
	// Without the context's names, only the fixed ones and PEMs go.
	got = map[string]bool{}
	for _, kv := range childenv.Environ(context.Background()) {
		k, _, _ := strings.Cut(kv, "=")
		got[k] = true
	}
	if !got["CHILDENV_TEST_RECIPE"] || got["CHILDENV_TEST_PEM"] || got["COSIGN_PASSWORD"] {
		t.Errorf("Environ(Background): recipe name kept %v (want true), PEM kept %v (want false), passphrase kept %v (want false)",
			got["CHILDENV_TEST_RECIPE"], got["CHILDENV_TEST_PEM"], got["COSIGN_PASSWORD"])
	}
}

func TestRefNames(t *testing.T) {
	for _, tc := range []struct {
		texts []string
		want  []string
	}{
		{[]string{`key = "env://COCOBUILD_SIGNING_KEY"`}, []string{"COCOBUILD_SIGNING_KEY"}},
		{[]string{"--key", "env://B_KEY", "--key=env://A_KEY", "-var", "k=env://C"}, []string{"A_KEY", "B_KEY", "C"}},
		{[]string{"# a file, env://VAR, or dev.\ndefault = \"env://X1\" # env://X1 again"}, []string{"VAR", "X1"}},
		{[]string{"env://", "env://1BAD", "file:key.pem", "dev"}, nil},
	} {
		if got := childenv.RefNames(tc.texts...); !cmp.Equal(got, tc.want) {
			t.Errorf("RefNames(%q) = %q, want %q", tc.texts, got, tc.want)
		}
	}
}

// TestNamesAgreeWithSign: the fixed names are the ones signing reads.
func TestNamesAgreeWithSign(t *testing.T) {
	if childenv.PasswordEnv != sign.PasswordEnv {
		t.Errorf("childenv.PasswordEnv = %q, want sign.PasswordEnv %q", childenv.PasswordEnv, sign.PasswordEnv)
	}
	if got := childenv.RefNames(sign.EnvPrefix + childenv.SigningKeyEnv); !cmp.Equal(got, []string{childenv.SigningKeyEnv}) {
		t.Errorf("RefNames(%q) = %q, want [%s]: the env:// prefix differs from sign.EnvPrefix", sign.EnvPrefix+childenv.SigningKeyEnv, got, childenv.SigningKeyEnv)
	}
}
