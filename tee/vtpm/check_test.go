package vtpm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cocobuild/cocobuild/internal/testenv"
	model "github.com/cocobuild/cocobuild/measure/pcr"
	"github.com/cocobuild/cocobuild/tee"
)

// swtpmTool is a running swtpm (TCP, as tpm2-tss's swtpm TCTI talks to it)
// and the tpm2-tools commands run against it.
type swtpmTool struct {
	t    *testing.T
	dir  string
	tcti string
}

// freePorts finds a free TCP port on the loopback whose successor is free
// too (the swtpm TCTI takes the control channel at port+1).
func freePorts(t *testing.T) int {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1))
		l.Close()
		if err == nil {
			l2.Close()
			return p
		}
	}
	t.Fatal("no two consecutive free ports on the loopback")
	return 0
}

func startSwtpm(t *testing.T) *swtpmTool {
	swtpm := testenv.Tool(t, "swtpm", "swtpm")
	testenv.Tool(t, "tpm2_quote", "tpm2-tools")
	dir := t.TempDir()
	p := freePorts(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, swtpm, "socket", "--tpm2", "--tpmstate", "dir="+dir,
		"--server", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", p),
		"--ctrl", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", p+1),
		"--flags", "not-need-init,startup-clear")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			c.Close()
			break
		}
		if i > 100 {
			t.Fatalf("swtpm does not listen: %v (%s)", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &swtpmTool{t: t, dir: dir, tcti: fmt.Sprintf("swtpm:host=127.0.0.1,port=%d", p)}
}

// run runs a tpm2-tools command in the TPM's directory; transient objects
// are flushed after it (no resource manager runs).
func (s *swtpmTool) run(args ...string) {
	s.t.Helper()
	for _, a := range [][]string{args, {"tpm2_flushcontext", "-t"}, {"tpm2_flushcontext", "-s"}} {
		cmd := exec.Command(a[0], a[1:]...)
		cmd.Dir, cmd.Env = s.dir, append(os.Environ(), "TPM2TOOLS_TCTI="+s.tcti)
		if out, err := cmd.CombinedOutput(); err != nil {
			s.t.Fatalf("%s: %v\n%s", strings.Join(a, " "), err, out)
		}
	}
}

func (s *swtpmTool) read(name string) []byte {
	b, err := os.ReadFile(filepath.Join(s.dir, name))
	if err != nil {
		s.t.Fatal(err)
	}
	return b
}

// TestCheckSwtpmQuote: a real TPM (swtpm) extends PCRs 4, 7, 9 and 11 with
// events of the model (PCR 11: the UKI events measure/pcr computes for
// some sections); tpm2_quote quotes them, writing the TPMS_ATTEST and the
// PCR values in both of its formats. Check parses them, finds the values
// hash to the quote's digest and matches the entry whose PCRs
// model.Replay computed; it explains an entry with another PCR 11 and
// refuses values that are not the quoted ones.
func TestCheckSwtpmQuote(t *testing.T) {
	s := startSwtpm(t)
	bank, _ := model.ParseBank("sha256")
	secs := []model.Section{{Name: ".linux", Data: []byte("kernel")}, {Name: ".osrel", Data: []byte("ID=test\n")},
		{Name: ".cmdline", Data: []byte("console=ttyS0")}, {Name: ".initrd", Data: []byte("initrd")}}
	evs11, err := model.UKIEvents(bank, secs)
	if err != nil {
		t.Fatal(err)
	}
	events := map[int][]model.Event{11: evs11}
	for _, p := range []int{4, 7, 9} {
		for i := range p%3 + 1 {
			d := sha256.Sum256([]byte(fmt.Sprintf("pcr %d event %d", p, i)))
			events[p] = append(events[p], model.Event{PCR: p, Digest: d[:]})
		}
	}
	values := map[string]string{}
	for p, evs := range events {
		for _, e := range evs {
			s.run("tpm2_pcrextend", fmt.Sprintf("%d:sha256=%x", p, e.Digest))
		}
		values[fmt.Sprintf("pcr%d", p)] = hex.EncodeToString(model.Replay(bank, evs))
	}
	s.run("tpm2_createek", "-c", "ek.ctx", "-G", "ecc", "-u", "ek.pub")
	s.run("tpm2_createak", "-C", "ek.ctx", "-c", "ak.ctx", "-G", "ecc", "-g", "sha256", "-s", "ecdsa", "-u", "ak.pub")
	s.run("tpm2_quote", "-c", "ak.ctx", "-l", "sha256:4,7,9,11", "-q", "c0c0b11d", "-g", "sha256", "-m", "q.msg", "-s", "q.sig", "-o", "pcrs.bin")
	s.run("tpm2_quote", "-c", "ak.ctx", "-l", "sha256:4,7,9,11", "-q", "c0c0b11d", "-g", "sha256", "-m", "q2.msg", "-s", "q2.sig", "-o", "values.bin", "-F", "values")

	ev, ok, err := TEE{}.ParseEvidence(s.read("q.msg"))
	if !ok || err != nil {
		t.Fatalf("ParseEvidence(tpm2_quote -m) = %v, %v", ok, err)
	}
	if got, want := ev.Describe(), "TPM 2.0 quote (TPMS_ATTEST) of PCRs sha256:4,7,9,11"; got != want {
		t.Errorf("Describe() = %q, want %q", got, want)
	}
	other := map[string]string{}
	for k, v := range values {
		other[k] = v
	}
	phased := model.Replay(bank, append(evs11, model.PhaseEvents(bank, "enter-initrd")...))
	other["pcr11"] = hex.EncodeToString(phased)
	entries := []tee.CheckEntry{{Name: "phase=enter-initrd", Values: other}, {Name: "phase=", Values: values}}
	for _, c := range []struct{ msg, pcrs string }{{"q.msg", "pcrs.bin"}, {"q2.msg", "values.bin"}} {
		ev, _, _ := TEE{}.ParseEvidence(s.read(c.msg))
		res, err := TEE{}.Check(context.Background(), ev, tee.CheckInput{Entries: entries, PCRValues: s.read(c.pcrs)})
		if err != nil {
			t.Fatalf("%s: %v", c.pcrs, err)
		}
		if !res.Match || res.Entry != "phase=" {
			t.Errorf("%s: match %v with %q (%q), want a match with phase=", c.pcrs, res.Match, res.Entry, res.Reasons)
		}
		if got := res.Evidence[3]; got.Name != "sha256:11" || got.Got != values["pcr11"] {
			t.Errorf("%s: evidence field %s = %s, want sha256:11 = %s", c.pcrs, got.Name, got.Got, values["pcr11"])
		}
		// Only the entry with another PCR 11: the closest, explained.
		res, err = TEE{}.Check(context.Background(), ev, tee.CheckInput{Entries: entries[:1], PCRValues: s.read(c.pcrs)})
		if err != nil {
			t.Fatal(err)
		}
		if res.Match || !res.Explained || len(res.Reasons) != 1 || !strings.HasPrefix(res.Reasons[0], "PCR 11 differs") {
			t.Errorf("%s, another PCR 11: match %v, reasons %q; want one reason, PCR 11", c.pcrs, res.Match, res.Reasons)
		}
	}
	// Values that are not the quoted ones.
	bad := s.read("values.bin")
	bad[len(bad)-1] ^= 1
	res, err := TEE{}.Check(context.Background(), ev, tee.CheckInput{Entries: entries, PCRValues: bad})
	if err != nil {
		t.Fatal(err)
	}
	if res.Match || len(res.Reasons) != 1 || !strings.Contains(res.Reasons[0], "not the values the TPM quoted") {
		t.Errorf("changed PCR values: match %v, reasons %q; want the digest refused", res.Match, res.Reasons)
	}
	// Unreadable input.
	if _, ok, _ := (TEE{}).ParseEvidence(s.read("q.sig")); ok {
		t.Error("the signature file was taken for a quote")
	}
	msg := s.read("q.msg")
	for _, b := range [][]byte{msg[:len(msg)-1], append(bytes.Clone(msg), 0)} {
		if _, ok, err := (TEE{}).ParseEvidence(b); !ok || !errors.Is(err, tee.ErrUnreadable) {
			t.Errorf("a quote of %d bytes: ok %v, err %v; want ok and unreadable", len(b), ok, err)
		}
	}
	if _, err := (TEE{}).Check(context.Background(), ev, tee.CheckInput{Entries: entries, PCRValues: s.read("pcrs.bin")[:600]}); !errors.Is(err, tee.ErrUnreadable) {
		t.Errorf("a truncated PCR values file: %v, want unreadable", err)
	}
	if _, err := (TEE{}).Check(context.Background(), ev, tee.CheckInput{Entries: entries}); err == nil || !strings.Contains(err.Error(), "--pcrs") {
		t.Errorf("no PCR values: %v, want an error naming --pcrs", err)
	}
}
