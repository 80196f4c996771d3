package tdx

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-eventlog/register"
	"github.com/google/go-eventlog/tcg"
	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"

	model "github.com/cocobuild/cocobuild/measure/tdx"
	"github.com/cocobuild/cocobuild/tee"
)

var _ tee.Checker = TEE{}

// Evidence is a parsed TDX quote.
type Evidence struct {
	Quote *pb.QuoteV4
	Raw   []byte
}

// TEE implements tee.Evidence.
func (*Evidence) TEE() string { return "tdx" }

// Describe implements tee.Evidence.
func (e *Evidence) Describe() string {
	return fmt.Sprintf("Intel TDX quote version %d (TEE type 0x%x)", e.Quote.GetHeader().GetVersion(), e.Quote.GetHeader().GetTeeType())
}

// teeTypeTDX is the quote header's TEE type of a TD quote (SGX is 0).
const teeTypeTDX = 0x81

// ParseEvidence implements tee.Checker: a TD quote's header starts with
// its version (4 or 5) and attestation key type (2: ECDSA-256, 3:
// ECDSA-384) as little-endian uint16s and the TEE type 0x81 as a uint32.
func (TEE) ParseEvidence(b []byte) (tee.Evidence, bool, error) {
	if len(b) < 8 {
		return nil, false, nil
	}
	v, key, teeType := binary.LittleEndian.Uint16(b), binary.LittleEndian.Uint16(b[2:]), binary.LittleEndian.Uint32(b[4:])
	if (v != 4 && v != 5) || (key != 2 && key != 3) || teeType != teeTypeTDX {
		return nil, false, nil
	}
	if v == 5 {
		return nil, true, errors.New("TDX quote version 5: the go-tdx-guest release cocobuild uses parses version 4 quotes only; get a version 4 quote (e.g. from the QGS of a TDX 1.5 host)")
	}
	q, err := quoteToProto(b)
	if err != nil {
		return nil, true, fmt.Errorf("TDX quote: %w", err)
	}
	q4, ok := q.(*pb.QuoteV4)
	if !ok {
		return nil, true, fmt.Errorf("TDX quote: go-tdx-guest returned a %T", q)
	}
	return &Evidence{Quote: q4, Raw: b}, true, nil
}

// EvidenceKinds implements tee.Checker.
func (TEE) EvidenceKinds() string {
	return "an Intel TDX quote (version 4; version 5 is refused by name: the go-tdx-guest release cocobuild uses parses version 4 only), with its CCEL event log as --eventlog (/sys/firmware/acpi/tables/data/CCEL)"
}

// acpiHeaderSize is the size of an ACPI table header; the CCEL table is a
// header and the log's class, length and address (56 bytes).
const acpiHeaderSize = 36

// ParseEventLog implements tee.Checker: b must be a CC event log that
// go-eventlog parses. The ACPI CCEL table, which only says where the log
// lies, is told apart and named.
func (TEE) ParseEventLog(b []byte) error {
	if len(b) >= acpiHeaderSize && len(b) <= 64 && string(b[:4]) == "CCEL" {
		return fmt.Errorf("%w: this is the ACPI CCEL table (%d bytes, /sys/firmware/acpi/tables/CCEL), which only says where the event log lies: give the log itself, /sys/firmware/acpi/tables/data/CCEL", tee.ErrUnreadable, len(b))
	}
	if _, _, err := parseLog(b); err != nil {
		return fmt.Errorf("%w: the TDX event log does not parse (want the CCEL log from /sys/firmware/acpi/tables/data/CCEL): %w", tee.ErrUnreadable, err)
	}
	return nil
}

// quoteToProto is go-tdx-guest's parser, whose panics on malformed
// certification data (v0.3.1 slices past the end with a length the quote
// states) become errors.
func quoteToProto(b []byte) (q any, err error) {
	defer func() {
		if r := recover(); r != nil {
			q, err = nil, fmt.Errorf("malformed quote (go-tdx-guest: %v)", r)
		}
	}()
	return abi.QuoteToProto(b)
}

