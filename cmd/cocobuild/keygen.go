package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/publish/sign"
)

func newKeygenCmd(a *app) *cobra.Command {
	var alg, dir, prefix, cacheDir string
	var dev bool
	c := &cobra.Command{
		Use:   "keygen",
		Short: "Make a signing key pair for reference values (cosign key format)",
		Long: `Keygen makes a key pair for signing reference values: PREFIX.key, the private key
encrypted with a passphrase in the cosign/sigstore format (mode 0600), and PREFIX.pub,
the public key that verifiers use. The passphrase comes from $COSIGN_PASSWORD, or is
asked for twice on a terminal. It never overwrites a private key.

With --dev it writes (once) and shows the development key that recipes select with
key = "dev", for trying cocobuild out: cosign.key (empty passphrase) and cosign.pub in
the build cache. It is public and the same everywhere, so builds signed with it stay
reproducible; reference values signed with it prove nothing.`,
		Example: `  COSIGN_PASSWORD=… cocobuild keygen --dir keys
  cocobuild keygen --algorithm ed25519 --output-key-prefix release
  export COCOBUILD_SIGNING_KEY="$(cat keys/cosign.key)"   # for key = "env://COCOBUILD_SIGNING_KEY"
  cocobuild keygen --dev`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dev {
				return a.devKey(cacheDir)
			}
			al, err := sign.ParseAlgorithm(alg)
			if err != nil {
				return usageErr(err)
			}
			if prefix == "" || strings.ContainsAny(prefix, `/\`) {
				return usageErr(fmt.Errorf("--output-key-prefix %q: a file name without directories (use --dir)", prefix))
			}
			pw, err := a.newPassphrase()
			if err != nil {
				return usageErr(err)
			}
			s, err := sign.Generate(al)
			if err != nil {
				return failErr(err)
			}
			priv, pub, err := sign.WriteKeyPair(s, dir, prefix, pw)
			if err != nil {
				return failErr(err)
			}
			if a.json {
				return a.printJSON(map[string]any{"private_key": priv, "public_key": pub, "algorithm": al, "key_id": s.Public().ID()})
			}
			fmt.Fprintf(a.stdout, "private key: %s (keep it secret; passphrase from $%s)\npublic key:  %s\nkey id:      %s\n", priv, sign.PasswordEnv, pub, s.Public().ID())
			return nil
		},
	}
	c.Flags().StringVar(&alg, "algorithm", "ecdsa-p256", "key type: ecdsa-p256 or ed25519")
	c.Flags().StringVar(&dir, "dir", ".", "directory to write the key pair into")
	c.Flags().StringVar(&prefix, "output-key-prefix", "cosign", "file name of the key pair, without .key/.pub")
	c.Flags().BoolVar(&dev, "dev", false, "make or show the development key (no passphrase, in the build cache)")
	c.Flags().StringVar(&cacheDir, "cache-dir", "", "the build cache holding the development key (default $XDG_CACHE_HOME/cocobuild)")
	return c
}

// devKey makes or shows the development key and says loudly what it is.
func (a *app) devKey(cacheDir string) error {
	if cacheDir == "" {
		d, err := builder.DefaultCacheDir()
		if err != nil {
			return failErr(err)
		}
		cacheDir = d
	}
	dir := publish.DevKeyDir(cacheDir)
	s, created, err := sign.DevKey(dir)
	if err != nil {
		return failErr(err)
	}
	pub := filepath.Join(dir, sign.PublicKeyFile)
	if a.json {
		return a.printJSON(map[string]any{"development_key": true, "created": created, "public_key": pub, "key_id": s.Public().ID()})
	}
	verb := "is in"
	if created {
		verb = "written to"
	}
	banner := strings.Repeat("!", 78)
	fmt.Fprintf(a.stderr, "%s\n!! The DEVELOPMENT signing key %s %s\n!! It is PUBLIC: anything signed with it proves NOTHING about who made it.\n!! Never publish releases with it; make a real key with `cocobuild keygen`.\n%s\n",
		banner, verb, dir, banner)
	fmt.Fprintf(a.stdout, "public key: %s\nkey id:     %s\n", pub, s.Public().ID())
	return nil
}

// newPassphrase reads the passphrase for a new private key.
func (a *app) newPassphrase() ([]byte, error) {
	if pw, ok := os.LookupEnv(sign.PasswordEnv); ok {
		return []byte(pw), nil
	}
	f, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, fmt.Errorf("no passphrase: set %s (stdin is not a terminal to ask on)", sign.PasswordEnv)
	}
	fmt.Fprint(a.stderr, "passphrase for the private key: ")
	p1, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(a.stderr)
	if err != nil {
		return nil, err
	}
	fmt.Fprint(a.stderr, "again: ")
	p2, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(a.stderr)
	if err != nil {
		return nil, err
	}
	if string(p1) != string(p2) {
		return nil, errors.New("the passphrases differ")
	}
	return p1, nil
}
