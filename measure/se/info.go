package se

import (
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// AttestationVersion1 is the version IBM's attestation request (and so
// Trustee's se verifier, as se.version) reports for a guest booted from a
// version 1 header: s390-tools rust/pv/src/uvattest/arcb.rs,
// AttestationVersion::One = 0x0100.
const AttestationVersion1 = 0x100

// Info is what inspect and `cocobuild measure se` show of an image's
// header, hex-encoded.
type Info struct {
	Kind          string      `json:"kind"` // "image" or "header"
	HeaderOffset  int64       `json:"header_offset"`
	IPIBOffset    *int64      `json:"ipib_offset,omitempty"`
	Metadata      bool        `json:"pvimg_metadata,omitempty"`
	Version       uint32      `json:"version"`
	Size          uint32      `json:"size"`
	PLD           string      `json:"pld"`
	ALD           string      `json:"ald"`
	TLD           string      `json:"tld"`
	Tag           string      `json:"tag"`
	Pages         uint64      `json:"pages"`
	PCF           string      `json:"pcf"`
	Flags         []string    `json:"flags"`
	HostKeyHashes []string    `json:"host_key_hashes"`
	Components    []Component `json:"components,omitempty"`
}

// Info describes the image.
func (im *Image) Info() Info {
	h := im.Header
	i := Info{Kind: "image", HeaderOffset: im.HeaderOffset, Metadata: im.Metadata, Version: h.Version, Size: h.Size,
		PLD: hex.EncodeToString(h.PLD[:]), ALD: hex.EncodeToString(h.ALD[:]), TLD: hex.EncodeToString(h.TLD[:]),
		Tag: hex.EncodeToString(h.Tag[:]), Pages: h.Pages, PCF: fmt.Sprintf("%016x", h.PCF), Flags: h.Flags(),
		HostKeyHashes: h.HostKeyHashes(), Components: im.Components}
	if i.Flags == nil {
		i.Flags = []string{}
	}
	if im.Bare() {
		i.Kind = "header"
	} else {
		off := im.IPIBOffset
		i.IPIBOffset = &off
	}
	return i
}

// HostKeyHashes are the key slots' public host-key hashes, hex, in slot
// order.
func (h *Header) HostKeyHashes() []string {
	out := make([]string, len(h.KeySlots))
	for i, s := range h.KeySlots {
		out[i] = hex.EncodeToString(s.PHKH[:])
	}
	return out
}

// WriteText prints the header as inspect shows it.
func (i Info) WriteText(w io.Writer) error {
	var b strings.Builder
	p := func(k, f string, a ...any) { fmt.Fprintf(&b, "%-16s %s\n", k, fmt.Sprintf(f, a...)) }
	where := fmt.Sprintf("at %#x", i.HeaderOffset)
	if i.IPIBOffset != nil {
		where += fmt.Sprintf(", IPIB at %#x", *i.IPIBOffset)
	}
	if i.Metadata {
		where += " (pvimg metadata)"
	}
	p("SE header", "%s, version %#x, %d bytes", where, i.Version, i.Size)
	p("tag", "%s", i.Tag)
	p("pld", "%s", i.PLD)
	p("ald", "%s", i.ALD)
	p("tld", "%s", i.TLD)
	p("pages", "%d", i.Pages)
	flags := strings.Join(i.Flags, ", ")
	if flags == "" {
		flags = "none"
	}
	p("pcf", "%s (%s)", i.PCF, flags)
	for n, k := range i.HostKeyHashes {
		p(fmt.Sprintf("host key %d", n+1), "%s", k)
	}
	for n, c := range i.Components {
		p(fmt.Sprintf("component %d", n+1), "at %#x, %d page(s), tweak prefix %016x", c.Addr, c.Size/PageSize, c.TweakPrefix)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
