package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	rootHash = "4392712ba01368efdf14b05c76f9e4df0d53664630b5d48632ed17a137f39076"
	salt     = "4e66b1d4f1a9b5c9c2a8d3c0e6a2f1b0aa55aa55aa55aa55aa55aa55aa55aa55"
)

func TestParseCmdline(t *testing.T) {
	tests := []struct {
		in   string
		args []string
	}{
		{"", nil},
		{"console=ttyS0 panic=-1\n", []string{"console=ttyS0", "panic=-1"}},
		{`a  b	c`, []string{"a", "b", "c"}},
		{`dm-mod.create="root,,,ro,0 8 verity 1" root=/dev/dm-0`, []string{"dm-mod.create=root,,,ro,0 8 verity 1", "root=/dev/dm-0"}},
		{`"quoted arg" x=""`, []string{"quoted arg", "x="}},
	}
	for _, tc := range tests {
		got := ParseCmdline(tc.in)
		if diff := cmp.Diff(tc.args, got.Args); diff != "" {
			t.Errorf("ParseCmdline(%q).Args (-want +got):\n%s", tc.in, diff)
		}
	}
	c := ParseCmdline("a=1 b a=2 cocobuild.test=1")
	if got, want := c.Params, map[string]string{"a": "2", "b": "", "cocobuild.test": "1"}; !cmp.Equal(got, want) {
		t.Errorf("Params = %v, want %v", got, want)
	}
}

