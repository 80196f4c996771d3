package tee_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/tee"
	"github.com/cocobuild/cocobuild/tee/sev"
	"github.com/cocobuild/cocobuild/tee/tdx"
)

func TestSet(t *testing.T) {
	s := tee.NewSet(sev.TEE{}, tdx.TEE{})
	if got, want := s.Names(), []string{"snp", "seves", "sev", "tdx"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	// Only SNP and TDX have a CoRIM profile; the order is the registration's.
	if got, want := s.CoRIMNames(), []string{"snp", "tdx"}; !slices.Equal(got, want) {
		t.Errorf("CoRIMNames() = %q, want %q", got, want)
	}
	for _, c := range []struct {
		name string
		want tee.TEE
	}{{"snp", sev.TEE{}}, {"seves", sev.TEE{}}, {"sev", sev.TEE{}}, {"tdx", tdx.TEE{}}, {"cca", nil}} {
		got, ok := s.Lookup(c.name)
		if got != c.want || ok != (c.want != nil) {
			t.Errorf("Lookup(%q) = %T, %v; want %T", c.name, got, ok, c.want)
		}
	}
	// All returns a copy: the set stays as built.
	all := s.All()
	all[0] = tdx.TEE{}
	if got, _ := s.Lookup("snp"); got != (sev.TEE{}) || s.All()[0] != (sev.TEE{}) {
		t.Error("changing the slice All returned changed the set")
	}
}

func TestSetRefusesADuplicateName(t *testing.T) {
	defer func() {
		r := recover()
		if msg, _ := r.(string); !strings.Contains(msg, `"tdx" registered twice`) {
			t.Errorf("NewSet with tdx twice: panic %v, want one naming tdx", r)
		}
	}()
	tee.NewSet(tdx.TEE{}, sev.TEE{}, tdx.TEE{})
}
