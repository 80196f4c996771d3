package publish

import (
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/internal/tees"
	"github.com/cocobuild/cocobuild/publish/sign"
)

// testTEEs are the TEEs cocobuild registers.
var testTEEs = tees.All()

// TestNoTEEsIsRefused: a caller that gives no TEEs gets an error, not
// documents without the TEEs' names and CoRIMs.
func TestNoTEEsIsRefused(t *testing.T) {
	_, err := NewRelease(testManifest(), Options{Name: "sample", Version: "1.0.0", Expires: testExpires})
	if err == nil || !strings.Contains(err.Error(), "no TEEs given") {
		t.Errorf("NewRelease without TEEs: error %v, want one saying no TEEs were given", err)
	}
	if _, err := Verify(t.Context(), nil, testSigner(t, sign.ECDSAP256).Public(), VerifyOptions{}); err == nil || !strings.Contains(err.Error(), "no TEEs given") {
		t.Errorf("Verify without TEEs: error %v, want one saying no TEEs were given", err)
	}
}
