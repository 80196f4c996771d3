package tdx

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// directBootCase is one RTMR1 variant of a direct-boot vector.
type directBootCase struct {
	qemu      QEMUVersion
	sep       Separator
	rtmr1Key  string
	eventsKey string // "" when the vector lists no per-event digests for the variant
}

var directBootCases = []directBootCase{
	{QEMUVersion{10, 2, 0}, SeparatorCurrent, "rtmr1_qemu_ge_10_2_unpatched_kernel", "rtmr1_events_qemu_ge_10_2"},
	{QEMUVersion{9, 2, 0}, SeparatorCurrent, "rtmr1_qemu_lt_10_2_patched_kernel", "rtmr1_events_qemu_lt_10_2"},
	{QEMUVersion{8, 2, 2}, SeparatorLegacy, "rtmr1_qemu_lt_10_2_patched_kernel_legacy_tdvf_separator_in_rtmr0", ""},
	{QEMUVersion{10, 2, 0}, SeparatorLegacy, "rtmr1_qemu_ge_10_2_unpatched_kernel_legacy_tdvf_separator_in_rtmr0", ""},
}

// directBootOptions builds the options of a direct-boot vector.
func directBootOptions(t *testing.T, v vector) Options {
	t.Helper()
	o := Options{Cmdline: str(t, v.Params, "cmdline_as_passed_to_qemu_append")}
	decode(t, v.Params, "guest_memory_bytes", &o.Memory)
	acpi, err := strconv.ParseUint(str(t, v.Params, "acpi_data_size_assumed"), 0, 64)
	if err != nil {
		t.Fatalf("acpi_data_size_assumed: %v", err)
	}
	o.ACPIDataSize = acpi
	var initrd *string
	decode(t, v.Params, "initrd", &initrd)
	for _, in := range v.Inputs {
		switch {
		case in.File == "vmlinuz-6.1.0-56-cloud-amd64":
			o.Kernel = testenv.ReadVector(t, in.Path)
		case initrd != nil && in.File == *initrd:
			o.Initrd = testenv.ReadVector(t, in.Path)
		}
	}
	if o.Kernel == nil || (initrd != nil && o.Initrd == nil) {
		t.Fatalf("vector %s: kernel or initrd input missing", v.ID)
	}
	return o
}

func TestDirectBootVectors(t *testing.T) {
	fw := testenv.ReadVector(t, "inputs/debian12_OVMF.fd")
	for _, v := range vectorsOfKind(t, "RTMR1+RTMR2") {
		t.Run(v.ID, func(t *testing.T) {
			base := directBootOptions(t, v)
			for _, c := range directBootCases {
				t.Run(fmt.Sprintf("qemu-%v-%s", c.qemu, c.sep), func(t *testing.T) {
					o := base
					o.QEMU, o.Separator = c.qemu, c.sep
					res, err := Measure(fw, o)
					if err != nil {
						t.Fatalf("Measure: %v", err)
					}
					if got, want := res.RTMR[1].Value.String(), str(t, v.Expected, c.rtmr1Key); got != want {
						t.Errorf("RTMR1 = %s, want %s (%s)", got, want, c.rtmr1Key)
					}
					if got, want := res.RTMR[2].Value.String(), str(t, v.Expected, "rtmr2_linux_ge_6_9_efistub"); got != want {
						t.Errorf("RTMR2 = %s, want %s", got, want)
					}
					if got := res.RTMR[3]; !got.Computable || got.Value != (Digest{}) {
						t.Errorf("RTMR3 = %+v, want computable zero", got)
					}
					if c.eventsKey != "" {
						var want []string
						decode(t, v.Expected, c.eventsKey, &want)
						checkEventDigests(t, res, 1, want)
					}
					var want2 []string
					decode(t, v.Expected, "rtmr2_events", &want2)
					checkEventDigests(t, res, 2, want2)

					patched := c.qemu.PatchesKernelHeader()
					key := "kernel_authenticode_sha384_unpatched"
					if patched {
						key = "kernel_authenticode_sha384_qemu_patched"
						if got, want := fmt.Sprintf("%x", res.KernelAuthenticodeSHA256), str(t, v.Expected, "kernel_authenticode_sha256_qemu_patched"); got != want {
							t.Errorf("patched kernel Authenticode SHA-256 = %s, want %s", got, want)
						}
						checkHeader(t, res.KernelHeader, v)
					}
					if got, want := res.KernelAuthenticodeSHA384.String(), str(t, v.Expected, key); got != want {
						t.Errorf("kernel Authenticode SHA-384 = %s, want %s (%s)", got, want, key)
					}
					if res.Variant.KernelHeaderPatched != patched || res.Variant.TDVFSeparator != c.sep || res.Variant.QEMUVersion != c.qemu {
						t.Errorf("variant = %+v, want patched=%v separator=%s qemu=%v", res.Variant, patched, c.sep, c.qemu)
					}
				})
			}
		})
	}
}

// TestNoKernelSHA256 checks that leaving out the kernel's SHA-256 changes
// nothing but the SHA-256 itself: the registers stay the vector's.
func TestNoKernelSHA256(t *testing.T) {
	fw := testenv.ReadVector(t, "inputs/debian12_OVMF.fd")
	var v vector
	for _, v = range vectorsOfKind(t, "RTMR1+RTMR2") {
		if directBootOptions(t, v).Initrd != nil {
			break // one with an initrd, whose digest runs beside the kernel's
		}
	}
	for _, c := range directBootCases[:2] {
		t.Run(fmt.Sprintf("%s/qemu-%v", v.ID, c.qemu), func(t *testing.T) {
			o := directBootOptions(t, v)
			o.QEMU, o.Separator = c.qemu, c.sep
			full, err := Measure(fw, o)
			if err != nil {
				t.Fatalf("Measure: %v", err)
			}
			o.NoKernelSHA256 = true
			lean, err := Measure(fw, o)
			if err != nil {
				t.Fatalf("Measure with NoKernelSHA256: %v", err)
			}
			if lean.KernelAuthenticodeSHA256 != nil || lean.Report().Kernel != nil {
				t.Errorf("NoKernelSHA256: KernelAuthenticodeSHA256 = %x, Report().Kernel = %+v; want neither", lean.KernelAuthenticodeSHA256, lean.Report().Kernel)
			}
			if full.KernelAuthenticodeSHA256 == nil {
				t.Errorf("without NoKernelSHA256 the kernel's SHA-256 is missing")
			}
			if got, want := lean.RTMR[1].Value.String(), str(t, v.Expected, c.rtmr1Key); got != want {
				t.Errorf("NoKernelSHA256: RTMR1 = %s, want %s (%s)", got, want, c.rtmr1Key)
			}
			wantRep, gotRep := full.Report(), lean.Report()
			wantRep.Kernel = nil
			if diff := cmp.Diff(wantRep, gotRep); diff != "" {
				t.Errorf("NoKernelSHA256 changed the report beyond its Kernel block (-without +with):\n%s", diff)
			}
			if lean.KernelAuthenticodeSHA384 != full.KernelAuthenticodeSHA384 {
				t.Errorf("NoKernelSHA256: kernel SHA-384 = %s, want %s", lean.KernelAuthenticodeSHA384, full.KernelAuthenticodeSHA384)
			}
		})
	}
}

