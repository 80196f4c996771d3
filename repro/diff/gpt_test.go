package diff

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/disk"
	"github.com/cocobuild/cocobuild/internal/testenv"
)

// gptImage writes a two-partition GPT disk image the way the disk block
// does and returns its bytes.
func gptImage(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	root, verity := filepath.Join(dir, "root.img"), filepath.Join(dir, "root.verity")
	if err := os.WriteFile(root, []byte(strings.Repeat("root", 1024)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(verity, []byte(strings.Repeat("hash", 256)), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := disk.Plan(&disk.Spec{GUID: "7e8c1d36-7f7c-5a51-9c22-1b7e0f1c2d3e", Partitions: []disk.Partition{
		{Name: "root", Type: disk.PartitionTypes["root-x86-64"], GUID: "4fbd7e29-9d25-41b8-afd0-062c0ceff05d", Content: root},
		{Name: "verity", Type: disk.PartitionTypes["root-x86-64-verity"], GUID: "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7", Content: verity},
	}})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "disk.raw")
	if err := disk.WriteRaw(context.Background(), p, l, 0); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGPTNamesTheChangedField changes one field of a real GPT with sgdisk
// and checks that the report names that field of that partition, and only
// it: a partition's unique GUID is "unique guid", not "mode".
func TestGPTNamesTheChangedField(t *testing.T) {
	sgdisk := testenv.Tool(t, "sgdisk", "gdisk")
	base := gptImage(t)
	tests := []struct {
		name string
		args []string // sgdisk options
		want []string // member: what
	}{
		{"partition guid", []string{"-u", "1:0e9f3c47-16d4-4b7e-9a3c-5d1e2f3a4b5c"},
			[]string{"partition 1 (root): unique guid (a: 4fbd7e29-9d25-41b8-afd0-062c0ceff05d, b: 0e9f3c47-16d4-4b7e-9a3c-5d1e2f3a4b5c)"}},
		{"partition type", []string{"-t", "2:8300"},
			[]string{"partition 2 (verity): type (a: partition type 2c7357ed-ebd2-46d9-aec1-23d437ec2bf5, b: partition type 0fc63daf-8483-4772-8e79-3d69d8477de4)"}},
		{"partition name", []string{"-c", "2:hashes"},
			[]string{"partition 2 (verity): name (a: verity, b: hashes)"}},
		{"attributes", []string{"-A", "1:set:60"},
			[]string{"partition 1 (root): attributes (a: 0x0, b: 0x1000000000000000)"}},
		{"disk guid", []string{"-U", "11111111-2222-3333-4444-555555555555"},
			[]string{"gpt header: disk guid (a: 7e8c1d36-7f7c-5a51-9c22-1b7e0f1c2d3e, b: 11111111-2222-3333-4444-555555555555)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "disk.raw")
			if err := os.WriteFile(p, base, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(sgdisk, append(tc.args, p)...).CombinedOutput(); err != nil {
				t.Fatalf("sgdisk %v: %v\n%s", tc.args, err, out)
			}
			changed, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range files(t, "disk.raw", base, changed) {
				if d.Format != "gpt" {
					t.Errorf("read as %s, want gpt: %v", d.Format, d)
				}
				got = append(got, d.Member+": "+d.What+" (a: "+d.A+", b: "+d.B+")")
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("differences after sgdisk %v (-want +got):\n%s", tc.args, diff)
			}
		})
	}
}
