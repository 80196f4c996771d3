package qemuacpi

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

func frame(name string, b []byte) string {
	enc := base64.StdEncoding.EncodeToString(b)
	var s strings.Builder
	fmt.Fprintf(&s, "@@fwcfg begin %s %d %x\r\n", name, len(b), sha256.Sum256(b))
	for len(enc) > 0 {
		n := min(len(enc), 10)
		fmt.Fprintf(&s, "@@fwcfg data %s\r\n", enc[:n])
		enc = enc[n:]
	}
	fmt.Fprintf(&s, "@@fwcfg end %s\r\n", name)
	return s.String()
}

func TestParseConsole(t *testing.T) {
	loader := bytes.Repeat([]byte{1, 2, 3}, 50)
	good := "[    0.1] noise\r\n" + frame("etc/table-loader", loader) + "more noise\n" + frame("etc/acpi/rsdp", []byte("RSD PTR ")) + "@@fwcfg missing installed/DSDT\n@@fwcfg done\n"
	damaged := strings.Replace(frame("etc/acpi/rsdp", []byte("RSD PTR ")), "@@fwcfg data UlNE", "@@fwcfg data UlNF", 1) + "@@fwcfg done\n"
	for _, tc := range []struct {
		name    string
		in      string
		want    map[string][]byte
		wantErr string
	}{
		{name: "two files amid kernel output", in: good, want: map[string][]byte{"etc/table-loader": loader, "etc/acpi/rsdp": []byte("RSD PTR ")}},
		{name: "damaged", in: damaged, wantErr: "arrived damaged"},
		{name: "cut off", in: frame("etc/acpi/rsdp", []byte("x")), wantErr: "did not report"},
		{name: "guest error", in: "@@fwcfg error no /sys/firmware/qemu_fw_cfg: the kernel lacks CONFIG_FW_CFG_SYSFS\n", wantErr: "CONFIG_FW_CFG_SYSFS"},
		{name: "data outside", in: "@@fwcfg data AAAA\n@@fwcfg done\n", wantErr: "data outside"},
		{name: "huge size", in: "@@fwcfg begin x 999999999 00\n", wantErr: "bad size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseConsole([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseConsole() error = %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("parseConsole() mismatch (-want +got):\n%s", d)
			}
		})
	}
}

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Version
	}{
		{"QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright", Version{7, 2, 22, "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)"}},
		{"QEMU emulator version 11.1.2 (Debian 1:11.1.2+ds-3)\n", Version{11, 1, 2, "11.1.2 (Debian 1:11.1.2+ds-3)"}},
		{"QEMU emulator version 10.1.0\n", Version{10, 1, 0, "10.1.0"}},
	} {
		got, err := ParseVersion(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseVersion(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	if _, err := ParseVersion("bash 5.2"); err == nil {
		t.Error("ParseVersion(not QEMU) succeeded")
	}
}

// TestProbe asks the host's QEMU (the real binary) for its version and the
// machine type q35 stands for.
func TestProbe(t *testing.T) {
	testenv.Tool(t, DefaultQEMU, "qemu-system-x86")
	v, machine, err := Probe(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("pc-q35-%d.%d", v.Major, v.Minor)
	if machine != want {
		t.Errorf("q35 is %q, want %q for QEMU %s", machine, want, v.Full)
	}
}

// TestBuildHelper builds the helper guest and lists its initramfs with the
// cpio tool: /init is a static executable.
func TestBuildHelper(t *testing.T) {
	testenv.Tool(t, "go", "golang-go")
	cpioBin := testenv.Tool(t, "cpio", "cpio")
	dir := t.TempDir()
	dst := filepath.Join(dir, "helper.cpio")
	if err := BuildHelper(t.Context(), dir, dst); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(cpioBin, "-t", "-v", "--quiet")
	cmd.Stdin = f
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cpio -t: %v", err)
	}
	for _, want := range []string{"dev/console", "init"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("cpio -t lists no %s:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "init"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x7fELF")) || bytes.Contains(b, []byte("/lib64/ld-linux")) {
		t.Errorf("/init is not a static ELF executable")
	}
}

// TestContainsTable: an installed table is found in QEMU's blob whatever
// its checksum byte (the loader computes it), and not when any other byte
// differs.
func TestContainsTable(t *testing.T) {
	dsdt := append([]byte("DSDT\x2c\x00\x00\x00\x01\x00BOCHS BXPCDSDT\x01\x00\x00\x00BXPC\x01\x00\x00\x00"), []byte("\x10\x20\x30\x40\x50\x60\x70\x80")...)
	blob := append(append(bytes.Repeat([]byte{0}, 100), dsdt...), bytes.Repeat([]byte{0}, 50)...)
	installed := append([]byte(nil), dsdt...)
	installed[9] = 0x5a // the loader's checksum
	other := append([]byte(nil), installed...)
	other[40] ^= 1
	for _, tc := range []struct {
		name string
		t    []byte
		want bool
	}{
		{"as installed (checksum set)", installed, true},
		{"one AML byte differs", other, false},
		{"nothing", nil, false},
		{"truncated header", installed[:20], false},
	} {
		if got := containsTable(blob, tc.t); got != tc.want {
			t.Errorf("%s: containsTable = %v, want %v", tc.name, got, tc.want)
		}
	}
}
