// Package tee is the contract between cocobuild and the TEEs it measures
// for, and the `measure` block kind that dispatches to them.
//
// A TEE family registers once (tee/sev, tee/tdx): the names it answers to
// in recipes and manifests, the measure block attributes of its own, how a
// measure block becomes steps and artifacts, the Trustee RVPS names of its
// values, its CoRIM profile and triples, and its `cocobuild measure`
// subcommand. cmd/cocobuild builds the one Set of them and passes it down;
// builder, publish and cmd iterate it and name no TEE. Adding a TEE is a
// folder tee/NAME (with its pure model under measure/NAME) and a line in
// internal/tees.
package tee

import (
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"

	cbor "github.com/fxamacker/cbor/v2"
	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"
	"github.com/veraison/corim/comid"
	"github.com/veraison/swid"

	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/recipes"
)

// TEE is one registered TEE family. Methods that take a name are given
// one of Names.
type TEE interface {
	// Names are the TEE names it answers to, in recipes (the measure
	// block's tee) and manifests (Measurement.TEE), e.g. snp, seves, sev.
	Names() []string
	// Attributes are the measure block attributes of its own, beyond
	// CommonAttributes.
	Attributes() []string
	// Decode turns a measure block whose common part is decoded into the
	// block's node: its steps (which may add artifacts of their own, not
	// only values) and how they become the manifest's entries.
	Decode(b *Block) (recipes.Node, hcl.Diagnostics)

	// RVPSName is the reference-value name of a value key under the
	// attestation policy, or "" for the default NAME_KEY.
	RVPSName(name, key string) string
	// RVPSScalars are the reference values of an entry that the policy
	// compares with == (published only when every entry of the TEE
	// agrees): the names it may have, and those the entry has values for.
	RVPSScalars(name string, values map[string]string, params map[string]any) ([]string, map[string]any, error)

	// CoRIMProfile is the profile of a name's CoRIM, or "" when it gets
	// none.
	CoRIMProfile(name string) string
	// CoRIMTriple is the reference triple of an entry's values; note, when
	// not nil, says what a partial entry covers and lacks.
	CoRIMTriple(name string, values map[string]string, note *CoverageNote) (*comid.ValueTriple, error)
	// CoRIMKey says whether a value key is one the CoRIM holds.
	CoRIMKey(name, key string) bool
	// CoRIMValues reads back the values of a reference triple of its
	// CoRIM (the integrity registers are read by the caller).
	CoRIMValues(name string, r CoRIMReading) (map[string]string, error)

	// Uncovered says why an entry that measured a kernel does not cover
	// the whole guest, from its params; FirmwareNeed says what firmware
	// would.
	Uncovered(name string, params map[string]any) string
	FirmwareNeed(name string) string

	// Command is its `cocobuild measure` subcommand.
	Command(cli *CLI) *cobra.Command
}

// FirmwareOptional is implemented by a TEE whose measure blocks may leave
// out the firmware attribute, because none of its values depends on the
// firmware image (a TPM's PCR 11). Every other TEE's blocks require it.
type FirmwareOptional interface {
	// FirmwareOptional says whether a block of the TEE name may have no
	// firmware.
	FirmwareOptional(name string) bool
}

// RVPSEncoder is implemented by a TEE whose attestation policy compares
// a value in another encoding than the manifest's lowercase hex (Arm
// CCA's verifier gives the realm token's measurements in base64).
type RVPSEncoder interface {
	// RVPSValue returns the value of key, given in lowercase hex, as the
	// RVPS publishes it.
	RVPSValue(name, key, value string) (string, error)
}

// CLI is what a TEE's subcommand gets from the command line tool.
type CLI struct {
	Stdout, Stderr io.Writer
	// JSON says whether --json was given (read when the command runs).
	JSON func() bool
	// PrintJSON writes the command's JSON result.
	PrintJSON func(v any) error
	// Limits bound what the command reads from its input files (--limit).
	Limits *limits.Values
	// Usage marks a command-line problem (exit 2); Failure a failed
	// measurement (exit 1).
	Usage, Failure func(error) error
}

// Set is the immutable list of the registered TEEs.
type Set struct {
	tees  []TEE
	names []string
	byKey map[string]TEE
}

// NewSet returns the set of tees, in their order. A name given by two TEEs
// (or twice by one) is a programming error and panics.
func NewSet(tees ...TEE) Set {
	s := Set{tees: slices.Clone(tees), byKey: map[string]TEE{}}
	for _, t := range tees {
		for _, n := range t.Names() {
			if _, dup := s.byKey[n]; dup {
				panic(fmt.Sprintf("tee: TEE name %q registered twice", n))
			}
			s.byKey[n] = t
			s.names = append(s.names, n)
		}
	}
	return s
}

// Lookup returns the TEE that answers to name.
func (s Set) Lookup(name string) (TEE, bool) {
	t, ok := s.byKey[name]
	return t, ok
}

// All returns the TEEs in registration order.
func (s Set) All() []TEE { return slices.Clone(s.tees) }

// Names returns every TEE name, in registration order.
func (s Set) Names() []string { return slices.Clone(s.names) }

// CoRIMNames are the TEE names that get a CoRIM, in registration order.
func (s Set) CoRIMNames() []string {
	var out []string
	for _, n := range s.names {
		if s.byKey[n].CoRIMProfile(n) != "" {
			out = append(out, n)
		}
	}
	return out
}

// CoverageNote says what a partial-coverage CoRIM measurement covers and
// lacks; it is written under the measurement-values-map extension key
// CoRIMCoverageKey.
type CoverageNote struct {
	Covers []string `cbor:"covers" json:"covers"`
	Lacks  []string `cbor:"lacks" json:"lacks"`
}

// CoRIMReading is what a reference triple of a CoRIM holds beyond its
// integrity registers named by text (SHA-384, read by the caller): the
// digests of its measurements by uint mkey, its integrity registers
// indexed by uint (such as TPM PCRs) with their digests of any algorithm,
// and the extension keys of their measurement-values-maps (raw CBOR; the
// coverage note is read by the caller), which veraison/corim drops.
type CoRIMReading struct {
	Digests    map[uint64][]swid.HashEntry
	Registers  map[uint64][]swid.HashEntry
	Extensions map[int]cbor.RawMessage
}

// CoRIMCoverageKey is the measurement-values-map extension key of the
// coverage note (see publish.CoRIMCoverageKey).
const CoRIMCoverageKey = -70001

// HashSHA384 and HashSHA256 are the IANA named-information algorithms of
// SHA-384 and SHA-256.
const (
	HashSHA384 = 7
	HashSHA256 = 1
)

// HexValue decodes s, which must be n bytes of lowercase hex.
func HexValue(s string, n int) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != n || strings.ToLower(s) != s {
		return nil, fmt.Errorf("%q is not %d bytes of lowercase hex", s, n)
	}
	return b, nil
}
