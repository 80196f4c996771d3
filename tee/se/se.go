// Package se registers IBM Z Secure Execution ("se"): a measure block takes
// a Secure Execution image (as genprotimg or pvimg wrote it), recomputes
// the page-list, address-list and tweak-list digests of its encrypted
// components and checks them against its header, and publishes what
// Trustee's se verifier reports and its example policy compares: the
// header's tag (se.tag), the hashes of the host keys the image can be
// unpacked with (se.image_phkh) and the attestation version (se.version).
// The model is measure/se.
package se

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/veraison/corim/comid"

	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/manifest"
	model "github.com/cocobuild/cocobuild/measure/se"
	"github.com/cocobuild/cocobuild/recipes"
	"github.com/cocobuild/cocobuild/tee"
)

var _ tee.TEE = TEE{}

// TEE is the Secure Execution registration.
type TEE struct{}

// Name is the TEE name, Trustee's (its attestation service's "se").
const Name = "se"

// Names implements tee.TEE.
func (TEE) Names() []string { return []string{Name} }

// Attributes implements tee.TEE: image is the Secure Execution image.
func (TEE) Attributes() []string { return []string{"image"} }

// FirmwareOptional implements tee.FirmwareOptional: an SE guest boots
// from its image, whose loader (stage3b) is one of the components the
// header covers; there is no firmware image of the guest's.
func (TEE) FirmwareOptional(string) bool { return true }

// node is a decoded SE measure block.
type node struct {
	*tee.Block
	image recipes.Artifact
}

// Decode implements tee.TEE.
func (TEE) Decode(b *tee.Block) (recipes.Node, hcl.Diagnostics) {
	n := &node{Block: b}
	var diags hcl.Diagnostics
	a, ok := b.Attrs["image"]
	if !ok {
		return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing required argument",
			Detail:  fmt.Sprintf("measure %q: a Secure Execution measurement is of an SE image: add image = input.NAME (the image genprotimg or pvimg wrote).", b.Name),
			Subject: b.FirmwareRange.Ptr()})
	}
	art, _, d := recipes.DecodeArtifact(a.Expr, b.Ctx)
	diags = append(diags, d...)
	n.image = art
	for _, other := range []string{"firmware", "kernel", "initrd", "cmdline", "vcpus"} {
		if o, ok := b.Attrs[other]; ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: other + " beside image",
				Detail: fmt.Sprintf("The SE image holds the guest's kernel, initrd, cmdline and loader, encrypted, and the Ultravisor measures no %s apart from it: leave %s out.", other, other), Subject: o.NameRange.Ptr()})
		}
	}
	return n, diags
}

// params is what the measure step's key covers beyond its inputs.
type params struct {
	tee.StepParams
	Image bool `json:"image"`
}

func stepVersion() string { return tee.StepVersion("se", model.ModelVersion) }

// Steps implements recipes.Node.
func (n *node) Steps() []*recipes.Step {
	inputs, sp := n.Inputs()
	return []*recipes.Step{{ID: tee.StepID, Kind: "measure/" + Name, Version: stepVersion(),
		Params: params{StepParams: sp, Image: true}, Inputs: append(inputs, n.image), Run: n.run}}
}

func (n *node) run(ctx context.Context, sc *recipes.StepContext) error {
	// ReadInputs records that there is no firmware (firmware.json).
	if _, err := n.ReadInputs(sc.OutDir); err != nil {
		return err
	}
	f, size, err := n.Limits.Open(n.image.Path, limits.File)
	if err != nil {
		return fmt.Errorf("image of measure block %q (%s): %w", n.Name, n.image.Origin, err)
	}
	defer f.Close()
	r, err := Check(ctx, f, size)
	if err != nil {
		return fmt.Errorf("measure %q: image %s: %w", n.Name, n.image.Origin, err)
	}
	if !r.OK {
		return fmt.Errorf("measure %q: image %s: the recomputed %s differ from its header's: the image is damaged or was altered after genprotimg wrote it; rebuild it",
			n.Name, n.image.Origin, strings.Join(r.Mismatches, ", "))
	}
	e := tee.Entry{Measurement: manifest.Measurement{TEE: Name, Values: Values(r.Header),
		Params: map[string]any{
			"image_sha256":        n.image.SHA256,
			"attestation_version": model.AttestationVersion1,
			"header_version":      r.Header.Version,
			"pld":                 r.Header.PLD, "ald": r.Header.ALD, "tld": r.Header.TLD,
			"pages":       r.Header.Pages,
			"flags":       r.Header.Flags,
			"covers":      manifest.Coverage{Firmware: true, Kernel: true, Initrd: true, Cmdline: true},
			"assumptions": map[string]any{"tag": "the header's tag, which authenticates PLD, ALD, TLD, the key slots, the flags and the encrypted PSW and keys, is taken from the header as it was written (the Ultravisor checks it, and cocobuild measure se --header-key with the header key); PLD, ALD and TLD are recomputed from the image"},
		}}, Report: r}
	return tee.WriteEntries(sc.OutDir, []tee.Entry{e})
}