// quoteFields are the quote body's fields by reference-value name
// (policyName for the registers).
func quoteFields(q *pb.QuoteV4) []tee.Field {
	b := q.GetTdQuoteBody()
	f := []tee.Field{{Name: "mr_td", Got: hex.EncodeToString(b.GetMrTd())}}
	for i, r := range b.GetRtmrs() {
		f = append(f, tee.Field{Name: fmt.Sprintf("rtmr_%d", i), Got: hex.EncodeToString(r)})
	}
	for _, x := range []struct {
		name string
		v    []byte
	}{{"xfam", b.GetXfam()}, {"td_attributes", b.GetTdAttributes()}, {"mr_config_id", b.GetMrConfigId()},
		{"mr_owner", b.GetMrOwner()}, {"mr_owner_config", b.GetMrOwnerConfig()}, {"report_data", b.GetReportData()}} {
		f = append(f, tee.Field{Name: x.name, Got: hex.EncodeToString(x.v)})
	}
	return f
}

// valueKey is the entry value of a register field (mr_td: mrtd).
func valueKey(field string) string {
	for k, n := range policyName {
		if n == field {
			return k
		}
	}
	return ""
}

// published returns what entry e publishes for a field, or "".
func published(e tee.CheckEntry, field string) string {
	if field == "report_data" {
		return "" // a nonce: never a reference value
	}
	if k := valueKey(field); k != "" && k != "xfam" {
		return e.Values[k]
	}
	if v, ok := e.Values[field]; ok {
		return v
	}
	s, _ := e.Params[field].(string)
	return strings.ToLower(strings.TrimPrefix(s, "0x"))
}

func compare(fields []tee.Field, e tee.CheckEntry) ([]tee.Field, int) {
	out := make([]tee.Field, 0, len(fields))
	differ := 0
	for _, f := range fields {
		c := tee.Field{Name: f.Name, Got: f.Got, Status: tee.FieldNotPublished}
		if f.Name == "report_data" {
			c.Note = "the verifier's nonce, never a reference value"
		}
		if f.Name == "td_attributes" && published(e, f.Name) == "" && debugTD(f.Got) {
			// Whatever a release publishes, a debuggable TD is none of its
			// guests: the host can read and change its memory.
			c.Want, c.Status = []string{"DEBUG (bit 0) clear"}, tee.FieldDiffers
			differ++
		} else if w := published(e, f.Name); w != "" {
			c.Want, c.Status = []string{w}, tee.FieldMatch
			if w != f.Got {
				c.Status = tee.FieldDiffers
				differ++
			}
		}
		out = append(out, c)
	}
	return out, differ
}

// debugTD says whether TD attributes (hex, little-endian) have DEBUG set.
func debugTD(attrs string) bool {
	b, err := hex.DecodeString(attrs)
	return err == nil && len(b) > 0 && b[0]&1 != 0
}

