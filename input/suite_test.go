package input_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/input/internal/fetch"
	"github.com/cocobuild/cocobuild/internal/filehash"
	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/internal/testkinds"
)

// TestDebSuiteInput locks and builds an input from forky, a suite the
// host's apt does not list: `cocobuild lock` asks the suite for its
// version, the build fetches it through the private apt state in the
// cache, and the file is the one the vectors keep for that version.
func TestDebSuiteInput(t *testing.T) {
	testenv.Tool(t, "apt-get", "apt")
	dir, cache := t.TempDir(), t.TempDir()
	ctx := context.Background()
	testenv.WriteKernelRecipe(t, dir, `
input "fw" {
  deb     = "ovmf-amdsev"
  suite   = "forky"
  extract = "usr/share/ovmf/OVMF.amdsev.fd"
}
`)
	lock, err := updateLock(ctx, t, dir, cache, false)
	if err != nil {
		t.Fatal(err)
	}
	pin := lock.Pins["fw"]
	ver, ok := strings.CutPrefix(pin.Source, "deb:ovmf-amdsev/forky=")
	if !ok || ver == "" {
		t.Fatalf("lock records source %q for fw, want deb:ovmf-amdsev/forky=VERSION", pin.Source)
	}
	if _, err := os.Stat(filepath.Join(cache, "apt")); err != nil {
		t.Errorf("the suite's apt state is not in the cache: %v", err)
	}
	res, err := testkinds.Load(t, dir, cache, input.Options{}).Build(ctx, filepath.Join(dir, "out"), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	var debSHA string
	for _, in := range res.Manifest.Inputs {
		if in.Name == "fw" {
			debSHA = in.SHA256
		}
	}
	if debSHA != pin.SHA256 {
		t.Errorf("manifest input fw: got sha256 %s, want the lock's %s", debSHA, pin.SHA256)
	}
	// The pin is the .deb's digest; the vectors keep the package and its file.
	savedDeb := filepath.Join(testenv.Vectors(t), "debs", "ovmf-amdsev_"+ver+"_all.deb")
	if _, err := os.Stat(savedDeb); err != nil {
		t.Logf("forky serves ovmf-amdsev %s now, not the vectors' version: %v", ver, err)
		return
	}
	want, _, err := filehash.SHA256(savedDeb)
	if err != nil {
		t.Fatal(err)
	}
	if debSHA != want {
		t.Errorf("ovmf-amdsev %s from forky: got sha256 %s, want %s (%s)", ver, debSHA, want, savedDeb)
	}
	f, err := os.Open(filepath.Join(cache, "blobs", "sha256", debSHA))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	fw, err := fetch.DebFile(f, st.Size(), "usr/share/ovmf/OVMF.amdsev.fd")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := testenv.SHA256Hex(fw), testenv.SHA256Hex(testenv.ReadVector(t, "inputs/debian-sid_OVMF.amdsev.fd")); got != want {
		t.Errorf("OVMF.amdsev.fd of ovmf-amdsev %s: got sha256 %s, want the vectors' copy's %s", ver, got, want)
	}
}

// TestDebSuiteVersionGone pins a version that the suite does not have: the
// build fails, saying that the archive no longer has it, which version it
// has, and what to do.
func TestDebSuiteVersionGone(t *testing.T) {
	testenv.Tool(t, "apt-get", "apt")
	dir, cache := t.TempDir(), t.TempDir()
	testenv.WriteKernelRecipe(t, dir, fmt.Sprintf(`
input "fw" {
  deb     = "ovmf-amdsev"
  suite   = "forky"
  version = "2020.01+ds-1"
  extract = "usr/share/ovmf/OVMF.amdsev.fd"
  sha256  = %q
}
`, strings.Repeat("0", 64)))
	_, err := testkinds.Load(t, dir, cache, input.Options{}).Build(context.Background(), filepath.Join(dir, "out"), 1, nil)
	if err == nil {
		t.Fatal("build with a version forky does not have succeeded")
	}
	t.Logf("error: %v", err)
	for _, want := range []string{`input "fw"`, "ovmf-amdsev=2020.01+ds-1 is no longer in suite forky", "it serves ", "pin a version it has (version = \"", "file = "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestDebSuiteDecode: suite goes with deb and is a suite's name.
func TestDebSuiteDecode(t *testing.T) {
	for _, tt := range []struct{ block, want string }{
		{`input "x" {
  url    = "https://example.test/x"
  suite  = "forky"
  sha256 = "` + strings.Repeat("0", 64) + `"
}`, "Unexpected suite"},
		{`input "x" {
  deb     = "ovmf"
  suite   = "../forky"
  version = "1"
  sha256  = "` + strings.Repeat("0", 64) + `"
}`, "Invalid suite"},
	} {
		dir := t.TempDir()
		testenv.WriteKernelRecipe(t, dir, tt.block)
		_, err := builder.Load(dir, testkinds.LoadOptions(t.TempDir(), input.Options{}))
		var de *builder.DiagError
		if !errors.As(err, &de) || !strings.Contains(de.Diags.Error(), tt.want) {
			t.Errorf("loading\n%s\ngot error %v, want diagnostic %q", tt.block, err, tt.want)
		}
	}
}