func TestVerityFromCmdline(t *testing.T) {
	kata := `dm-mod.create="root,,,ro,0 2048 verity 1 /dev/vda1 /dev/vda2 4096 4096 256 1 sha256 ` + rootHash + ` ` + salt + `" root=/dev/dm-0`
	tests := []struct {
		name    string
		cmdline string
		want    *Verity
		table   string
	}{
		{"kata", kata, &Verity{Name: "root", DataDevice: "/dev/vda1", HashDevice: "/dev/vda2", DataBlockSize: 4096, HashBlockSize: 4096,
			DataBlocks: 256, HashStart: 1, Algorithm: "sha256", RootHash: rootHash, Salt: salt},
			"1 /dev/vda1 /dev/vda2 4096 4096 256 1 sha256 " + rootHash + " " + salt},
		{"kata options", `dm-mod.create="v,,,ro,0 16 verity 1 8:1 8:2 512 4096 16 0 sha256 ` + rootHash + ` - 2 ignore_zero_blocks panic_on_corruption"`,
			&Verity{Name: "v", DataDevice: "8:1", HashDevice: "8:2", DataBlockSize: 512, HashBlockSize: 4096, DataBlocks: 16, Algorithm: "sha256",
				RootHash: rootHash, Salt: "-", Options: []string{"ignore_zero_blocks", "panic_on_corruption"}},
			"1 8:1 8:2 512 4096 16 0 sha256 " + rootHash + " - 2 ignore_zero_blocks panic_on_corruption"},
		{"systemd superblock", "roothash=" + rootHash + " systemd.verity_root_data=/dev/vda1 systemd.verity_root_hash=/dev/vda2",
			&Verity{Name: "root", DataDevice: "/dev/vda1", HashDevice: "/dev/vda2", DataBlockSize: 4096, HashBlockSize: 4096, Algorithm: "sha256",
				RootHash: rootHash, Salt: "-", Superblock: true}, ""},
		{"systemd appended", "roothash=" + rootHash + " systemd.verity_root_data=/dev/vda1 systemd.verity_root_hash=/dev/vda1 systemd.verity_root_options=hash-offset=1048576,salt=" + salt,
			&Verity{Name: "root", DataDevice: "/dev/vda1", HashDevice: "/dev/vda1", DataBlockSize: 4096, HashBlockSize: 4096, Algorithm: "sha256",
				RootHash: rootHash, Salt: salt, Superblock: true, SuperblockOffset: 1048576}, ""},
		{"systemd no superblock", "roothash=" + rootHash + " systemd.verity_root_data=/dev/vda1 systemd.verity_root_hash=/dev/vda2 systemd.verity_root_options=superblock=false,data-blocks=256,hash-offset=8192,hash=sha512,panic-on-corruption",
			&Verity{Name: "root", DataDevice: "/dev/vda1", HashDevice: "/dev/vda2", DataBlockSize: 4096, HashBlockSize: 4096, DataBlocks: 256, HashStart: 2,
				Algorithm: "sha512", RootHash: rootHash, Salt: "-", Options: []string{"panic_on_corruption"}},
			"1 /dev/vda1 /dev/vda2 4096 4096 256 2 sha512 " + rootHash + " - 1 panic_on_corruption"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := VerityFromCmdline(ParseCmdline(tc.cmdline))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("VerityFromCmdline (-want +got):\n%s", diff)
			}
			if tc.table != "" && got.Table() != tc.table {
				t.Errorf("Table() = %q, want %q", got.Table(), tc.table)
			}
		})
	}

	errs := []struct{ name, cmdline, want string }{
		{"none", "console=ttyS0", "no verity root"},
		{"two devices", `dm-mod.create="a,,,ro,0 8 verity;b,,,ro,0 8 verity"`, "one device"},
		{"few fields", `dm-mod.create="root,,,ro,0 8 verity 1 /dev/vda1"`, "13"},
		{"rw", `dm-mod.create="root,,,rw,0 2048 verity 1 /dev/vda1 /dev/vda2 4096 4096 256 1 sha256 ` + rootHash + ` -"`, "want ro"},
		{"linear", `dm-mod.create="root,,,ro,0 2048 linear 1 /dev/vda1 /dev/vda2 4096 4096 256 1 sha256 ` + rootHash + ` -"`, "verity 1"},
		{"length", `dm-mod.create="root,,,ro,0 2000 verity 1 /dev/vda1 /dev/vda2 4096 4096 256 1 sha256 ` + rootHash + ` -"`, "length 2000"},
		{"block size", `dm-mod.create="root,,,ro,0 2048 verity 1 /dev/vda1 /dev/vda2 4000 4096 256 1 sha256 ` + rootHash + ` -"`, "power of two"},
		{"not a number", `dm-mod.create="root,,,ro,0 2048 verity 1 /dev/vda1 /dev/vda2 4096 4096 x 1 sha256 ` + rootHash + ` -"`, "data blocks"},
		{"hash", `dm-mod.create="root,,,ro,0 2048 verity 1 /dev/vda1 /dev/vda2 4096 4096 256 1 sha256 xyz -"`, "root hash"},
		{"salt", `dm-mod.create="root,,,ro,0 2048 verity 1 /dev/vda1 /dev/vda2 4096 4096 256 1 sha256 ` + rootHash + ` zz"`, "salt"},
		{"opt count", `dm-mod.create="root,,,ro,0 2048 verity 1 /dev/vda1 /dev/vda2 4096 4096 256 1 sha256 ` + rootHash + ` - 2 x"`, "optional arguments"},
		{"systemd devices", "roothash=" + rootHash, "verity_root_data"},
		{"systemd option", "roothash=" + rootHash + " systemd.verity_root_data=/dev/a systemd.verity_root_hash=/dev/b systemd.verity_root_options=fec-device=/dev/c", "unsupported option"},
		{"systemd blocks", "roothash=" + rootHash + " systemd.verity_root_data=/dev/a systemd.verity_root_hash=/dev/b systemd.verity_root_options=superblock=false", "data-blocks"},
		{"systemd offset", "roothash=" + rootHash + " systemd.verity_root_data=/dev/a systemd.verity_root_hash=/dev/b systemd.verity_root_options=superblock=false,data-blocks=1,hash-offset=100", "multiple"},
	}
	for _, tc := range errs {
		t.Run("error "+tc.name, func(t *testing.T) {
			_, err := VerityFromCmdline(ParseCmdline(tc.cmdline))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("VerityFromCmdline(%q) error %v, want one containing %q", tc.cmdline, err, tc.want)
			}
		})
	}
	if _, err := VerityFromCmdline(ParseCmdline("quiet")); !errors.Is(err, ErrNoVerity) {
		t.Errorf("no verity: error %v, want ErrNoVerity", err)
	}
}