// Check implements tee.Checker.
func (TEE) Check(ctx context.Context, ev tee.Evidence, in tee.CheckInput) (*tee.CheckResult, error) {
	e, ok := ev.(*Evidence)
	if !ok {
		return nil, fmt.Errorf("not TDX evidence: %T", ev)
	}
	if len(in.Entries) == 0 {
		return nil, errors.New("the reference values hold no TDX entries to compare the quote with")
	}
	fields := quoteFields(e.Quote)
	res := &tee.CheckResult{Evidence: fields}
	if in.Signature != nil {
		sig, err := checkSignature(e, in.Signature)
		res.Signature = sig
		if err != nil {
			res.Reasons = append(res.Reasons, "the quote's signature does not verify: "+err.Error())
			res.Explained = true
			return res, nil
		}
		res.SignatureChecked = true
	}
	// The closest entry: MRTD first, then the most registers equal; with
	// a log that replays to the quote, the most events equal to those of
	// the entry's expected log.
	best, bestDiff, bestMRTD := -1, 0, false
	var bestFields []tee.Field
	cmps := make([][]tee.Field, len(in.Entries))
	for i, en := range in.Entries {
		cmp, differ := compare(fields, en)
		if differ == 0 {
			res.Match, res.Fields = true, cmp
			res.SetEntry(en)
			if len(in.EventLog) > 0 {
				// A matching quote's log must still replay to it.
				if why := replayProblem(in.EventLog, e.Quote); why != "" {
					res.Match = false
					res.Reasons, res.Explained = []string{why}, true
				}
			}
			return res, nil
		}
		cmps[i] = cmp
		mrtdOK := cmp[0].Status == tee.FieldMatch
		if best < 0 || (mrtdOK && !bestMRTD) || (mrtdOK == bestMRTD && differ < bestDiff) {
			best, bestDiff, bestMRTD, bestFields = i, differ, mrtdOK, cmp
		}
	}
	if len(in.EventLog) > 0 && replayProblem(in.EventLog, e.Quote) == "" {
		if got, _, err := parseLog(in.EventLog); err == nil {
			most := -1
			for i, en := range in.Entries {
				if (cmps[i][0].Status == tee.FieldMatch) != bestMRTD {
					continue
				}
				want, ok := expectedLog(en)
				if !ok {
					continue
				}
				if n := equalEvents(want, got); n > most {
					most, best, bestFields = n, i, cmps[i]
				}
			}
		}
	}
	closest := in.Entries[best]
	res.Fields = bestFields
	res.SetEntry(closest)
	x := &explainer{entries: in.Entries, closest: closest, quote: e.Quote, cmdline: in.Cmdline}
	if !bestMRTD {
		x.mrtd()
	}
	var differing []int
	for i := range 4 {
		if bestFields[1+i].Status == tee.FieldDiffers {
			differing = append(differing, i)
		}
	}
	if len(differing) > 0 {
		if len(in.EventLog) > 0 {
			if err := x.eventLog(in.EventLog, differing); err != nil {
				return nil, err
			}
		} else {
			x.registers(differing, ". Give the TD's event log (--eventlog, from /sys/firmware/acpi/tables/data/CCEL) to name the event that differs")
		}
	}
	for _, f := range bestFields[5:] {
		switch {
		case f.Status != tee.FieldDiffers:
		case f.Name == "td_attributes" && debugTD(f.Got):
			x.add(true, "the TD attributes %s have DEBUG (bit 0) set: the host can read and change the TD's memory, so its measurements vouch for nothing", f.Got)
		default:
			x.add(true, "%s is %s, the release publishes %s", f.Name, f.Got, strings.Join(f.Want, ", "))
		}
	}
	res.Reasons, res.Explained, res.Differences = x.reasons, x.explained, x.diffs
	return res, nil
}

// explainer collects the reasons of a mismatch.
type explainer struct {
	entries   []tee.CheckEntry
	closest   tee.CheckEntry
	quote     *pb.QuoteV4
	cmdline   *string
	reasons   []string
	explained bool
	diffs     []tee.Difference
}

// diff records a parameter that differs.
func (x *explainer) diff(parameter, got string, published ...string) {
	x.diffs = append(x.diffs, tee.Difference{Parameter: parameter, Got: got, Published: published})
}

func (x *explainer) add(explains bool, format string, args ...any) {
	x.reasons = append(x.reasons, fmt.Sprintf(format, args...))
	x.explained = x.explained || explains
}