// Finish implements recipes.Node.
func (n *node) Finish(results map[string]*recipes.Result) (*recipes.Output, error) {
	return n.Block.Finish(results, tee.FinishOptions{})
}

// Result is what Check finds in an image: its header, the recomputed
// digests and whether each equals the header's.
type Result struct {
	Header     model.Info `json:"header"`
	Recomputed struct {
		PLD   string `json:"pld"`
		ALD   string `json:"ald"`
		TLD   string `json:"tld"`
		Pages uint64 `json:"pages"`
	} `json:"recomputed"`
	// Mismatches name the digests that differ (pld, ald, tld, pages).
	Mismatches []string `json:"mismatches"`
	OK         bool     `json:"ok"`
}

// Check parses the SE image of size bytes in r and recomputes its digests.
func Check(ctx context.Context, r io.ReaderAt, size int64) (*Result, error) {
	im, err := model.Parse(r, size)
	if err != nil {
		return nil, err
	}
	if im.Bare() {
		return nil, errors.New("a bare SE header has no components to recompute PLD, ALD and TLD from: give the whole SE image")
	}
	d, err := im.Digests(ctx, r)
	if err != nil {
		return nil, err
	}
	res := &Result{Header: im.Info(), Mismatches: d.Mismatches(im.Header)}
	res.Recomputed.PLD, res.Recomputed.ALD, res.Recomputed.TLD = hexOf(d.PLD[:]), hexOf(d.ALD[:]), hexOf(d.TLD[:])
	res.Recomputed.Pages = d.Pages
	if res.Mismatches == nil {
		res.Mismatches = []string{}
	}
	res.OK = len(res.Mismatches) == 0
	return res, nil
}

// Values are an entry's values: the header's tag and the host-key hash of
// each key slot, image_phkh_N for slot N (from 1).
func Values(h model.Info) map[string]any {
	v := map[string]any{"tag": h.Tag}
	for i, k := range h.HostKeyHashes {
		v[fmt.Sprintf("image_phkh_%d", i+1)] = k
	}
	return v
}

// RVPSName implements tee.TEE: Trustee's se verifier reports the tag as
// se.tag and the hash of the host key the guest was unpacked with as
// se.image_phkh (lowercase hex, attestation-service/docs/tcb_claims.md);
// every key slot's hash is a reference value of se.image_phkh.
func (TEE) RVPSName(_, key string) string {
	switch {
	case key == "tag":
		return "se.tag"
	case strings.HasPrefix(key, "image_phkh_"):
		return "se.image_phkh"
	}
	return ""
}

// RVPSScalars implements tee.TEE: se.version, which Trustee's example
// policy (attestation-service/tests/coco-as/policy/example-3.rego)
// compares as a string with "256", is a number, the attestation version.
func (TEE) RVPSScalars(_ string, _ map[string]string, params map[string]any) ([]string, map[string]any, error) {
	names := []string{"se.version"}
	switch v := params["attestation_version"].(type) {
	case float64:
		return names, map[string]any{"se.version": v}, nil
	case int:
		return names, map[string]any{"se.version": float64(v)}, nil
	case nil:
		return names, map[string]any{}, nil
	default:
		return nil, nil, fmt.Errorf("attestation_version %v is not a number", v)
	}
}

// CoRIMProfile implements tee.TEE: no CoRIM profile covers Secure
// Execution, so an SE entry gets none (its values are in the RVPS message
// and the in-toto statement).
func (TEE) CoRIMProfile(string) string { return "" }

var errNoCoRIM = errors.New("Secure Execution has no CoRIM profile")

// CoRIMTriple implements tee.TEE.
func (TEE) CoRIMTriple(string, map[string]string, *tee.CoverageNote) (*comid.ValueTriple, error) {
	return nil, errNoCoRIM
}

// CoRIMKey implements tee.TEE.
func (TEE) CoRIMKey(string, string) bool { return false }

// CoRIMValues implements tee.TEE.
func (TEE) CoRIMValues(string, tee.CoRIMReading) (map[string]string, error) {
	return nil, errNoCoRIM
}

// Uncovered implements tee.TEE: an SE entry covers the whole guest.
func (TEE) Uncovered(string, map[string]any) string {
	return "the SE header covers every encrypted component of the image (kernel, initrd, cmdline, stage3b loader)"
}

// FirmwareNeed implements tee.TEE.
func (TEE) FirmwareNeed(string) string {
	return "nothing: the image's loader is one of its encrypted components"
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }
