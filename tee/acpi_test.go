package tee_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-eventlog/register"
	"github.com/google/go-eventlog/tcg"

	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/qemuacpi"
	"github.com/cocobuild/cocobuild/internal/testenv"
)

// acpiRecipe measures TDX on Debian's 2026.08 OVMF.fd (a TDVF that measures
// into RTMRs, from forky, as the sample) with the sample's kernel (kernel/testdata/kernel.hcl: the
// same build step, shared through the test cache) and reads QEMU's ACPI
// tables with the host's QEMU.
func acpiRecipe(qemu, qv string, disks int) string {
	return fmt.Sprintf(`recipe {
  name = "acpi-test"
}

input "linux_source" {
  deb     = "linux-source-6.12"
  version = "6.12.117-1~deb12u1"
  extract = "usr/src/linux-source-6.12.tar.xz"
  sha256  = "e849faf31ca3555757f3a8877cb01af92122f744f75d1f3102734651c4e14703"
}

# The sample's TDX firmware (the vectors' copy of this file had its
# variable store written by a boot; the CFV is measured into RTMR0).
input "ovmf" {
  deb     = "ovmf-generic"
  suite   = "forky"
  version = "2026.08+ds-2"
  extract = "usr/share/qemu/OVMF.fd"
  sha256  = "05c1593998ba58700ff86c062bde306321af1f5a2943ea9ceef6c2332f3f3374"
}

kernel "guest" {
  source {
    tarball   = input.linux_source
    base      = "tinyconfig"
    fragments = ["common", "tdx", "snp", "fwcfg"]
  }
  cmdline = ["console=ttyS0", "panic=-1"]
}

measure "tdx" {
  firmware      = input.ovmf
  kernel        = kernel.guest
  memory        = ["2G", "4G"]
  vcpus         = [1, 2]
  acpi_qemu     = %q
  qemu_versions = [%q, "10.2"]
  virtio_disks  = %d
}
`, qemu, qv, disks)
}