// mrtd explains an MRTD that no entry publishes: MRTD depends on the
// firmware and the order the VMM adds its pages in, nothing else.
func (x *explainer) mrtd() {
	got := x.quote.GetTdQuoteBody().GetMrTd()
	var shas, orders []string
	for _, e := range x.entries {
		if s := str(e.Params["firmware_sha256"]); s != "" && !slices.Contains(shas, s) {
			shas = append(shas, s)
		}
		if o := str(e.Params["page_order"]); o != "" && !slices.Contains(orders, o) {
			orders = append(orders, o)
		}
	}
	if len(orders) == 0 {
		orders = []string{string(model.PageOrderSinglePass)}
	}
	for _, sha := range shas {
		e := x.entries[slices.IndexFunc(x.entries, func(e tee.CheckEntry) bool { return str(e.Params["firmware_sha256"]) == sha })]
		fw, err := e.Artifact(sha)
		if err != nil {
			x.add(false, "MRTD differs: the firmware or the page order differ; the published firmware %s is not at hand to tell which (%v): give the build output with --artifacts DIR", sha, err)
			continue
		}
		md, err := model.ParseMetadata(fw)
		if err != nil {
			x.add(false, "MRTD differs, and the published firmware %s has no TDVF metadata to test page orders with: %v", sha, err)
			continue
		}
		var tried []string
		for _, o := range []model.PageOrder{model.PageOrderSinglePass, model.PageOrderTwoPass} {
			d, err := model.MRTD(fw, md, o)
			if err != nil {
				continue
			}
			tried = append(tried, fmt.Sprintf("%s %s", o, d))
			if bytes.Equal(d[:], got) {
				x.diff("page_order", string(o), orders...)
				x.add(true, "MRTD is that of the published firmware %s added in the %s page order (%s); the release covers %s", short(sha), o, orderNote(o), strings.Join(orders, " and "))
				return
			}
		}
		x.diff("firmware", "another firmware (MRTD "+hex.EncodeToString(got)+")", sha)
		x.add(true, "MRTD depends only on the firmware and the page order, and neither page order of the published firmware %s gives it (%s): the TD ran another firmware", sha, strings.Join(tried, "; "))
	}
	if len(shas) == 0 {
		x.add(false, "MRTD differs; the entries do not record their firmware (firmware_sha256), so nothing tells whether the firmware or the page order differ")
	}
}

func orderNote(o model.PageOrder) string {
	if o == model.PageOrderTwoPass {
		return "all pages of a section added, then extended: QEMU 8.2.2 with the TDX patches as some distributions ship it"
	}
	return "each page added and extended in turn: upstream KVM, QEMU 9.2 and newer, GCE"
}

// rtmrCovers says what each RTMR holds on a QEMU direct boot by TDVF.
var rtmrCovers = [4]string{
	"the firmware's configuration: the TD HOB (memory size), the configuration volume (variable store), the Secure Boot and boot variables, and QEMU's ACPI tables (machine, vCPU count, memory)",
	"the kernel (its Authenticode digest), the boot actions and the ReadyToBoot separator",
	"the kernel command line (LoadOptions) and the initrd, measured by the Linux EFI stub",
	"nothing at boot: it is extended at run time only",
}

// registers explains differing RTMRs by what they cover; hint says what
// would name the event (nothing when a log was given).
func (x *explainer) registers(differing []int, hint string) {
	for _, i := range differing {
		got := hex.EncodeToString(x.quote.GetTdQuoteBody().GetRtmrs()[i])
		var same []string
		for _, e := range x.entries {
			if e.Values[fmt.Sprintf("rtmr%d", i)] == got {
				same = append(same, e.Name)
			}
		}
		s := fmt.Sprintf("RTMR%d differs from %s's; it covers %s", i, x.closest.Name, rtmrCovers[i])
		if len(same) > 0 {
			s += "; it is the RTMR" + strconv.Itoa(i) + " of " + strings.Join(same, ", ")
		}
		x.add(len(same) > 0, "%s%s", s, hint)
	}
}

// logEvent is one event of a CC event log.
type logEvent struct {
	rtmr   int
	typ    uint32
	data   []byte
	digest []byte
}

// parseLog reads a CCEL with go-eventlog: its SHA-384 events, in order.
func parseLog(b []byte) ([]logEvent, *tcg.EventLog, error) {
	el, err := tcg.ParseEventLog(b, tcg.ParseOpts{AllowPadding: true})
	if err != nil {
		return nil, nil, err
	}
	var out []logEvent
	for _, e := range el.Events(register.HashSHA384) {
		if uint32(e.Type) == uint32(model.EvNoAction) {
			continue
		}
		if e.Index < 1 || e.Index > 4 {
			return nil, nil, fmt.Errorf("an event of type %s has MR index %d: a TD's log extends RTMR0-3 (MR index 1-4)", e.Type, e.Index)
		}
		if len(e.Digest) != sha512.Size384 {
			return nil, nil, fmt.Errorf("an event of type %s in RTMR%d has no SHA-384 digest", e.Type, e.Index-1)
		}
		out = append(out, logEvent{rtmr: e.Index - 1, typ: uint32(e.Type), data: e.Data, digest: e.Digest})
	}
	return out, el, nil
}

// replayProblem says why the TD's log does not replay to its quote, or "".
// Each of the four RTMRs is replayed from the log's events and compared
// with the quote, whether the log has events for it or not: go-eventlog's
// EventLog.Verify checks only the registers the log extends, so a log
// with a register's events removed (or a quote whose RTMR3 was extended at
// run time) would pass it.
func replayProblem(log []byte, q *pb.QuoteV4) string {
	events, el, err := parseLog(log)
	if err != nil {
		return "the event log does not parse (" + err.Error() + "), so it cannot vouch for anything"
	}
	rtmrs := q.GetTdQuoteBody().GetRtmrs()
	var bad []string
	for i := range 4 {
		var r []byte
		if i < len(rtmrs) {
			r = rtmrs[i]
		}
		var ds []model.Digest
		for _, e := range events {
			if e.rtmr == i {
				ds = append(ds, model.Digest(e.digest))
			}
		}
		if got := model.Replay(ds...); !bytes.Equal(got[:], r) {
			bad = append(bad, fmt.Sprintf("RTMR%d (its %d events replay to %s, the quote says %s)", i, len(ds), short(got.String()), short(hex.EncodeToString(r))))
		}
	}
	if len(bad) > 0 {
		return "the event log does not replay to the quote's " + strings.Join(bad, ", ") + ": it is not the log of this TD, or it was altered (or the TD extended an RTMR at run time without logging it), so its events cannot explain anything"
	}
	var bank register.RTMRBank
	for i, r := range rtmrs {
		bank.RTMRs = append(bank.RTMRs, register.RTMR{Index: i, Digest: r})
	}
	if _, err := el.Verify(bank.MRs()); err != nil {
		return "the event log replays to the quote's RTMRs, but go-eventlog refuses it (" + err.Error() + "), so its events cannot explain anything"
	}
	return ""
}

// eventLog explains differing RTMRs event by event: the TD's log must
// replay to its quote, and is then compared with the entry's expected log.
func (x *explainer) eventLog(log []byte, differing []int) error {
	got, _, err := parseLog(log)
	if err != nil {
		return fmt.Errorf("%w: the event log does not parse: %w", tee.ErrUnreadable, err)
	}
	if why := replayProblem(log, x.quote); why != "" {
		x.add(true, "%s", why)
		x.registers(differing, "")
		return nil
	}
	path := str(x.closest.Params["eventlog"])
	if path == "" {
		x.add(false, "the TD's event log replays to its quote, but %s records no expected event log to compare it with", x.closest.Name)
		x.registers(differing, "")
		return nil
	}
	expLog, err := x.closest.File(path)
	if err != nil {
		x.add(false, "the TD's event log replays to its quote, but the expected log %s of %s is not at hand (%v): give the build output with --artifacts DIR", path, x.closest.Name, err)
		x.registers(differing, "")
		return nil
	}
	want, _, err := parseLog(expLog)
	if err != nil {
		return fmt.Errorf("the expected event log %s: %w", path, err)
	}
	if s, g, w := separatorPlacement(want, got); s != "" {
		x.diff("tdvf_separator", g, w)
		x.add(true, "%s", s)
	}
	for _, i := range differing {
		x.differences(i, filter(want, i), filter(got, i))
	}
	return nil
}

// expectedLog is the events of an entry's expected log, when at hand.
func expectedLog(e tee.CheckEntry) ([]logEvent, bool) {
	path := str(e.Params["eventlog"])
	if path == "" || e.File == nil {
		return nil, false
	}
	b, err := e.File(path)
	if err != nil {
		return nil, false
	}
	evs, _, err := parseLog(b)
	return evs, err == nil
}

// equalEvents counts the events of got that the expected log want has too
// (the same register, type and digest), each expected event counted once.
func equalEvents(want, got []logEvent) int {
	left := map[string]int{}
	for _, e := range want {
		left[eventKey(e)]++
	}
	n := 0
	for _, e := range got {
		if k := eventKey(e); left[k] > 0 {
			left[k]--
			n++
		}
	}
	return n
}

