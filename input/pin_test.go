package input_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/internal/testkinds"
	"github.com/cocobuild/cocobuild/recipes"
)

// lineCol finds the line and column (1-based) of the first occurrence of
// needle in the file.
func lineCol(t *testing.T, file, needle string) (int, int) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(b), "\n") {
		if c := strings.Index(line, needle); c >= 0 {
			return i + 1, c + 1
		}
	}
	t.Fatalf("%q not in %s", needle, file)
	return 0, 0
}

// onePinDiag checks that err is a builder.DiagError with one diagnostic at the
// given place whose detail holds every want.
func onePinDiag(t *testing.T, err error, file string, line, col int, want ...string) {
	t.Helper()
	var de *builder.DiagError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T), want diagnostics", err, err)
	}
	if len(de.Diags) != 1 {
		t.Fatalf("got %d diagnostics, want 1: %v", len(de.Diags), de.Diags)
	}
	d := de.Diags[0]
	if d.Subject == nil || d.Subject.Filename != file || d.Subject.Start.Line != line || d.Subject.Start.Column != col {
		t.Errorf("diagnostic at %v, want %s:%d:%d", d.Subject, file, line, col)
	}
	for _, w := range want {
		if !strings.Contains(d.Detail, w) {
			t.Errorf("detail %q does not contain %q", d.Detail, w)
		}
	}
	if _, ok := de.Files[file]; !ok {
		t.Errorf("the diagnostic's file %s is not among the sources to show it against", file)
	}
	var pm *input.PinMismatchError
	if !errors.As(err, &pm) {
		t.Errorf("the pin mismatch is not in the error chain")
	}
}

// TestWrongRecipePinPointsAtIt: a sha256 written in the recipe that the
// bytes do not match is reported at that attribute, with what to do; the
// lock cannot paper over it.
func TestWrongRecipePinPointsAtIt(t *testing.T) {
	payload := []byte(strings.Repeat("firmware", 1000))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(payload) }))
	defer srv.Close()
	dir := t.TempDir()
	wrong := strings.Repeat("ab", 32)
	testenv.WriteKernelRecipe(t, dir, fmt.Sprintf(`
input "fw" {
  url    = %q
  sha256 = %q
}
`, srv.URL+"/OVMF.fd", wrong))
	r := filepath.Join(dir, "r.hcl")
	line, col := lineCol(t, r, `"`+wrong+`"`)
	cache := t.TempDir()
	ctx := context.Background()

	_, err := testkinds.Load(t, dir, cache, input.Options{}).Build(ctx, filepath.Join(dir, "out"), 1, nil)
	onePinDiag(t, err, r, line, col, "expected "+wrong, "got "+testenv.SHA256Hex(payload), "edit this sha256 in the recipe")

	for _, update := range []bool{false, true} {
		_, err := updateLock(ctx, t, dir, cache, update)
		onePinDiag(t, err, r, line, col, "expected "+wrong, "got "+testenv.SHA256Hex(payload))
		if _, serr := os.Stat(input.LockPath(dir)); !os.IsNotExist(serr) {
			t.Fatalf("lock (update %v) wrote %s despite the recipe's pin: %v", update, input.LockPath(dir), serr)
		}
	}

	// With the right pin in the recipe and another in the lock, lock
	// -update records the recipe's.
	if err := os.WriteFile(input.LockPath(dir), []byte(fmt.Sprintf("input \"fw\" {\n  source = %q\n  sha256 = %q\n}\n", "url:"+srv.URL+"/OVMF.fd", wrong)), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.WriteKernelRecipe(t, dir, fmt.Sprintf(`
input "fw" {
  url    = %q
  sha256 = %q
}
`, srv.URL+"/OVMF.fd", testenv.SHA256Hex(payload)))
	lock, err := updateLock(ctx, t, dir, cache, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := lock.Pins["fw"].SHA256; got != testenv.SHA256Hex(payload) {
		t.Errorf("lock -update recorded %s for fw, want the recipe's pin %s", got, testenv.SHA256Hex(payload))
	}
}

// TestWrongLockPinPointsAtIt: a pin from the lock file that the bytes do
// not match is reported in the lock file, with `cocobuild lock -update`.
func TestWrongLockPinPointsAtIt(t *testing.T) {
	payload := []byte(strings.Repeat("initrd", 1000))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(payload) }))
	defer srv.Close()
	dir := t.TempDir()
	testenv.WriteKernelRecipe(t, dir, fmt.Sprintf("input \"initrd\" {\n  url = %q\n}\n", srv.URL+"/initrd"))
	wrong := strings.Repeat("cd", 32)
	lf := input.LockPath(dir)
	if err := os.WriteFile(lf, []byte(fmt.Sprintf("input \"initrd\" {\n  source = %q\n  sha256 = %q\n}\n", "url:"+srv.URL+"/initrd", wrong)), 0o644); err != nil {
		t.Fatal(err)
	}
	line, col := lineCol(t, lf, `"`+wrong+`"`)
	_, err := testkinds.Load(t, dir, t.TempDir(), input.Options{}).Build(context.Background(), filepath.Join(dir, "out"), 1, nil)
	onePinDiag(t, err, lf, line, col, "expected "+wrong, "got "+testenv.SHA256Hex(payload), "cocobuild lock -update")
	var sb strings.Builder
	var de *builder.DiagError
	errors.As(err, &de)
	recipes.WriteDiagnostics(&sb, de.Files, de.Diags)
	if want := fmt.Sprintf("%s:%d:%d: error: Input does not match its sha256 pin", lf, line, col); !strings.HasPrefix(sb.String(), want) || !strings.Contains(sb.String(), wrong+`"`+"\n") {
		t.Errorf("shown as\n%s\nwant %q and the lock file's line", sb.String(), want)
	}
}
