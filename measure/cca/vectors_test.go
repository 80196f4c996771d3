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

// TestToolExpectations checks QEMU realms whose RIM realm-measurements'
// own tests assert (tests/cmdline.rs, qemu_measurements) for its
// testdata/linux.bin (inputs/cca-linux.bin) and "FW CONTENT": direct
// kernel boot, and -bios with -kernel (the kernel passes through fw_cfg,
// outside the RIM). The tool's QEMU DTB depends on the memory, vCPUs,
// command line and initrd only, so it is the vector's DTB for 2 vCPUs and
// 1 GiB. The tool's test compares a 63-digit prefix.
func TestToolExpectations(t *testing.T) {
	const common = "--num-wps 6 --num-bps 6 --ipa-bits 52 --pmu-num-ctrs 6 qemu -M confidential-guest-support=rme0 " +
		"-object rme-guest,id=rme0,measurement-algorithm=sha256 -cpu host -M virt -enable-kvm -smp 2 -m 1G -nographic "
	in := Inputs{Kernel: testenv.ReadVector(t, "inputs/cca-linux.bin"), Firmware: testenv.ReadVector(t, "inputs/cca-fw.bin"),
		DTB: testenv.ReadVector(t, "inputs/cca/qemu-k-i-2cpu-1G-sha256.dtb")}
	for _, tc := range []struct{ args, want string }{
		{"-kernel Image", "e8862e21b8eb6b4bdeeff244dc59d2935c26d92c52d346f06e224fe712267a6"},
		{"-bios firmware -kernel Image", "cbf533a94009dfa6b83016a89b428d1d910fb3593856bb386d7b2bd07a1bc834"},
	} {
		a, err := ParseArgs(strings.Fields(common + tc.args))
		if err != nil {
			t.Fatal(err)
		}
		res, err := Measure(a.Host, a.VMM, a.VMMArgs, in)
		if err != nil {
			t.Fatalf("%s: %v", tc.args, err)
		}
		if got := Padded(res.RIM); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: RIM %s, want %s…", tc.args, got, tc.want)
		}
	}
}