func eventKey(e logEvent) string {
	return fmt.Sprintf("%d/%d/%x", e.rtmr, e.typ, e.digest)
}

func filter(evs []logEvent, rtmr int) []logEvent {
	var out []logEvent
	for _, e := range evs {
		if e.rtmr == rtmr {
			out = append(out, e)
		}
	}
	return out
}

// separatorPlacement says when the TD logs the ReadyToBoot separator in
// another RTMR than the release expects (TDVF before and after edk2
// efaf893).
func separatorPlacement(want, got []logEvent) (why, gotSep, wantSep string) {
	where := func(evs []logEvent) []int {
		var r []int
		for _, e := range evs {
			if e.typ == uint32(model.EvSeparator) {
				r = append(r, e.rtmr)
			}
		}
		return r
	}
	w, g := where(want), where(got)
	if slices.Equal(w, g) {
		return "", "", ""
	}
	name := func(r []int) string {
		if slices.Contains(r, 0) && !slices.Contains(r, 1) {
			return "RTMR0 (legacy TDVF, tdvf_separator = \"legacy\")"
		}
		if slices.Contains(r, 1) {
			return "RTMR1 (edk2 after 202408.01, tdvf_separator = \"current\")"
		}
		return "no RTMR"
	}
	param := func(r []int) string {
		if slices.Contains(r, 0) && !slices.Contains(r, 1) {
			return "legacy"
		}
		return "current"
	}
	return fmt.Sprintf("the TD's firmware logs the ReadyToBoot separator in %s; the release expects it in %s", name(g), name(w)), param(g), param(w)
}

// differences names every event of RTMR i where the TD's log departs from
// the expected one: the two are aligned on their longest common run of
// equal events (same type and digest), and each gap between equal events
// is events that differ (paired in order), then events one log has and
// the other lacks.
func (x *explainer) differences(i int, want, got []logEvent) {
	same := func(a, b logEvent) bool { return a.typ == b.typ && bytes.Equal(a.digest, b.digest) }
	// lcs[a][b]: the longest common run of want[a:] and got[b:].
	lcs := make([][]int, len(want)+1)
	for a := range lcs {
		lcs[a] = make([]int, len(got)+1)
	}
	for a := len(want) - 1; a >= 0; a-- {
		for b := len(got) - 1; b >= 0; b-- {
			if same(want[a], got[b]) {
				lcs[a][b] = lcs[a+1][b+1] + 1
			} else {
				lcs[a][b] = max(lcs[a+1][b], lcs[a][b+1])
			}
		}
	}
	found := false
	var wg, gg []int // the current gap: indexes into want and got
	flush := func() {
		for k := 0; k < max(len(wg), len(gg)); k++ {
			found = true
			switch {
			case k >= len(gg):
				x.add(true, "RTMR%d: the TD's log lacks event %d the release expects, %s", i, wg[k]+1, x.describe(want[wg[k]]))
				x.diff(fmt.Sprintf("rtmr%d_event", i), "none", x.describe(want[wg[k]]))
			case k >= len(wg):
				x.add(true, "RTMR%d: the TD logged an event the release does not expect, event %d: %s", i, gg[k]+1, x.describe(got[gg[k]]))
				x.diff(fmt.Sprintf("rtmr%d_event", i), x.describe(got[gg[k]]))
			default:
				x.add(true, "RTMR%d event %d: %s", i, gg[k]+1, x.difference(want[wg[k]], got[gg[k]]))
			}
		}
		wg, gg = wg[:0], gg[:0]
	}
	a, b := 0, 0
	for a < len(want) || b < len(got) {
		switch {
		case a < len(want) && b < len(got) && same(want[a], got[b]):
			flush()
			a, b = a+1, b+1
		case b < len(got) && (a == len(want) || lcs[a][b+1] >= lcs[a+1][b]):
			gg = append(gg, b)
			b++
		default:
			wg = append(wg, a)
			a++
		}
	}
	flush()
	if !found {
		x.add(false, "RTMR%d: the TD's events are the expected ones, yet the register differs", i)
	}
}

