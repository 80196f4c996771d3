package cca

import (
	"encoding/json"
	"path"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// ccaVector is one vector of cca.json: realm-measurements' (commit
// 08aaf5a) output for a VMM command line and the DTB that the VMM
// generates for it.
type ccaVector struct {
	ID       string            `json:"id"`
	Host     []string          `json:"host"`
	VMMArgs  []string          `json:"vmm_args"`
	Kernel   *string           `json:"kernel"`
	Initrd   *string           `json:"initrd"`
	Firmware *string           `json:"firmware"`
	DTB      string            `json:"dtb"`
	Expected map[string]string `json:"expected"`
}

func loadCCAVectors(t *testing.T) []ccaVector {
	t.Helper()
	var f struct {
		Vectors []ccaVector `json:"vectors"`
	}
	if err := json.Unmarshal(testenv.ReadVector(t, "cca.json"), &f); err != nil {
		t.Fatalf("parsing cca.json: %v", err)
	}
	if len(f.Vectors) < 5 {
		t.Fatalf("cca.json has %d vectors, want at least 5", len(f.Vectors))
	}
	return f.Vectors
}

// TestVectors computes every vector of cca.json from its command line and
// inputs, and compares the RIM and REMs, printed as realm-measurements
// prints them (64 bytes of hex, SHA-256 values zero-padded).
func TestVectors(t *testing.T) {
	for _, v := range loadCCAVectors(t) {
		t.Run(v.ID, func(t *testing.T) {
			args, err := ParseArgs(append(append([]string(nil), v.Host...), v.VMMArgs...))
			if err != nil {
				t.Fatalf("ParseArgs: %v", err)
			}
			read := func(p *string) []byte {
				if p == nil {
					return nil
				}
				return testenv.ReadVector(t, path.Clean(*p))
			}
			in := Inputs{Kernel: read(v.Kernel), Initrd: read(v.Initrd), Firmware: read(v.Firmware), DTB: read(&v.DTB)}
			res, err := Measure(args.Host, args.VMM, args.VMMArgs, in)
			if err != nil {
				t.Fatalf("Measure: %v", err)
			}
			got := map[string]string{"rim": Padded(res.RIM)}
			for i, r := range res.REMs {
				got["rem"+string(rune('0'+i))] = Padded(r)
			}
			for _, k := range []string{"rim", "rem0", "rem1", "rem2", "rem3"} {
				if v.Expected[k] == "" {
					t.Fatalf("vector has no expected %s", k)
				}
				if got[k] != v.Expected[k] {
					t.Errorf("%s = %s, want %s (realm-measurements)", k, got[k], v.Expected[k])
				}
			}
			if len(res.RIM) != res.Hash.Size() {
				t.Errorf("RIM has %d bytes, want %d for %s", len(res.RIM), res.Hash.Size(), res.Hash)
			}
		})
	}
}

// TestToolExpectations checks the RIMs that realm-measurements' own
// tests assert (tests/cmdline.rs: qemu_params, qemu_measurements,
// qemu_dtb, kvmtool_params, kvmtool_measurements) for its testdata
// (linux.bin is inputs/cca-linux.bin, "FW CONTENT" inputs/cca-fw.bin,
// "INITRD CONTENT" inputs/cca-initrd.bin), each with the DTB generated
// (the tool generates it in these tests): QEMU direct boot with kernel,
// initrd and command line, -bios with -kernel (fw_cfg, outside the RIM),
// the PMU on and off, kvmtool's minimal command line and ignored options.
// The tool's tests compare a prefix of the output (63 digits for some).
func TestToolExpectations(t *testing.T) {
	const hostQEMU = "--num-wps 6 --num-bps 6 --ipa-bits 52 --pmu-num-ctrs 6 "
	const qemu = "qemu -M confidential-guest-support=rme0 -object rme-guest,id=rme0,measurement-algorithm=sha256 -cpu host -M virt -enable-kvm -smp 2 -m 1G -nographic "
	in := Inputs{Kernel: testenv.ReadVector(t, "inputs/cca-linux.bin"), Firmware: testenv.ReadVector(t, "inputs/cca-fw.bin"),
		Initrd: testenv.ReadVector(t, "inputs/cca-initrd.bin")}
	for _, tc := range []struct{ args, want string }{
		// qemu_measurements
		{hostQEMU + qemu + "-bios firmware", "cbf533a94009dfa6b83016a89b428d1d910fb3593856bb386d7b2bd07a1bc834"},
		{hostQEMU + qemu + "-bios firmware -kernel Image", "cbf533a94009dfa6b83016a89b428d1d910fb3593856bb386d7b2bd07a1bc834"},
		{hostQEMU + qemu + "-bios firmware -kernel Image -append root=/dev/vda2", "fd3ce1072c3e95cd3a4d1a07729756564f260f9f7e95014418b416673a268b7a"},
		{hostQEMU + qemu + "-kernel Image", "e8862e21b8eb6b4bdeeff244dc59d2935c26d92c52d346f06e224fe712267a6"},
		{hostQEMU + qemu + "-kernel Image -initrd initrd", "9af47a8e4d6ac775e05f8a8893f9e383694688719d1bbb4281ed1c25056e0911"},
		{hostQEMU + qemu + "-kernel Image -initrd initrd -append root=/dev/vda2", "22d398e695e776385bc268454587b418dde16e34bc69d9a24fc96abb3050a24e"},
		// qemu_params
		{hostQEMU + "qemu", "cf409055d866eea6c8d5e7862b540ff1cac9b11f125d088587d5ae97a0e3341667cf8fb3983e7377bca5c01d037bd97081ebf3b4dcb648442149749f4d65eeb0"},
		{hostQEMU + "qemu -cpu pmu=off", "cf409055d866eea6c8d5e7862b540ff1cac9b11f125d088587d5ae97a0e3341667cf8fb3983e7377bca5c01d037bd97081ebf3b4dcb648442149749f4d65eeb0"},
		{hostQEMU + "qemu -cpu pmu=on", "8120ef921a987a3f8b9d4bb5e40f8489e2b4fc69c5e1b17b1a9b040884a1211d99b2bddc3fddcc99ec99f4244743fe3dcd3d9020583b47f7b66a2ec66bb897b9"},
		{"--pmu true " + hostQEMU + "qemu -cpu pmu=off", "cf409055d866eea6c8d5e7862b540ff1cac9b11f125d088587d5ae97a0e3341667cf8fb3983e7377bca5c01d037bd97081ebf3b4dcb648442149749f4d65eeb0"},
		{hostQEMU + "qemu -cpu pmu=on,num-pmu-counters=2", "ef4e6f78ea9630f66146b33a405a07b669ef94dd9aca6935d4fd23fea32f98f964241a2f9a9c20c9fcd74e20031c51c4beb8e577873e0348e891ee2d727e2807"},
		// qemu_dtb
		{hostQEMU + strings.Replace(qemu, "sha256", "sha512", 1) + "-dtb output.dtb -bios firmware",
			"3175b3c0c201081ad410defe6c32e145fd77ff03e63518a9f00831b12b6ec2070f743f43f0ff3290902ecebd4e6bea8d5926dca19dc1a06fb8d51d551a4a2b79"},
		// kvmtool_params, kvmtool_measurements
		{"--num-wps 6 --num-bps 6 kvmtool --realm -c 1 -m 512M", "998dfdf6401d69f73ed88ac53d62d5ea2cfac6320b887ce4599aa8671791d4d"},
		{"--num-wps 6 --num-bps 6 kvmtool --realm -c 1 -m 512M --debug --debug-single-step --debug-mmio --force-pci --no-pvtime --vcpu-affinity AFF --disable-mte",
			"998dfdf6401d69f73ed88ac53d62d5ea2cfac6320b887ce4599aa8671791d4d"},
		{"--num-wps 6 --num-bps 6 kvmtool --realm --firmware firmware -c 1 -m 512M",
			"cf37146fce0ad50e1be1a04580c1024e5449b430b0dd96b6ef5c9a2b73767bf50000000000000000000000000000000000000000000000000000000000000000"},
	} {
		a, err := ParseArgs(strings.Fields(tc.args))
		if err != nil {
			t.Fatal(err)
		}
		res, err := Measure(a.Host, a.VMM, a.VMMArgs, in)
		if err != nil {
			t.Fatalf("%s: %v", tc.args, err)
		}
		if got := Padded(res.RIM); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: RIM %s, want %s (realm-measurements' tests)", tc.args, got, tc.want)
		}
	}
}
