package tdx

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	tdxtest "github.com/google/go-tdx-guest/testing"
	"github.com/google/go-tdx-guest/testing/testdata"

	"github.com/cocobuild/cocobuild/internal/testenv"
	model "github.com/cocobuild/cocobuild/measure/tdx"
	"github.com/cocobuild/cocobuild/tee"
)

// acpiTables are ACPI blobs shaped like QEMU's (a table-loader that
// allocates etc/acpi/tables, then etc/acpi/rsdp); fill stands for what
// differs between vCPU counts.
func acpiTables(fill string) *model.ACPITables {
	loader := make([]byte, 2*128)
	for i, name := range []string{"etc/acpi/tables", "etc/acpi/rsdp"} {
		binary.LittleEndian.PutUint32(loader[i*128:], 1) // ALLOCATE
		copy(loader[i*128+4:], name)
	}
	return &model.ACPITables{TableLoader: loader, RSDP: []byte("RSD PTR " + fill), Tables: bytes.Repeat([]byte("DSDT"+fill), 64)}
}

type tdxInputs struct {
	fw, kernel, initrd []byte
	cmdline            string
}

func loadTDXInputs(t *testing.T) tdxInputs {
	t.Helper()
	return tdxInputs{fw: testenv.ReadVector(t, "inputs/debian-sid_OVMF.fd"), kernel: testenv.ReadVector(t, "inputs/vmlinuz-6.1.0-56-cloud-amd64"),
		initrd: testenv.ReadVector(t, "inputs/initrd-a.cpio"), cmdline: "console=ttyS0 root=/dev/vda1 ro"}
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// launch is what a TD ran: the model's result for it.
func launch(t *testing.T, in tdxInputs, edit func(*model.Options)) *model.Result {
	t.Helper()
	o := model.Options{Kernel: in.kernel, Initrd: in.initrd, Cmdline: in.cmdline, ACPI: acpiTables("vcpus=1"), QEMU: model.QEMUVersion{Major: 11, Minor: 1}}
	if edit != nil {
		edit(&o)
	}
	r, err := model.Measure(in.fw, o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tdxEntries are two published entries (1 and 2 vCPUs, told apart by their
// ACPI tables), with their expected event logs.
func tdxEntries(t *testing.T, in tdxInputs) []tee.CheckEntry {
	t.Helper()
	var out []tee.CheckEntry
	for _, v := range []string{"1", "2"} {
		r := launch(t, in, func(o *model.Options) { o.ACPI = acpiTables("vcpus=" + v) })
		rep := r.Report()
		values := map[string]string{"mrtd": rep.MRTD.String(), "rtmr0": rep.RTMR0.String(), "rtmr1": rep.RTMR1.String(), "rtmr2": rep.RTMR2.String(), "rtmr3": rep.RTMR3.String()}
		logPath := "measure/tdx/vcpus" + v + ".ccel"
		log := r.EventLog()
		fw := in.fw
		out = append(out, tee.CheckEntry{Name: "tdx/vcpus=" + v + ",memory=2G", Values: values,
			Params: map[string]any{"firmware_sha256": sha(in.fw), "kernel_sha256": sha(in.kernel), "initrd_sha256": sha(in.initrd), "cmdline": in.cmdline,
				"vcpus": float64(len(v)), "memory": "2G", "qemu_version": "11.1", "page_order": "single-pass", "tdvf_separator": "current", "eventlog": logPath},
			Artifact: func(s string) ([]byte, error) {
				if s == sha(fw) {
					return fw, nil
				}
				return nil, errors.New("not in the build output")
			},
			File: func(p string) ([]byte, error) {
				if p == logPath {
					return log, nil
				}
				return nil, errors.New("no such file")
			}})
	}
	return out
}

// quote is go-tdx-guest's real v4 quote with its body's MRTD and RTMRs
// replaced by those of r (its signature then no longer verifies).
func quote(t *testing.T, mrtd model.Digest, rtmrs [4]model.Register) []byte {
	return quoteWith(t, mrtd, rtmrs, nil)
}

func quoteWith(t *testing.T, mrtd model.Digest, rtmrs [4]model.Register, edit func(*pb.TDQuoteBody)) []byte {
	t.Helper()
	q, err := abi.QuoteToProto(testdata.RawQuote)
	if err != nil {
		t.Fatal(err)
	}
	q4 := q.(*pb.QuoteV4)
	q4.TdQuoteBody.MrTd = append([]byte(nil), mrtd[:]...)
	q4.TdQuoteBody.Rtmrs = nil
	for _, r := range rtmrs {
		q4.TdQuoteBody.Rtmrs = append(q4.TdQuoteBody.Rtmrs, append([]byte(nil), r.Value[:]...))
	}
	if edit != nil {
		edit(q4.TdQuoteBody)
	}
	raw, err := abi.QuoteToAbiBytes(q4)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// ccel is a model's event log as a TD reads it from the CCEL table: padded
// with 0xff.
func ccel(r *model.Result) []byte {
	return append(r.EventLog(), bytes.Repeat([]byte{0xff}, 256)...)
}

// withoutRTMR is r with the events of one register left out of its log.
func withoutRTMR(r *model.Result, rtmr int) *model.Result {
	c := *r
	c.Events = nil
	for _, e := range r.Events {
		if e.RTMR != rtmr {
			c.Events = append(c.Events, e)
		}
	}
	return &c
}

// rtmr0Event is the place (from 1) in RTMR0 of r's first event of type typ.
func rtmr0Event(r *model.Result, typ model.EventType) int {
	n := 0
	for _, e := range r.Events {
		if e.RTMR == 0 {
			n++
			if e.Type == typ {
				return n
			}
		}
	}
	return -1
}

func checkTDX(t *testing.T, raw, log []byte, cmdline *string, entries []tee.CheckEntry) *tee.CheckResult {
	t.Helper()
	ev, ok, err := TEE{}.ParseEvidence(raw)
	if err != nil || !ok {
		t.Fatalf("ParseEvidence: ok %v, err %v; want a TDX quote", ok, err)
	}
	res, err := TEE{}.Check(context.Background(), ev, tee.CheckInput{Entries: entries, EventLog: log, Cmdline: cmdline})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestCheckTDX: a quote and CCEL of a published launch match; each kind of
// difference is named: the page order and the firmware from MRTD, the
// command line (with both texts when the TD's is given), the kernel, the
// initrd, the ACPI tables (vCPUs), the boot and Secure Boot variables and
// the separator placement event by event, and a log that does not replay to the quote is refused as
// evidence.
func TestCheckTDX(t *testing.T) {
	in := loadTDXInputs(t)
	entries := tdxEntries(t, in)
	published := launch(t, in, nil)
	edited := in.cmdline + " debug"
	procCmdline, otherCmdline := edited+" initrd=initrd\n", in.cmdline+" quiet initrd=initrd\n"
	kernel := append([]byte(nil), in.kernel...)
	kernel[len(kernel)/2] ^= 1
	twoPass := launch(t, in, func(o *model.Options) { o.PageOrder = model.PageOrderTwoPass })
	rtmr3 := *published
	rtmr3.RTMR[3].Value = model.Digest(bytes.Repeat([]byte{9}, 48))
	// A boot order of Boot0001 then Boot0000, and Secure Boot enabled
	// (without keys): the firmware's variables, which RTMR0 holds.
	bootOrder := func(o *model.Options) { o.BootOrder = []byte{1, 0, 0, 0} }
	secureBoot := func(o *model.Options) { o.SecureBoot = &model.SecureBootVariables{SecureBoot: []byte{1}} }
	otherFW := launch(t, tdxInputs{fw: testenv.ReadVector(t, "inputs/debian-sid_OVMF.inteltdx.ms.fd"), kernel: in.kernel, initrd: in.initrd, cmdline: in.cmdline}, nil)
	for _, c := range []struct {
		name      string
		r         *model.Result
		log       *model.Result // nil: no event log
		cmdline   *string
		match     string
		explained bool
		reasons   []string
		absent    []string // no reason may have these
		diff      string   // a structured difference, parameter=got
	}{
		{name: "published", r: published, log: published, match: "tdx/vcpus=1,memory=2G"},
		{name: "published without log", r: published, match: "tdx/vcpus=1,memory=2G"},
		{name: "page order", r: twoPass, explained: true, diff: "page_order=two-pass", reasons: []string{"MRTD is that of the published firmware " + sha(in.fw)[:16] + "… added in the two-pass page order", "the release covers single-pass"}},
		{name: "firmware", r: otherFW, explained: true, reasons: []string{"neither page order of the published firmware " + sha(in.fw), "the TD ran another firmware"}},
		{name: "cmdline", r: launch(t, in, func(o *model.Options) { o.Cmdline = edited }), log: launch(t, in, func(o *model.Options) { o.Cmdline = edited }), explained: true,
			reasons: []string{`RTMR2 event 1: the kernel command line differs: the release's is "` + in.cmdline + `"`, "give the TD's /proc/cmdline with --cmdline"}},
		{name: "cmdline given", r: launch(t, in, func(o *model.Options) { o.Cmdline = edited }), log: launch(t, in, func(o *model.Options) { o.Cmdline = edited }), cmdline: &edited, explained: true, diff: "cmdline=" + edited,
			reasons: []string{`RTMR2 event 1: the kernel command line differs: the TD booted with "` + edited + `", the release with "` + in.cmdline + `" (+debug)`}},
		{name: "cmdline given as /proc/cmdline", r: launch(t, in, func(o *model.Options) { o.Cmdline = edited }), log: launch(t, in, func(o *model.Options) { o.Cmdline = edited }), cmdline: &procCmdline, explained: true,
			reasons: []string{`RTMR2 event 1: the kernel command line differs: the TD booted with "` + edited + `", the release with "` + in.cmdline + `" (+debug)`}},
		{name: "cmdline given, another", r: launch(t, in, func(o *model.Options) { o.Cmdline = edited }), log: launch(t, in, func(o *model.Options) { o.Cmdline = edited }), cmdline: &otherCmdline, explained: true,
			reasons: []string{`the --cmdline given, "` + otherCmdline[:len(otherCmdline)-1] + `", does not hash to it either`}},
		{name: "kernel", r: launch(t, in, func(o *model.Options) { o.Kernel = kernel }), log: launch(t, in, func(o *model.Options) { o.Kernel = kernel }), explained: true,
			reasons: []string{"RTMR1 event 1: the kernel differs: its Authenticode SHA-384 is", "for the published kernel (sha256 " + sha(in.kernel) + ")"}},
		{name: "initrd", r: launch(t, in, func(o *model.Options) { o.Initrd = testenv.ReadVector(t, "inputs/initrd-b.bin") }), log: launch(t, in, func(o *model.Options) { o.Initrd = testenv.ReadVector(t, "inputs/initrd-b.bin") }), explained: true,
			reasons: []string{"RTMR2 event 2: the initrd differs: the TD's has SHA-384", "the published initrd (sha256 " + sha(in.initrd) + ")"}},
		{name: "vcpus", r: launch(t, in, func(o *model.Options) { o.ACPI = acpiTables("vcpus=3") }), log: launch(t, in, func(o *model.Options) { o.ACPI = acpiTables("vcpus=3") }), explained: true,
			reasons: []string{"QEMU's ACPI tables (EV_PLATFORM_CONFIG_FLAGS \"ACPI DATA\") differ: QEMU generates them for the machine type, the vCPU count and the memory size", "the TD ran with another vCPU count, memory size or QEMU"}},
		{name: "memory", r: launch(t, in, func(o *model.Options) { o.Memory = 4 << 30 }), log: launch(t, in, func(o *model.Options) { o.Memory = 4 << 30 }), explained: true, diff: "memory=4G",
			reasons: []string{"RTMR0 event 1: the TD ran with 4G of memory (its TD HOB is that of 4294967296 bytes); tdx/vcpus=1,memory=2G is for 2G, and the release covers memory 2G"}},
		{name: "vcpus without log", r: launch(t, in, func(o *model.Options) { o.ACPI = acpiTables("vcpus=3") }),
			reasons: []string{"RTMR0 differs from tdx/vcpus=1,memory=2G's; it covers the firmware's configuration", "--eventlog"}},
		{name: "boot variable", r: launch(t, in, bootOrder), log: launch(t, in, bootOrder), explained: true,
			reasons: []string{fmt.Sprintf("RTMR0 event %d: the UEFI variable BootOrder (EV_EFI_VARIABLE_BOOT) differs: SHA-384 ", rtmr0Event(published, model.EvEFIVariableBoot))}, absent: []string{"RTMR1", "RTMR2"}},
		{name: "secure boot variable", r: launch(t, in, secureBoot), log: launch(t, in, secureBoot), explained: true,
			reasons: []string{fmt.Sprintf("RTMR0 event %d: the UEFI variable SecureBoot (EV_EFI_VARIABLE_DRIVER_CONFIG) differs: SHA-384 ", rtmr0Event(published, model.EvEFIVariableDriverConfig))}, absent: []string{"RTMR1", "RTMR2"}},
		{name: "separator", r: launch(t, in, func(o *model.Options) { o.Separator = model.SeparatorLegacy }), log: launch(t, in, func(o *model.Options) { o.Separator = model.SeparatorLegacy }), explained: true, diff: "tdvf_separator=legacy",
			reasons: []string{"the TD's firmware logs the ReadyToBoot separator in RTMR0 (legacy TDVF", "the release expects it in RTMR1"}},
		{name: "log does not replay", r: published, log: launch(t, in, func(o *model.Options) { o.Cmdline = edited }), explained: true,
			reasons: []string{"the event log does not replay to the quote's RTMR2", "cannot explain anything"}},
		{name: "log without its RTMR2 events", r: published, log: withoutRTMR(published, 2), explained: true,
			reasons: []string{"the event log does not replay to the quote's RTMR2 (its 0 events replay to", "cannot explain anything"}, absent: []string{"the TD's log ends"}},
		{name: "RTMR3 extended, expected log", r: &rtmr3, log: published, explained: true,
			reasons: []string{"the event log does not replay to the quote's RTMR3 (its 0 events replay to 0000", "cannot explain anything"}, absent: []string{"events are the expected ones"}},
		{name: "log of another TD", r: launch(t, in, func(o *model.Options) { o.Cmdline = edited }), log: published, explained: true,
			reasons: []string{"the event log does not replay to the quote's RTMR2"}, absent: []string{"--eventlog"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var log []byte
			if c.log != nil {
				log = ccel(c.log)
			}
			res := checkTDX(t, quote(t, c.r.MRTD, c.r.RTMR), log, c.cmdline, entries)
			if got, want := res.Match, c.match != ""; got != want {
				t.Fatalf("match = %v, want %v; reasons %q", got, want, res.Reasons)
			}
			if c.match != "" && res.Entry != c.match {
				t.Errorf("matched %q, want %q", res.Entry, c.match)
			}
			if res.Explained != c.explained {
				t.Errorf("explained = %v, want %v; reasons %q", res.Explained, c.explained, res.Reasons)
			}
			all := strings.Join(res.Reasons, "\n")
			for _, r := range c.reasons {
				if !strings.Contains(all, r) {
					t.Errorf("reasons %q: want one with %q", res.Reasons, r)
				}
			}
			for _, r := range c.absent {
				if strings.Contains(all, r) {
					t.Errorf("reasons %q: want none with %q", res.Reasons, r)
				}
			}
			if c.diff != "" {
				var got []string
				for _, d := range res.Differences {
					got = append(got, d.Parameter+"="+d.Got)
				}
				if !slices.Contains(got, c.diff) {
					t.Errorf("differences %q: want %q", got, c.diff)
				}
			}
		})
	}
}

// TestCheckTDXClosestByEvents: with a log, the closest entry is the one
// whose expected log has the most events equal to the TD's, and every event
// that differs is named: a TD of 2 vCPUs and 4G is compared with the
// 2-vCPU entry (its ACPI tables are equal) and told its memory; one of 3
// vCPUs and 4G is told both its ACPI tables and its memory.
func TestCheckTDXClosestByEvents(t *testing.T) {
	in := loadTDXInputs(t)
	entries := tdxEntries(t, in)
	for _, c := range []struct {
		name    string
		vcpus   string
		entry   string
		reasons []string
		absent  []string
	}{
		{"2 vcpus 4G", "2", "tdx/vcpus=2,memory=2G", []string{"RTMR0 event 1: the TD ran with 4G of memory"}, []string{"ACPI"}},
		{"3 vcpus 4G", "3", "", []string{"RTMR0 event 1: the TD ran with 4G of memory", "QEMU's ACPI tables (EV_PLATFORM_CONFIG_FLAGS \"ACPI DATA\") differ"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := launch(t, in, func(o *model.Options) { o.Memory = 4 << 30; o.ACPI = acpiTables("vcpus=" + c.vcpus) })
			res := checkTDX(t, quote(t, r.MRTD, r.RTMR), ccel(r), nil, entries)
			if res.Match || !res.Explained {
				t.Fatalf("match %v, explained %v; want an explained mismatch", res.Match, res.Explained)
			}
			if c.entry != "" && res.Entry != c.entry {
				t.Errorf("closest entry %q, want %q", res.Entry, c.entry)
			}
			all := strings.Join(res.Reasons, "\n")
			for _, w := range c.reasons {
				if !strings.Contains(all, w) {
					t.Errorf("reasons %q: want one with %q", res.Reasons, w)
				}
			}
			for _, w := range c.absent {
				if strings.Contains(all, w) {
					t.Errorf("reasons %q: want none with %q", res.Reasons, w)
				}
			}
		})
	}
}

// TestCheckTDXRealQuote: go-tdx-guest's real v4 quote (Sapphire Rapids)
// parses, and verifies offline (PCK chain in the quote, Intel's root built
// in) at a time its certificates were valid; with a changed MRTD it fails.
func TestCheckTDXRealQuote(t *testing.T) {
	ev, ok, err := TEE{}.ParseEvidence(testdata.RawQuote)
	if err != nil || !ok {
		t.Fatalf("ParseEvidence: ok %v, err %v", ok, err)
	}
	e := ev.(*Evidence)
	f := quoteFields(e.Quote)
	if f[0].Name != "mr_td" || f[0].Got != hex.EncodeToString(testdata.RawQuote[48+0x88:48+0x88+48]) {
		t.Errorf("mr_td field %+v: want the quote body's bytes at 0x88", f[0])
	}
	at := time.Date(2023, time.July, 1, 1, 0, 0, 0, time.UTC)
	notes, err := checkSignature(e, &tee.SignatureCheck{Now: at})
	if err != nil {
		t.Fatalf("the real quote does not verify offline: %v", err)
	}
	if !strings.Contains(strings.Join(notes, "\n"), "offline") {
		t.Errorf("notes %q: want the offline check named", notes)
	}
	bad := append([]byte(nil), testdata.RawQuote...)
	bad[48+0x88] ^= 1
	evBad, _, err := TEE{}.ParseEvidence(bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checkSignature(evBad.(*Evidence), &tee.SignatureCheck{Now: at}); err == nil {
		t.Error("a quote with a changed MRTD verified; want a signature error")
	}
}

// TestParseEvidenceTDX: what is and is not a TDX quote.
func TestParseEvidenceTDX(t *testing.T) {
	v5 := append([]byte(nil), testdata.RawQuote...)
	v5[0] = 5
	for _, c := range []struct {
		name   string
		b      []byte
		ok     bool
		hasErr bool
	}{
		{"real quote", testdata.RawQuote, true, false},
		{"v5", v5, true, true},
		{"truncated", testdata.RawQuote[:600], true, true},
		{"snp report", append([]byte{2, 0, 0, 0}, make([]byte, 1180)...), false, false},
		{"sgx quote", append([]byte{3, 0, 2, 0, 0, 0, 0, 0}, make([]byte, 1000)...), false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, ok, err := TEE{}.ParseEvidence(c.b)
			if ok != c.ok || (err != nil) != c.hasErr {
				t.Errorf("ParseEvidence: ok %v, err %v; want ok %v, error %v", ok, err, c.ok, c.hasErr)
			}
		})
	}
}

// FuzzParseEvidence: no input makes the quote parser panic, and a parsed
// quote re-encodes.
func FuzzParseEvidence(f *testing.F) {
	f.Add(testdata.RawQuote)
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, ok, err := TEE{}.ParseEvidence(b)
		if !ok || err != nil {
			return
		}
		if _, err := abi.QuoteToAbiBytes(ev.(*Evidence).Quote); err != nil {
			t.Fatalf("a parsed quote does not re-encode: %v", err)
		}
	})
}

// FuzzParseLog: no event log makes the CCEL reader panic.
func FuzzParseLog(f *testing.F) {
	f.Add(model.EventLog([]model.Event{{RTMR: 2, Type: model.EvEventTag, Data: []byte("x")}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, _, err := parseLog(b)
		if err != nil {
			return
		}
		for _, e := range evs {
			if e.rtmr < 0 || e.rtmr > 3 || len(e.digest) != 48 {
				t.Fatalf("parsed event %+v: want RTMR 0-3 and a SHA-384 digest", e)
			}
		}
	})
}

// TestCheckTDXDebug: a debuggable TD (TD attributes bit 0) matches no
// entry, whatever its registers.
func TestCheckTDXDebug(t *testing.T) {
	in := loadTDXInputs(t)
	r := launch(t, in, nil)
	raw := quoteWith(t, r.MRTD, r.RTMR, func(b *pb.TDQuoteBody) { b.TdAttributes = append([]byte{1}, b.TdAttributes[1:]...) })
	res := checkTDX(t, raw, ccel(r), nil, tdxEntries(t, in))
	if res.Match || !res.Explained || !strings.Contains(strings.Join(res.Reasons, "\n"), "DEBUG (bit 0) set") {
		t.Errorf("a debuggable TD: match %v, explained %v, reasons %q; want a mismatch naming DEBUG", res.Match, res.Explained, res.Reasons)
	}
}

// TestCheckTDXCollateralOffline: with Intel's collateral as files (the TCB
// info, QE identity and their signing chain, the PCK and root CRLs that
// go-tdx-guest ships beside its real quote), verify checks the TCB status
// offline: go-tdx-guest's sample TCB info has newer SVNs than its sample
// quote (its own tests say so), so the quote that verifies without
// collateral is refused with it; collateral past its validity is expired;
// half the collateral is refused.
func TestCheckTDXCollateralOffline(t *testing.T) {
	ev, _, err := TEE{}.ParseEvidence(testdata.RawQuote)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := url.QueryUnescape(tdxtest.TcbInfoHeader["Tcb-Info-Issuer-Chain"][0])
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"tcbinfo.json": testdata.TcbInfoBody, "qeidentity.json": testdata.QeIdentityBody,
		"tcb-signing.pem": []byte(chain), "pck.crl": testdata.PckCrlBody, "root.crl": testdata.RootCrlBody}
	at := time.Date(2023, time.July, 1, 1, 0, 0, 0, time.UTC)
	if _, err := checkSignature(ev.(*Evidence), &tee.SignatureCheck{Now: at}); err != nil {
		t.Fatalf("without collateral: %v", err)
	}
	notes, err := checkSignature(ev.(*Evidence), &tee.SignatureCheck{Files: files, Now: at})
	if err == nil || !strings.Contains(err.Error(), "no matching TCB level found") {
		t.Errorf("with the sample collateral: %v, want the TCB status refused (no matching TCB level)", err)
	}
	all := strings.Join(notes, "\n")
	for _, w := range []string{"tcbinfo.json: TCB info", "qeidentity.json: QE identity", "root.crl: root CA CRL", `pck.crl: PCK CRL of "Intel SGX PCK Platform CA"`, "tcb-signing.pem: the chain that signs"} {
		if !strings.Contains(all, w) {
			t.Errorf("notes %q: want %q", notes, w)
		}
	}
	if _, err := checkSignature(ev.(*Evidence), &tee.SignatureCheck{Files: files, Now: at.AddDate(5, 0, 0)}); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("collateral checked five years later: %v, want it expired", err)
	}
	delete(files, "qeidentity.json")
	if _, err := checkSignature(ev.(*Evidence), &tee.SignatureCheck{Files: files, Now: at}); err == nil || !strings.Contains(err.Error(), "QE identity") {
		t.Errorf("collateral without the QE identity: %v, want an error naming it", err)
	}
}

// TestCheckTDXPublishedFields: XFAM (which a measure block publishes with
// its xfam attribute), TD attributes, MRCONFIGID, MROWNER and
// MROWNERCONFIG are compared when an entry publishes them: equal, the
// quote matches; one that differs is named with both values.
func TestCheckTDXPublishedFields(t *testing.T) {
	in := loadTDXInputs(t)
	r := launch(t, in, nil)
	configID := strings.Repeat("c1", 48)
	published := map[string]string{"xfam": "e71a060000000000", "td_attributes": "0000001000000000", "mr_config_id": configID,
		"mr_owner": strings.Repeat("00", 48), "mr_owner_config": strings.Repeat("00", 48)}
	entries := tdxEntries(t, in)
	for _, e := range entries {
		e.Values["xfam"] = published["xfam"] // as the measure step publishes it
		for _, k := range []string{"td_attributes", "mr_config_id", "mr_owner", "mr_owner_config"} {
			e.Params[k] = "0x" + published[k]
		}
	}
	launched := func(b *pb.TDQuoteBody) {
		b.Xfam, b.TdAttributes = []byte{0xe7, 0x1a, 6, 0, 0, 0, 0, 0}, []byte{0, 0, 0, 0x10, 0, 0, 0, 0}
		b.MrConfigId = bytes.Repeat([]byte{0xc1}, 48)
	}
	for _, c := range []struct {
		name   string
		edit   func(*pb.TDQuoteBody)
		field  string // the field that differs, "" for a match
		reason string
	}{
		{"as published", nil, "", ""},
		{"xfam", func(b *pb.TDQuoteBody) { b.Xfam[2] = 4 }, "xfam", "xfam is e71a040000000000, the release publishes e71a060000000000"},
		{"td attributes", func(b *pb.TDQuoteBody) { b.TdAttributes[3] = 0 }, "td_attributes", "td_attributes is 0000000000000000, the release publishes 0000001000000000"},
		{"mr_config_id", func(b *pb.TDQuoteBody) { b.MrConfigId[47] = 0 }, "mr_config_id", "mr_config_id is " + configID[:94] + "00, the release publishes " + configID},
		{"mr_owner", func(b *pb.TDQuoteBody) { b.MrOwner[0] = 1 }, "mr_owner", "mr_owner is 01"},
		{"mr_owner_config", func(b *pb.TDQuoteBody) { b.MrOwnerConfig[0] = 1 }, "mr_owner_config", "mr_owner_config is 01"},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw := quoteWith(t, r.MRTD, r.RTMR, func(b *pb.TDQuoteBody) {
				launched(b)
				if c.edit != nil {
					c.edit(b)
				}
			})
			res := checkTDX(t, raw, ccel(r), nil, entries)
			if res.Match != (c.field == "") {
				t.Fatalf("match = %v, want %v; reasons %q", res.Match, c.field == "", res.Reasons)
			}
			for _, f := range res.Fields {
				if _, pub := published[f.Name]; !pub {
					continue
				}
				if want := map[bool]string{true: tee.FieldDiffers, false: tee.FieldMatch}[f.Name == c.field]; f.Status != want {
					t.Errorf("field %s: %s, want %s", f.Name, f.Status, want)
				}
			}
			if c.field != "" && (!res.Explained || !slices.ContainsFunc(res.Reasons, func(r string) bool { return strings.Contains(r, c.reason) })) {
				t.Errorf("explained %v, reasons %q: want one with %q", res.Explained, res.Reasons, c.reason)
			}
		})
	}
}