func checkEventDigests(t *testing.T, res *Result, rtmr int, want []string) {
	t.Helper()
	var got []string
	for _, e := range res.Events {
		if e.RTMR == rtmr {
			got = append(got, e.Digest.String())
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("RTMR%d event digests:\n got %v\nwant %v", rtmr, got, want)
	}
}

func checkHeader(t *testing.T, h *KernelHeader, v vector) {
	t.Helper()
	if h == nil {
		t.Fatal("no patched kernel header reported")
	}
	var want map[string]string
	decode(t, v.Expected, "qemu_patched_header", &want)
	got := map[string]uint64{
		"type_of_loader@0x210": uint64(h.TypeOfLoader),
		"loadflags@0x211":      uint64(h.Loadflags),
		"heap_end_ptr@0x224":   uint64(h.HeapEndPtr),
		"cmd_line_ptr@0x228":   uint64(h.CmdLinePtr),
		"ramdisk_image@0x218":  uint64(h.RamdiskImage),
		"ramdisk_size@0x21c":   uint64(h.RamdiskSize),
	}
	if len(want) != len(got) {
		t.Errorf("vector lists %d header fields, test knows %d", len(want), len(got))
	}
	for k, w := range want {
		wv, err := strconv.ParseUint(w, 0, 64)
		if err != nil {
			t.Fatalf("header field %s: %v", k, err)
		}
		if g, ok := got[k]; !ok || g != wv {
			t.Errorf("patched header %s = 0x%x, want 0x%x", k, g, wv)
		}
	}
}

func TestRTMR0ComponentVectors(t *testing.T) {
	for _, v := range vectorsOfKind(t, "RTMR0 event digests") {
		t.Run(v.ID, func(t *testing.T) {
			fw := testenv.ReadVector(t, v.Inputs[0].Path)
			var mem uint64
			decode(t, v.Params, "guest_memory_bytes", &mem)
			res, err := Measure(fw, Options{Memory: mem})
			if err != nil {
				t.Fatalf("Measure: %v", err)
			}
			if res.RTMR[0].Computable || res.RTMR[0].Reason == "" {
				t.Errorf("RTMR0 = %+v without ACPI blobs, want not computable with a reason", res.RTMR[0])
			}
			if res.RTMR[1].Computable || res.RTMR[2].Computable {
				t.Errorf("RTMR1/2 computable without a kernel")
			}
			byDesc := func(prefix string) string {
				for _, e := range res.Events {
					if e.RTMR == 0 && len(e.Description) >= len(prefix) && e.Description[:len(prefix)] == prefix {
						return e.Digest.String()
					}
				}
				t.Fatalf("no RTMR0 event described %q", prefix)
				return ""
			}
			checks := []struct{ key, got string }{
				{"td_hob_sha384", byDesc("TD HOB")},
				{"cfv_sha384", byDesc("CFV")},
				{"var_SecureBoot_empty_sha384", byDesc("Secure Boot variable 8be4df61-93ca-11d2-aa0d-00e098032b8c:SecureBoot")},
				{"var_PK_empty_sha384", byDesc("Secure Boot variable 8be4df61-93ca-11d2-aa0d-00e098032b8c:PK")},
				{"var_KEK_empty_sha384", byDesc("Secure Boot variable 8be4df61-93ca-11d2-aa0d-00e098032b8c:KEK")},
				{"var_db_empty_sha384", byDesc("Secure Boot variable d719b2cb-3d3a-4596-a3bc-dad00e67656f:db")},
				{"var_dbx_empty_sha384", byDesc("Secure Boot variable d719b2cb-3d3a-4596-a3bc-dad00e67656f:dbx")},
				{"separator_sha384", byDesc("separator")},
				{"bootorder_0000_sha384", byDesc("boot variable BootOrder")},
				{"boot0000_uiapp_sha384", byDesc("boot variable Boot0000")},
			}
			for _, c := range checks {
				if want := str(t, v.Expected, c.key); c.got != want {
					t.Errorf("%s = %s, want %s", c.key, c.got, want)
				}
			}
			var hobLen int
			decode(t, v.Expected, "td_hob_len", &hobLen)
			if got := len(res.TDHOB) - hobEndSize; got != hobLen {
				t.Errorf("measured TD HOB length = %d, want %d", got, hobLen)
			}
			var ranges [][3]string
			decode(t, v.Expected, "td_hob_resource_ranges", &ranges)
			if len(ranges) != len(res.RAM) {
				t.Fatalf("TD HOB has %d ranges, want %d", len(res.RAM), len(ranges))
			}
			for i, r := range ranges {
				g := res.RAM[i]
				if got := [3]string{fmt.Sprintf("0x%x", g.Start), fmt.Sprintf("0x%x", g.Length), fmt.Sprintf("%v(%d)", g.Type, g.Type)}; got != r {
					t.Errorf("range %d = %v, want %v", i, got, r)
				}
			}
		})
	}
}