// Linux EFI stub tagged event IDs.
const (
	initrdTagID      = 0x8f3b22ec
	loadOptionsTagID = 0x8f3b22ed
)

func tagID(data []byte) (uint32, bool) {
	t, err := tcg.ParseTaggedEventData(data)
	if err != nil {
		return 0, false
	}
	return t.ID, true
}

// describe says what an event is.
func (x *explainer) describe(e logEvent) string {
	t := model.EventType(e.typ)
	switch t {
	case model.EvEFIBootServicesApplication:
		return "the kernel image (EV_EFI_BOOT_SERVICES_APPLICATION, its Authenticode SHA-384 " + short(hex.EncodeToString(e.digest)) + ")"
	case model.EvEventTag:
		if id, ok := tagID(e.data); ok {
			switch id {
			case loadOptionsTagID:
				return "the kernel command line (EFI stub LoadOptions event)"
			case initrdTagID:
				return "the initrd (EFI stub initrd event)"
			}
		}
	case model.EvEFIVariableBoot, model.EvEFIVariableDriverConfig, model.EventType(tcg.EFIVariableAuthority):
		if v, err := tcg.ParseUEFIVariableData(bytes.NewReader(e.data)); err == nil {
			return fmt.Sprintf("the UEFI variable %s (%s)", v.VarName(), eventName(e.typ))
		}
	case model.EvPlatformConfigFlags:
		if string(e.data) == "ACPI DATA" {
			return "QEMU's ACPI tables (EV_PLATFORM_CONFIG_FLAGS \"ACPI DATA\")"
		}
	case model.EvEFIHandoffTables2:
		return "the TD HOB (EV_EFI_HANDOFF_TABLES2: the memory map QEMU hands the TD)"
	case model.EvEFIPlatformFirmwareBlob2:
		return "the firmware's configuration volume (EV_EFI_PLATFORM_FIRMWARE_BLOB2: the variable store)"
	case model.EvSeparator:
		return "a separator (EV_SEPARATOR)"
	case model.EvEFIAction:
		return fmt.Sprintf("the boot action %q (EV_EFI_ACTION)", printable(e.data))
	}
	return fmt.Sprintf("%s %q", eventName(e.typ), printable(e.data))
}

// eventName is the TCG name of an event type, as go-eventlog knows them
// (the model's, and those such as EV_EFI_VARIABLE_AUTHORITY that shim
// logs), or its number.
func eventName(typ uint32) string { return tcg.EventType(typ).TCGString() }

// difference explains why event got is not event want.
func (x *explainer) difference(want, got logEvent) string {
	gd, wd := hex.EncodeToString(got.digest), hex.EncodeToString(want.digest)
	if want.typ != got.typ {
		return fmt.Sprintf("the TD logged %s where the release expects %s", x.describe(got), x.describe(want))
	}
	p := x.closest.Params
	switch model.EventType(want.typ) {
	case model.EvEFIBootServicesApplication:
		x.diff("kernel_authenticode_sha384", gd, wd)
		return fmt.Sprintf("the kernel differs: its Authenticode SHA-384 is %s in the TD's log, %s for the published kernel (sha256 %s)", gd, wd, str(p["kernel_sha256"]))
	case model.EvEventTag:
		id, _ := tagID(want.data)
		switch id {
		case loadOptionsTagID:
			return x.cmdlineDifference(gd, wd)
		case initrdTagID:
			x.diff("initrd_sha384", gd, wd)
			return fmt.Sprintf("the initrd differs: the TD's has SHA-384 %s, the published initrd (sha256 %s) has %s", gd, str(p["initrd_sha256"]), wd)
		}
	case model.EvPlatformConfigFlags:
		x.diff("acpi_tables_sha384", gd, wd)
		return fmt.Sprintf("%s differ: QEMU generates them for the machine type, the vCPU count and the memory size; %s was measured with %s — the TD ran with another vCPU count, memory size or QEMU", x.describe(want), x.closest.Name, launchOf(p))
	case model.EvEFIHandoffTables2:
		return x.memoryDifference(got.digest)
	}
	x.diff(fmt.Sprintf("rtmr%d_event_sha384 (%s)", want.rtmr, model.EventType(want.typ)), gd, wd)
	return fmt.Sprintf("%s differs: SHA-384 %s in the TD's log, %s expected", x.describe(want), gd, wd)
}

