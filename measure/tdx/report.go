package tdx

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Report is the JSON form of a Result: lowercase hex, registers that cannot
// be computed left out (NotComputable says why), every variant choice
// spelled out. The CLI prints it and the manifest embeds it.
type Report struct {
	MRTD          Digest            `json:"mrtd"`
	RTMR0         *Digest           `json:"rtmr0,omitempty"`
	RTMR1         *Digest           `json:"rtmr1,omitempty"`
	RTMR2         *Digest           `json:"rtmr2,omitempty"`
	RTMR3         *Digest           `json:"rtmr3,omitempty"`
	NotComputable map[string]string `json:"not_computable,omitempty"`
	Events        []Event           `json:"events"`
	Variant       Variant           `json:"variant"`
	Kernel        *KernelReport     `json:"kernel,omitempty"`
}

// KernelReport describes the kernel image TDVF measures.
type KernelReport struct {
	AuthenticodeSHA384 Digest        `json:"authenticode_sha384"`
	AuthenticodeSHA256 HexBytes      `json:"authenticode_sha256"`
	PatchedHeader      *KernelHeader `json:"qemu_patched_header,omitempty"`
}

// Report returns the JSON form of r.
func (r *Result) Report() Report {
	rep := Report{MRTD: r.MRTD, Events: r.Events, Variant: r.Variant}
	if rep.Events == nil {
		rep.Events = []Event{}
	}
	slots := [4]**Digest{&rep.RTMR0, &rep.RTMR1, &rep.RTMR2, &rep.RTMR3}
	for i, reg := range r.RTMR {
		if !reg.Computable {
			if rep.NotComputable == nil {
				rep.NotComputable = map[string]string{}
			}
			rep.NotComputable[rtmrName(i)] = reg.Reason
			continue
		}
		v := reg.Value
		*slots[i] = &v
	}
	if r.KernelAuthenticodeSHA256 != nil {
		rep.Kernel = &KernelReport{
			AuthenticodeSHA384: r.KernelAuthenticodeSHA384,
			AuthenticodeSHA256: r.KernelAuthenticodeSHA256,
			PatchedHeader:      r.KernelHeader,
		}
	}
	return rep
}

func rtmrName(i int) string { return "rtmr" + string(rune('0'+i)) }

// MarshalJSON adds the event log's MR index to the event's fields.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event // drops the method, keeps the tags
	return json.Marshal(struct {
		MRIndex uint32 `json:"mr_index"`
		plain
	}{e.MRIndex(), plain(e)})
}

// Compare checks reported measurements (from a TD report or quote: MRTD and
// RTMR0-3, 48 bytes each) against the expected ones. Registers that could not
// be computed are not compared. The error names every register that differs.
func (r *Result) Compare(mrtd []byte, rtmrs [][]byte) error {
	if len(rtmrs) != len(r.RTMR) {
		return fmt.Errorf("got %d RTMRs, want %d", len(rtmrs), len(r.RTMR))
	}
	var bad []string
	if !bytes.Equal(mrtd, r.MRTD[:]) {
		bad = append(bad, fmt.Sprintf("mrtd is %x, expected %s", mrtd, r.MRTD))
	}
	for i, reg := range r.RTMR {
		if reg.Computable && !bytes.Equal(rtmrs[i], reg.Value[:]) {
			bad = append(bad, fmt.Sprintf("%s is %x, expected %s", rtmrName(i), rtmrs[i], reg.Value))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("measurements differ (check the variant: %+v): %s", r.Variant, strings.Join(bad, "; "))
	}
	return nil
}
