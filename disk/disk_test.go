package disk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/internal/units"
)

func shaHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func randomFile(t testing.TB, dir, name string, size int, seed uint64) (string, []byte) {
	t.Helper()
	b := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, b
}

func tool(t testing.TB, name, pkg string, args ...string) string {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, name, pkg), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// testSpec is an ESP with a file in a subdirectory, a root partition with
// content that is not a whole number of MiB, and a verity partition.
func testSpec(t testing.TB, espSize int64) (*Spec, map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	efi, efiBytes := randomFile(t, dir, "bootx64.efi", 300_001, 1)
	root, rootBytes := randomFile(t, dir, "root.img", 3*int(units.MiB)+4096, 2)
	hash, hashBytes := randomFile(t, dir, "root.verity", 8192, 3)
	return &Spec{
		GUID: "7e8c1d36-7f7c-5a51-9c22-1b7e0f1c2d3e",
		Partitions: []Partition{
			{Name: "esp", Type: PartitionTypes["esp"], GUID: "1b4e28ba-2fa1-51d2-883f-0016d3cca427", Size: espSize,
				FAT: []FATFile{{Path: "/EFI/BOOT/BOOTX64.EFI", Source: efi}}},
			{Name: "root", Type: PartitionTypes["root-x86-64"], GUID: "4fbd7e29-9d25-41b8-afd0-062c0ceff05d", Content: root},
			{Name: "root-verity", Type: PartitionTypes["root-x86-64-verity"], GUID: "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7", Content: hash},
		},
		Epoch: 1700000000,
	}, map[string][]byte{"efi": efiBytes, "root": rootBytes, "verity": hashBytes}
}

// TestWriteRaw writes a disk twice and checks it with sgdisk, reads the
// ESP with mtools, checks its FAT with fsck.vfat and the partition
// contents byte for byte, and converts it to qcow2 twice.
func TestWriteRaw(t *testing.T) {
	sgdisk := testenv.Tool(t, "sgdisk", "gdisk")
	spec, want := testSpec(t, 40*units.MiB)
	l, err := Plan(spec)
	if err != nil {
		t.Fatal(err)
	}
	// 1 MiB, ESP 40 MiB, root 4 MiB, verity 1 MiB, 1 MiB for the backup GPT.
	if got, wantSize := l.Size, 47*units.MiB; got != wantSize {
		t.Errorf("disk size %d, want %d", got, wantSize)
	}
	var imgs []string
	var digests []string
	for i := 0; i < 2; i++ {
		p := filepath.Join(t.TempDir(), "disk.raw")
		if err := WriteRaw(context.Background(), p, l, spec.Epoch); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		imgs, digests = append(imgs, p), append(digests, shaHex(b))
	}
	if digests[0] != digests[1] {
		t.Errorf("two writes differ: %s, %s", digests[0], digests[1])
	}
	img := imgs[0]
	out := tool(t, "sgdisk", "gdisk", "-v", img)
	if !strings.Contains(out, "No problems found") {
		t.Errorf("sgdisk -v:\n%s", out)
	}
	info := tool(t, "sgdisk", "gdisk", "-p", img)
	if !strings.Contains(info, "Disk identifier (GUID): "+strings.ToUpper(spec.GUID)) {
		t.Errorf("sgdisk -p does not show disk GUID %s:\n%s", spec.GUID, info)
	}
	for i, p := range l.Parts {
		pi, err := exec.Command(sgdisk, "-i", fmt.Sprint(i+1), img).CombinedOutput()
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{"Partition GUID code: " + strings.ToUpper(p.Type), "Partition unique GUID: " + strings.ToUpper(p.GUID),
			fmt.Sprintf("First sector: %d ", p.Start), fmt.Sprintf("Last sector: %d ", p.End), "Partition name: '" + p.Name + "'"} {
			if !strings.Contains(string(pi), w) {
				t.Errorf("partition %d: sgdisk -i lacks %q:\n%s", i+1, w, pi)
			}
		}
		if p.Start%2048 != 0 {
			t.Errorf("partition %d starts at sector %d, not on a 1 MiB boundary", i+1, p.Start)
		}
	}
	raw, _ := os.ReadFile(img)
	for name, idx := range map[string]int{"root": 1, "verity": 2} {
		p := l.Parts[idx]
		got := raw[p.Start*SectorSize : p.Start*SectorSize+uint64(len(want[name]))]
		if !bytes.Equal(got, want[name]) {
			t.Errorf("partition %s does not hold its content", p.Name)
		}
		if rest := raw[p.Start*SectorSize+uint64(len(want[name])) : (p.End+1)*SectorSize]; bytes.Count(rest, []byte{0}) != len(rest) {
			t.Errorf("partition %s is not zero after its content", p.Name)
		}
	}

	// The ESP: mtools reads the file back; fsck.vfat reports nothing but
	// what go-diskfs is known to write (a '..' entry in the second slot,
	// which mtools and OVMF accept, and an unset free-cluster count).
	esp := filepath.Join(t.TempDir(), "esp.img")
	p := l.Parts[0]
	if err := os.WriteFile(esp, raw[p.Start*SectorSize:(p.End+1)*SectorSize], 0o644); err != nil {
		t.Fatal(err)
	}
	got := filepath.Join(t.TempDir(), "BOOTX64.EFI")
	tool(t, "mcopy", "mtools", "-n", "-i", esp, "::/EFI/BOOT/BOOTX64.EFI", got)
	if b, _ := os.ReadFile(got); !bytes.Equal(b, want["efi"]) {
		t.Errorf("BOOTX64.EFI read back with mtools differs (%d bytes, want %d)", len(b), len(want["efi"]))
	}
	checkFsckVfat(t, esp)
	mdir := tool(t, "mdir", "mtools", "-i", esp, "::/EFI/BOOT")
	if !strings.Contains(mdir, "2023-11-14") {
		t.Errorf("FAT entries are not dated at the epoch (2023-11-14):\n%s", mdir)
	}

	var q []string
	for i := 0; i < 2; i++ {
		out := filepath.Join(t.TempDir(), "disk.qcow2")
		if err := Qcow2(context.Background(), img, out, nil); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(out)
		q = append(q, shaHex(b))
		if i == 0 {
			tool(t, "qemu-img", "qemu-utils", "check", out)
			cmpOut := tool(t, "qemu-img", "qemu-utils", "compare", "-f", "raw", "-F", "qcow2", img, out)
			if !strings.Contains(cmpOut, "Images are identical") {
				t.Errorf("qemu-img compare: %s", cmpOut)
			}
		}
	}
	if q[0] != q[1] {
		t.Errorf("two qcow2 conversions differ: %s, %s", q[0], q[1])
	}
}

