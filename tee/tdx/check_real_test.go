package tdx

import (
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
	model "github.com/cocobuild/cocobuild/measure/tdx"
	"github.com/cocobuild/cocobuild/tee"
)

// goEventlogCCEL reads a file of go-eventlog's CCEL test data from the Go
// module cache (it is not copied into cocobuild): the event log and ACPI
// table of a real TD (Container-Optimized OS 113 on GCE). It fails under
// CI=true, and skips elsewhere, when the module is not downloaded.
func goEventlogCCEL(t *testing.T, name string) []byte {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/google/go-eventlog").Output()
	dir := strings.TrimSpace(string(out))
	if err == nil && dir != "" {
		b, err := os.ReadFile(filepath.Join(dir, "testdata", "eventlogs", "ccel", name))
		if err == nil {
			return b
		}
	}
	msg := "go-eventlog's test data is not in the Go module cache (go mod download github.com/google/go-eventlog): %v"
	if testenv.InCI() {
		t.Fatalf(msg, err)
	}
	t.Skipf(msg, err)
	return nil
}

// The RTMRs of go-eventlog's real CCEL, as its own test
// (ccel/replay_test.go, TestReplayAndExtract) states them.
const (
	cosRTMR0 = "3fa2f61f395b7f5feefb4ec2df61297f109ad8abcd6410c1b7df60f21f37b19297fc35e544039c7e1edece752afd17f6"
	cosRTMR1 = "f62dbc072bd5d3f3438b7b35c39a727f5aea2ffc2473f43723953f530daf62504f0a7944aa62c41a86e8a878c2b122c1"
	cosRTMR2 = "4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f11f381a6fbe7c1"
)

// TestCheckRealCCEL: a real TD's CCEL (GCE, COS 113, booted by GRUB)
// parses and replays to the RTMRs go-eventlog's own test gives for it; a
// quote whose RTMR1 or RTMR3 differs is refused by the replay, naming that
// register; the real 56-byte ACPI CCEL table given as the log is named.
func TestCheckRealCCEL(t *testing.T) {
	log := goEventlogCCEL(t, "cos-113-intel-tdx.bin")
	table := goEventlogCCEL(t, "cos-113-intel-tdx.table.bin")
	if err := (TEE{}).ParseEventLog(log); err != nil {
		t.Fatalf("the real CCEL does not parse: %v", err)
	}
	regs := func(r0, r1, r2, r3 string) [4]model.Register {
		var out [4]model.Register
		for i, h := range []string{r0, r1, r2, r3} {
			b, err := hex.DecodeString(h)
			if err != nil || len(b) != 48 {
				t.Fatalf("RTMR%d %q: %v", i, h, err)
			}
			out[i].Value = model.Digest(b)
		}
		return out
	}
	zero := strings.Repeat("00", 48)
	other := strings.Repeat("11", 48)
	for _, c := range []struct {
		name  string
		rtmrs [4]model.Register
		bad   string // the register named, "" for a log that replays
	}{
		{"its RTMRs", regs(cosRTMR0, cosRTMR1, cosRTMR2, zero), ""},
		{"another RTMR1", regs(cosRTMR0, other, cosRTMR2, zero), "RTMR1"},
		{"RTMR3 extended", regs(cosRTMR0, cosRTMR1, cosRTMR2, other), "RTMR3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw := quoteWith(t, model.Digest{}, c.rtmrs, nil)
			ev, _, err := TEE{}.ParseEvidence(raw)
			if err != nil {
				t.Fatal(err)
			}
			why := replayProblem(log, ev.(*Evidence).Quote)
			switch {
			case c.bad == "" && why != "":
				t.Errorf("the real CCEL with its own RTMRs: %s; want it to replay", why)
			case c.bad != "" && !strings.Contains(why, "does not replay to the quote's "+c.bad+" "):
				t.Errorf("replay problem %q: want the log refused for %s", why, c.bad)
			}
			for _, r := range []string{"RTMR0", "RTMR1", "RTMR2", "RTMR3"} {
				if r != c.bad && strings.Contains(why, r+" (its") {
					t.Errorf("replay problem %q names %s, which replays", why, r)
				}
			}
		})
	}
	err := TEE{}.ParseEventLog(table)
	if !errors.Is(err, tee.ErrUnreadable) || !strings.Contains(err.Error(), "/sys/firmware/acpi/tables/data/CCEL") || !strings.Contains(err.Error(), "ACPI CCEL table (56 bytes") {
		t.Errorf("the real ACPI CCEL table as the log: %v; want it named, and the data/CCEL path", err)
	}
}

// TestDescribeRealEvents: the events of a real TD's log (GCE, COS 113,
// booted by shim and GRUB) are named as the TCG names them, shim's
// EV_EFI_VARIABLE_AUTHORITY events by their variable (SbatLevel,
// MokListTrusted) rather than by their raw bytes.
func TestDescribeRealEvents(t *testing.T) {
	evs, _, err := parseLog(goEventlogCCEL(t, "cos-113-intel-tdx.bin"))
	if err != nil {
		t.Fatal(err)
	}
	var x explainer
	var authority []string
	for _, e := range evs {
		d := x.describe(e)
		if strings.Contains(d, "EventType(") || strings.HasPrefix(d, "0x") {
			t.Errorf("event of type %#x described as %q: want its TCG name", e.typ, d)
		}
		if e.typ == 0x800000e0 {
			authority = append(authority, d)
		}
	}
	if want := []string{"the UEFI variable SbatLevel (EV_EFI_VARIABLE_AUTHORITY)", "the UEFI variable MokListTrusted (EV_EFI_VARIABLE_AUTHORITY)"}; !slices.Equal(authority, want) {
		t.Errorf("the log's EV_EFI_VARIABLE_AUTHORITY events are described as %q, want %q", authority, want)
	}
}