// memoryDifference explains a TD HOB event that differs: it holds the
// memory map QEMU hands the TD, so the memory size is searched for.
func (x *explainer) memoryDifference(got []byte) string {
	p := x.closest.Params
	var mems []string
	for _, e := range x.entries {
		if m := str(e.Params["memory"]); m != "" && !slices.Contains(mems, m) {
			mems = append(mems, m)
		}
	}
	s := fmt.Sprintf("the TD HOB (the memory map QEMU hands the TD) differs: the TD's memory size is not %s's (%s); the release covers memory %s", x.closest.Name, str(p["memory"]), strings.Join(mems, ", "))
	sha := str(p["firmware_sha256"])
	fw, err := x.closest.Artifact(sha)
	if err != nil {
		return s + fmt.Sprintf("; the published firmware is not at hand to search the memory size (%v)", err)
	}
	md, err := model.ParseMetadata(fw)
	if err != nil {
		return s
	}
	if m, ok := model.SearchMemory(md, model.Digest(got)); ok {
		x.diff("memory", memString(m), mems...)
		return fmt.Sprintf("the TD ran with %s of memory (its TD HOB is that of %d bytes); %s is for %s, and the release covers memory %s", memString(m), m, x.closest.Name, str(p["memory"]), strings.Join(mems, ", "))
	}
	return s + "; no memory size from 128M to 4T gives its TD HOB (another QEMU, or another memory layout)"
}

// memString writes a memory size as QEMU's -m takes it.
func memString(m uint64) string {
	for _, u := range []struct {
		shift uint
		unit  string
	}{{40, "T"}, {30, "G"}, {20, "M"}} {
		if m%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%s", m>>u.shift, u.unit)
		}
	}
	return strconv.FormatUint(m, 10)
}

// cmdlineDifference explains a LoadOptions event that differs, with both
// command lines when the TD's is known.
func (x *explainer) cmdlineDifference(got, want string) string {
	p := x.closest.Params
	pub := str(p["cmdline"])
	initrd := str(p["initrd_sha256"]) != ""
	s := fmt.Sprintf("the kernel command line differs: the release's is %q (LoadOptions %q, SHA-384 %s); the TD's LoadOptions have SHA-384 %s", pub, model.LoadOptions(pub, initrd), short(want), short(got))
	if x.cmdline == nil {
		x.diff("cmdline", "LoadOptions SHA-384 "+got, pub)
		return s + "; the log holds only its digest: give the TD's /proc/cmdline with --cmdline to see it"
	}
	cands := tee.GuestCmdlines(*x.cmdline)
	for _, c := range slices.Backward(cands) { // without " initrd=initrd" first: the text to show
		for _, lo := range []string{c, model.LoadOptions(c, true)} {
			if d := model.LoadOptionsDigest(lo); d.String() == got {
				x.diff("cmdline", c, pub)
				return fmt.Sprintf("the kernel command line differs: the TD booted with %q, the release with %q (%s)", c, pub, tee.WordDiff(pub, c))
			}
		}
	}
	x.diff("cmdline", "LoadOptions SHA-384 "+got, pub)
	return s + fmt.Sprintf("; the --cmdline given, %q, does not hash to it either (tried as given and with and without \" initrd=initrd\")", cands[0])
}

func launchOf(p map[string]any) string {
	var s []string
	for _, k := range []string{"vcpus", "memory", "qemu_version", "acpi_machine"} {
		if v, ok := p[k]; ok {
			s = append(s, fmt.Sprintf("%s=%v", k, v))
		}
	}
	return strings.Join(s, ", ")
}

func printable(b []byte) string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) > 64 {
		b = b[:64]
	}
	return strings.ToValidUTF8(string(b), "?")
}

func str(v any) string { s, _ := v.(string); return s }

func short(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}