var benignFsck = regexp.MustCompile(`^(fsck\.fat .*|/.*|  Invalid '\.\.' entry in the second slot\. Fixing\.|Free cluster summary uninitialized \(should be \d+\)|Leaving filesystem unchanged\.|.*: \d+ files, \d+/\d+ clusters|)$`)

func checkFsckVfat(t testing.TB, img string) {
	t.Helper()
	out, _ := exec.Command(testenv.Tool(t, "fsck.vfat", "dosfstools"), "-n", img).CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if !benignFsck.MatchString(line) {
			t.Errorf("fsck.vfat -n: %q\n%s", line, out)
		}
	}
}

// TestFAT64MiBGuard: go-diskfs's FAT32 of exactly 64 MiB has a FAT two
// entries short; the guard must refuse it, and 65 MiB must pass.
func TestFAT64MiBGuard(t *testing.T) {
	for _, tc := range []struct {
		size int64
		ok   bool
	}{{64 * units.MiB, false}, {65 * units.MiB, true}, {63 * units.MiB, true}} {
		spec, _ := testSpec(t, tc.size)
		l, err := Plan(spec)
		if err != nil {
			t.Fatal(err)
		}
		err = WriteRaw(context.Background(), filepath.Join(t.TempDir(), "d.raw"), l, 0)
		if tc.ok && err != nil {
			t.Errorf("ESP of %s: %v", units.FormatSize(tc.size), err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "invalid FAT32") || !strings.Contains(err.Error(), "65MiB")) {
			t.Errorf("ESP of %s: error %v, want the invalid-FAT32 guard suggesting 65MiB", units.FormatSize(tc.size), err)
		}
	}
}