// TestMatchesTable compares the table the kernel reports for a device it
// made from dm-mod.create= (devices as numbers) with the command line's.
func TestMatchesTable(t *testing.T) {
	v := &Verity{Name: "root", DataDevice: "/dev/vda1", HashDevice: "/dev/vda2", DataBlockSize: 4096, HashBlockSize: 4096,
		DataBlocks: 256, HashStart: 1, Algorithm: "sha256", RootHash: rootHash, Salt: salt}
	other := strings.Repeat("0", len(rootHash))
	tests := []struct {
		name, table, wantErr string
	}{
		{"same, devices as numbers", "1 254:1 254:2 4096 4096 256 1 sha256 " + rootHash + " " + salt, ""},
		{"upper-case hex", "1 254:1 254:2 4096 4096 256 1 sha256 " + strings.ToUpper(rootHash) + " " + salt, ""},
		{"other root hash", "1 254:1 254:2 4096 4096 256 1 sha256 " + other + " " + salt, "root hash is " + other},
		{"other salt", "1 254:1 254:2 4096 4096 256 1 sha256 " + rootHash + " -", "salt is -"},
		{"other size", "1 254:1 254:2 4096 4096 255 1 sha256 " + rootHash + " " + salt, "data blocks is 255, the command line says 256"},
		{"not verity", "254:1 0", "is not a verity table"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := v.MatchesTable(tc.table)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("MatchesTable: %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("MatchesTable: %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestFSMagic(t *testing.T) {
	img := func(off int, magic []byte) []byte {
		b := make([]byte, 4096)
		copy(b[off:], magic)
		return b
	}
	le32 := binary.LittleEndian.AppendUint32(nil, 0xE0F5E1E2)
	le16 := binary.LittleEndian.AppendUint16(nil, 0xEF53)
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"erofs", img(1024, le32), "erofs"},
		{"squashfs", img(0, []byte("hsqs")), "squashfs"},
		{"ext4", img(1024+0x38, le16), "ext4"},
	}
	for _, tc := range tests {
		got, err := fsMagic(bytes.NewReader(tc.b))
		if err != nil || got != tc.want {
			t.Errorf("fsMagic(%s) = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	if _, err := fsMagic(bytes.NewReader(make([]byte, 4096))); err == nil {
		t.Error("fsMagic of zeros succeeded")
	}
	if _, err := fsMagic(bytes.NewReader(make([]byte, 100))); err == nil {
		t.Error("fsMagic of a short device succeeded")
	}
}

func FuzzCmdline(f *testing.F) {
	f.Add(`dm-mod.create="root,,,ro,0 2048 verity 1 /dev/vda1 /dev/vda2 4096 4096 256 1 sha256 ` + rootHash + ` - 1 x" root=/dev/dm-0`)
	f.Add("roothash=" + rootHash + " systemd.verity_root_data=/dev/vda1 systemd.verity_root_hash=/dev/vda2 systemd.verity_root_options=superblock=false,data-blocks=8")
	f.Add(`"a b" c="d e"`)
	f.Fuzz(func(t *testing.T, s string) {
		c := ParseCmdline(s)
		if v, err := VerityFromCmdline(c); err == nil && !v.Superblock {
			if v.Sectors() == 0 || v.check() != nil {
				t.Errorf("accepted an invalid mapping: %+v", v)
			}
		}
	})
}

func TestGPTPartition(t *testing.T) {
	const lba = 512
	disk := make([]byte, 64*lba)
	copy(disk[lba:], "EFI PART")
	binary.LittleEndian.PutUint64(disk[lba+72:], 2)
	binary.LittleEndian.PutUint32(disk[lba+80:], 4)
	binary.LittleEndian.PutUint32(disk[lba+84:], 128)
	// Unique GUID 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 in the third entry.
	guid := []byte{0x3c, 0x2d, 0x1e, 0x0f, 0x5a, 0x4b, 0x78, 0x69, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0}
	copy(disk[2*lba+2*128+16:], guid)
	tests := []struct {
		uuid string
		want int
	}{
		{"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", 3},
		{"0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0", 3},
		{"00000000-4b5a-6978-8796-a5b4c3d2e1f0", 0},
	}
	for _, tc := range tests {
		got, err := gptPartition(bytes.NewReader(disk), lba, tc.uuid)
		if err != nil || got != tc.want {
			t.Errorf("gptPartition(%s) = %d, %v; want %d", tc.uuid, got, err, tc.want)
		}
	}
	if _, err := gptPartition(bytes.NewReader(make([]byte, 4096)), lba, "x"); err == nil {
		t.Error("gptPartition of a disk without a GPT succeeded")
	}
	binary.LittleEndian.PutUint32(disk[lba+80:], 1<<20)
	if _, err := gptPartition(bytes.NewReader(disk), lba, "x"); err == nil {
		t.Error("gptPartition accepted a million entries")
	}
}

func FuzzGPTPartition(f *testing.F) {
	disk := make([]byte, 8*512)
	copy(disk[512:], "EFI PART")
	binary.LittleEndian.PutUint64(disk[512+72:], 2)
	binary.LittleEndian.PutUint32(disk[512+80:], 4)
	binary.LittleEndian.PutUint32(disk[512+84:], 128)
	f.Add(disk)
	f.Fuzz(func(t *testing.T, b []byte) {
		gptPartition(bytes.NewReader(b), 512, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
	})
}

func TestOSReleaseName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nID=debian\n", "Debian GNU/Linux 12 (bookworm)"},
		{"NAME='Alpine Linux'\nID=alpine\n", "Alpine Linux"},
		{"ID=x\n", ""},
	} {
		if got := osReleaseName(tc.in); got != tc.want {
			t.Errorf("osReleaseName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
