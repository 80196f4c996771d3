package publish

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/tee"
)

// CoverageGap is a measurement that does not vouch for the whole guest.
type CoverageGap struct {
	TEE    string
	Name   string
	Covers []string
	Lacks  []string
	// Why says why the parts are not covered and how to cover them.
	Why string
}

// PartialCoverageError refuses to sign measurements that do not cover the
// firmware, kernel and cmdline (and the initrd when the guest has one): a
// verifier that accepts them accepts any guest that differs in what they
// leave out.
type PartialCoverageError struct {
	Gaps []CoverageGap // sorted by TEE and name
}

// Error lists the measurements by the parts they lack and why.
func (e *PartialCoverageError) Error() string {
	return fmt.Sprintf("refusing to sign reference values that do not vouch for the guest: %s", e.Detail())
}

// Detail lists the measurements, grouped by what they cover and lack and
// why, one per line below their group.
func (e *PartialCoverageError) Detail() string {
	type group struct {
		head  string
		names []string
	}
	var groups []*group
	byHead := map[string]*group{}
	for _, g := range e.Gaps {
		c := &Coverage{Covers: g.Covers, Lacks: g.Lacks}
		head := c.String() + ": " + g.Why
		gr, ok := byHead[head]
		if !ok {
			gr = &group{head: head}
			byHead[head] = gr
			groups = append(groups, gr)
		}
		gr.names = append(gr.names, g.Name)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d measurement(s) leave out part of the guest, so a verifier that accepts them accepts any guest that differs in that part:", len(e.Gaps))
	for _, gr := range groups {
		fmt.Fprintf(&b, "\n  %s", gr.head)
		for _, n := range gr.names {
			fmt.Fprintf(&b, "\n    %s", n)
		}
	}
	return b.String()
}

// IsPartialCoverage reports whether err refuses partial coverage, and
// returns it.
func IsPartialCoverage(err error) (*PartialCoverageError, bool) {
	var pc *PartialCoverageError
	ok := errors.As(err, &pc)
	return pc, ok
}

// entryCoverage reads what a measurement covers from its params (covers;
// initrd_sha256 says the guest has an initrd) and, when it lacks a part,
// the gap.
func entryCoverage(mm manifest.Measurement, tees tee.Set) (*Coverage, *CoverageGap) {
	hasInitrd := false
	if s, ok := mm.Params["initrd_sha256"].(string); ok && s != "" {
		hasInitrd = true
	}
	rc, err := manifest.CoverageParam(mm.Params)
	if err != nil {
		// Unknown coverage vouches for nothing it cannot name.
		rc = manifest.Coverage{}
	}
	c := &Coverage{Covers: rc.Covered(), Lacks: rc.Lacks(hasInitrd)}
	if c.Covers == nil {
		c.Covers = []string{}
	}
	if !c.Partial() {
		return c, nil
	}
	g := &CoverageGap{TEE: mm.TEE, Name: mm.Name, Covers: c.Covers, Lacks: c.Lacks}
	_, hasKernel := mm.Params["kernel_sha256"]
	t, known := tees.Lookup(mm.TEE)
	firmwareNeed := func() string {
		if !known {
			return fmt.Sprintf("with a firmware that covers them (cocobuild has no TEE %q)", mm.TEE)
		}
		return t.FirmwareNeed(mm.TEE)
	}
	switch {
	case err != nil:
		g.Why = fmt.Sprintf("%v: rebuild with this cocobuild, whose measure blocks record it", err)
	case !hasKernel:
		g.Why = "no kernel was measured: give the measure block kernel = kernel.NAME (and initrd), " + firmwareNeed()
	case !known:
		g.Why = "the firmware does not make the measurement commit to them; " + firmwareNeed()
	default:
		g.Why = t.Uncovered(mm.TEE, mm.Params) + "; " + firmwareNeed()
	}
	return c, g
}

func sortGaps(gs []CoverageGap) {
	sort.SliceStable(gs, func(i, j int) bool {
		if gs[i].TEE != gs[j].TEE {
			return gs[i].TEE < gs[j].TEE
		}
		return gs[i].Name < gs[j].Name
	})
}

// PartialEntries are the entries of a release that lack a part of the
// guest.
func (r *Release) PartialEntries() []Entry {
	var out []Entry
	for _, e := range r.Entries {
		if e.Coverage.Partial() {
			out = append(out, e)
		}
	}
	return out
}

// CoverageSummary says in one line what the release's values cover: that
// every entry vouches for the whole guest, or how many do not and what they
// lack.
func (r *Release) CoverageSummary() string {
	partial, unknown := 0, 0
	lacks := map[string]bool{}
	for _, e := range r.Entries {
		switch {
		case e.Coverage == nil:
			unknown++
		case e.Coverage.Partial():
			partial++
			for _, l := range e.Coverage.Lacks {
				lacks[l] = true
			}
		}
	}
	switch {
	case partial > 0:
		var ls []string
		for _, p := range []string{manifest.PartFirmware, manifest.PartKernel, manifest.PartInitrd, manifest.PartCmdline} {
			if lacks[p] {
				ls = append(ls, p)
			}
		}
		return fmt.Sprintf("PARTIAL coverage (allowed by the publisher): %d of %d reference values do not vouch for the %s", partial, len(r.Entries), strings.Join(ls, ", "))
	case unknown > 0:
		return fmt.Sprintf("coverage not recorded for %d of %d reference values (published before cocobuild recorded it)", unknown, len(r.Entries))
	}
	return fmt.Sprintf("all %d reference values cover the firmware, kernel and cmdline (and the initrd where the guest has one)", len(r.Entries))
}