func TestPlanErrors(t *testing.T) {
	ok := func() *Spec {
		s, _ := testSpec(t, 40*units.MiB)
		return s
	}
	tests := []struct {
		name   string
		change func(s *Spec)
		want   string
	}{
		{"bad disk guid", func(s *Spec) { s.GUID = "x" }, "disk GUID"},
		{"no partitions", func(s *Spec) { s.Partitions = nil }, "at least one partition"},
		{"duplicate name", func(s *Spec) { s.Partitions[2].Name = "root" }, "two partitions are named"},
		{"long name", func(s *Spec) { s.Partitions[1].Name = strings.Repeat("n", 37) }, "1 to 36"},
		{"duplicate guid", func(s *Spec) { s.Partitions[2].GUID = s.Partitions[1].GUID }, "GUIDs must be unique"},
		{"disk guid reused", func(s *Spec) { s.Partitions[0].GUID = s.GUID }, "GUIDs must be unique"},
		{"unaligned size", func(s *Spec) { s.Partitions[1].Size = units.MiB + 512 }, "multiple of 1MiB"},
		{"too small for content", func(s *Spec) { s.Partitions[1].Size = units.MiB }, "smaller than its content"},
		{"small esp", func(s *Spec) { s.Partitions[0].Size = 32 * units.MiB }, "at least 33MiB"},
		{"esp without size", func(s *Spec) { s.Partitions[0].Size = 0 }, "needs a size"},
		{"empty", func(s *Spec) { s.Partitions[1].Content = "" }, "neither a size nor content"},
		{"disk too small", func(s *Spec) { s.Size = 10 * units.MiB }, "too small"},
		{"bad type", func(s *Spec) { s.Partitions[1].Type = "root" }, "type"},
	}
	for _, tc := range tests {
		s := ok()
		tc.change(s)
		_, err := Plan(s)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func TestPartitionType(t *testing.T) {
	for in, want := range map[string]string{"esp": "c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "0FC63DAF-8483-4772-8E79-3D69D8477DE4": "0fc63daf-8483-4772-8e79-3d69d8477de4"} {
		if got, err := PartitionType(in); err != nil || got != want {
			t.Errorf("PartitionType(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "rootfs", "0fc63daf84834772"} {
		if _, err := PartitionType(bad); err == nil {
			t.Errorf("PartitionType(%q) succeeded", bad)
		}
	}
}

// bootSector makes a FAT32 boot sector with the given geometry.
func bootSector(totalSectors, fatSectors uint32, spc byte) []byte {
	b := make([]byte, 512)
	b[11], b[12] = 0, 2 // 512 bytes per sector
	b[13] = spc
	b[14] = 32 // reserved
	b[16] = 2  // FATs
	b[32], b[33], b[34], b[35] = byte(totalSectors), byte(totalSectors>>8), byte(totalSectors>>16), byte(totalSectors>>24)
	b[36], b[37], b[38], b[39] = byte(fatSectors), byte(fatSectors>>8), byte(fatSectors>>16), byte(fatSectors>>24)
	b[510], b[511] = 0x55, 0xaa
	return b
}

func TestCheckFAT32(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want string // "" for valid
	}{
		// 64 MiB as go-diskfs makes it: 131072 sectors, 1008 FAT sectors, 129024 clusters, 129024 entries.
		{"go-diskfs 64MiB", bootSector(131072, 1008, 1), "FATs of 129024 entries"},
		{"valid 65MiB", bootSector(133120, 1024, 1), ""},
		{"too few clusters", bootSector(66000, 520, 1), "fewer than the 65525"},
		{"short", make([]byte, 100), "boot sector of 100 bytes"},
		{"no signature", make([]byte, 512), "signature"},
		{"zero spc", bootSector(133120, 1024, 0), "sectors per cluster"},
		{"odd spc", bootSector(133120, 1024, 3), "sectors per cluster"},
		{"fats too big", bootSector(1000, 1000, 1), "only the reserved area"},
	}
	fat16 := bootSector(133120, 1024, 1)
	fat16[22] = 1
	tests = append(tests, struct {
		name string
		b    []byte
		want string
	}{"fat16 field", fat16, "not a FAT32"})
	for _, tc := range tests {
		err := CheckFAT32(tc.b)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: CheckFAT32 = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func FuzzCheckFAT32(f *testing.F) {
	f.Add(bootSector(131072, 1008, 1))
	f.Add(bootSector(133120, 1024, 1))
	f.Add(bootSector(0xffffffff, 0xffffffff, 128))
	f.Fuzz(func(t *testing.T, b []byte) {
		CheckFAT32(b)
	})
}