// TestMeasureTDXReadsACPITablesFromQEMU boots the helper guest under the
// host's QEMU for 2 vCPU counts x 2 memory sizes. Oracles: QEMU itself
// (the blobs are its output, read by the kernel's own fw_cfg driver, and
// the DSDT the firmware installed is found in them), ACPI's own checksums
// and the vCPU count in the MADT, and go-eventlog replaying each entry's
// event log to the RTMR0 it reports.
func TestMeasureTDXReadsACPITablesFromQEMU(t *testing.T) {
	testenv.Tool(t, "go", "golang-go")
	qemu := testenv.Tool(t, qemuacpi.DefaultQEMU, "qemu-system-x86")
	v, machine, err := qemuacpi.Probe(t.Context(), qemu)
	if err != nil {
		t.Fatal(err)
	}
	qv := fmt.Sprintf("%d.%d", v.Major, v.Minor)
	if qv == "10.2" {
		t.Skip("the host's QEMU is 10.2, the model's default: the mismatch case cannot be built here")
	}
	testenv.Tool(t, "apt-get", "apt")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.hcl"), []byte(acpiRecipe(qemu, qv, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := load(t, dir, testenv.SharedCache(t), input.Options{}).Build(context.Background(), filepath.Join(dir, "out"), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	rtmr0 := map[string]string{}
	var mrtd, rtmr1 string
	for _, m := range res.Manifest.Measurements {
		q := m.Params["qemu_version"]
		if q == "10.2" {
			if _, ok := m.Values["rtmr0"]; ok {
				t.Errorf("%s models QEMU 10.2 but has an RTMR0 from QEMU %s's tables", m.Name, qv)
			}
			nc, _ := m.Params["not_computable"].(map[string]any)
			if r, _ := nc["rtmr0"].(string); !strings.Contains(r, "read from QEMU "+v.String()) {
				t.Errorf("%s: not_computable.rtmr0 = %q, want it to name QEMU %s", m.Name, r, v)
			}
			continue
		}
		r0, ok := m.Values["rtmr0"].(string)
		if !ok {
			t.Errorf("%s: no rtmr0 (%v)", m.Name, m.Params["not_computable"])
			continue
		}
		if prev, dup := rtmr0[r0]; dup {
			t.Errorf("%s and %s have the same RTMR0 %s: vCPUs and memory must change it", prev, m.Name, r0)
		}
		rtmr0[r0] = m.Name
		if m.Params["acpi_machine"] != machine {
			t.Errorf("%s: acpi_machine = %v, want %s", m.Name, m.Params["acpi_machine"], machine)
		}
		if mrtd == "" {
			mrtd, rtmr1 = m.Values["mrtd"].(string), m.Values["rtmr1"].(string)
		} else if m.Values["mrtd"] != mrtd || m.Values["rtmr1"] != rtmr1 {
			t.Errorf("%s: MRTD/RTMR1 differ between entries that differ only in vCPUs and memory", m.Name)
		}

		// go-eventlog replays the entry's event log to its RTMR0.
		log, err := os.ReadFile(filepath.Join(res.OutDir, m.Params["eventlog"].(string)))
		if err != nil {
			t.Fatal(err)
		}
		if err := replays(log, m.Values); err != nil {
			t.Errorf("%s: %v", m.Name, err)
		}

		// The blobs: QEMU's RSDP, tables with valid checksums, a MADT
		// with one local APIC per vCPU.
		blobs := filepath.Join(res.OutDir, "measure", "tdx", m.Params["acpi_tables"].(string))
		rsdp, err := os.ReadFile(filepath.Join(blobs, "rsdp"))
		if err != nil {
			t.Fatal(err)
		}
		tables, err := os.ReadFile(filepath.Join(blobs, "tables"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(rsdp, []byte("RSD PTR ")) {
			t.Errorf("%s: rsdp is not an RSDP", m.Name)
		}
		n, err := madtCPUs(tables)
		if err != nil {
			t.Errorf("%s: %v", m.Name, err)
		} else if want := int(m.Params["vcpus"].(float64)); n != want {
			t.Errorf("%s: the MADT QEMU generated has %d local APICs, want %d", m.Name, n, want)
		}
	}
	if len(rtmr0) != 4 {
		t.Errorf("%d distinct RTMR0 values, want 4 (2 vCPU counts x 2 memory sizes)", len(rtmr0))
	}
}

// replays checks with go-eventlog that the event log replays to the
// entry's RTMR0-3.
func replays(log []byte, values map[string]any) error {
	var bank register.RTMRBank
	for i := 0; i < 4; i++ {
		d, err := hex.DecodeString(fmt.Sprint(values[fmt.Sprintf("rtmr%d", i)]))
		if err != nil || len(d) != 48 {
			return fmt.Errorf("rtmr%d = %v: not a SHA-384 digest", i, values[fmt.Sprintf("rtmr%d", i)])
		}
		bank.RTMRs = append(bank.RTMRs, register.RTMR{Index: i, Digest: d})
	}
	if _, err := tcg.ParseAndReplay(log, bank.MRs(), tcg.ParseOpts{}); err != nil {
		return fmt.Errorf("go-eventlog does not replay the event log to the entry's RTMRs: %w", err)
	}
	return nil
}

// madtCPUs finds the MADT ("APIC", QEMU's OEM ID) among the tables QEMU
// packed into etc/acpi/tables (their checksums are left to the firmware's
// loader) and counts its enabled processor local APIC and x2APIC entries.
func madtCPUs(tables []byte) (int, error) {
	i := bytes.Index(tables, []byte("APIC"))
	for ; i >= 0; i = nextIndex(tables, i, "APIC") {
		if i+44 > len(tables) {
			break
		}
		l := int(binary.LittleEndian.Uint32(tables[i+4:]))
		if l < 44 || i+l > len(tables) || tables[i+8] < 1 || tables[i+8] > 10 {
			continue
		}
		if string(tables[i+10:i+16]) != "BOCHS " { // QEMU's OEM ID
			continue
		}
		n := 0
		for off := i + 44; off+2 <= i+l; {
			typ, el := tables[off], int(tables[off+1])
			if el < 2 || off+el > i+l {
				return 0, fmt.Errorf("MADT entry at %d: bad length %d", off-i, el)
			}
			switch {
			case typ == 0 && el >= 8 && tables[off+4]&1 != 0: // processor local APIC, enabled
				n++
			case typ == 9 && el >= 16 && tables[off+8]&1 != 0: // processor local x2APIC, enabled
				n++
			}
			off += el
		}
		return n, nil
	}
	return 0, fmt.Errorf("no MADT in etc/acpi/tables")
}

func nextIndex(b []byte, i int, s string) int {
	j := bytes.Index(b[i+1:], []byte(s))
	if j < 0 {
		return -1
	}
	return i + 1 + j
}
