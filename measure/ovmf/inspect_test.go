package ovmf

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// firmwareFacts is what ../shared/vectors/README.md says each firmware in
// inputs/ holds, as Inspect must find it.
type firmwareFacts struct {
	file        string
	err         string   // non-empty: Inspect fails with an error containing it
	modules     []string // must be present
	noModules   []string // must be absent
	sevTypes    []string // the SEV metadata section types, in order; nil: no metadata
	hashes      *Area
	verifies    bool
	tdx         bool
	tdxTypes    []string
	rtmr        bool
	store       bool
	vars        bool // the store holds variables (a fresh store is empty)
	secureBoot  bool
	enrolled    []string
	certs       []string // substrings of certificate subjects that must be listed
	version     string
	snpDirect   bool
	tdxRTMRs    bool
	minModules  int
	volumeCount int
}

var amdSevSNPTypes = []string{"SNP_SEC_MEM", "SNP_SEC_MEM", "SNP_SECRETS", "CPUID", "SVSM_CAA", "SNP_SEC_MEM", "SNP_KERNEL_HASHES"}

var firmwareTable = []firmwareFacts{
	{file: "debian12_OVMF.fd",
		modules: []string{"TdxDxe", "AmdSevDxe", "QemuKernelLoaderFsDxe"}, noModules: []string{"TdTcg2Dxe", "SecretDxe"},
		sevTypes: []string{"SNP_SEC_MEM", "SNP_SEC_MEM", "SNP_SECRETS", "CPUID", "SNP_SEC_MEM"},
		tdx:      true, tdxTypes: []string{"BFV", "CFV", "TempMem", "TempMem", "TD_HOB", "TempMem"},
		store: true, minModules: 100, volumeCount: 5},
	{file: "debian12_OVMF_CODE.fd",
		modules: []string{"TdxDxe", "AmdSevDxe"}, noModules: []string{"TdTcg2Dxe", "SecretDxe"},
		sevTypes: []string{"SNP_SEC_MEM", "SNP_SEC_MEM", "SNP_SECRETS", "CPUID", "SNP_SEC_MEM"},
		tdx:      true, minModules: 100, volumeCount: 4},
	{file: "debian12_OVMF_CODE_4M.fd",
		modules: []string{"AmdSevDxe"}, noModules: []string{"TdxDxe", "TdTcg2Dxe", "SecretDxe"},
		minModules: 100, volumeCount: 4},
	{file: "debian-sid_OVMF.amdsev.fd",
		modules: []string{"SecretDxe", "AmdSevDxe", "QemuKernelLoaderFsDxe"}, noModules: []string{"TdxDxe", "TdTcg2Dxe"},
		sevTypes: amdSevSNPTypes, hashes: &Area{GPA: 0x810c00, Size: 0x400}, verifies: true,
		tdx: true, store: true, version: "2026.08+ds-2", snpDirect: true, minModules: 80, volumeCount: 5},
	{file: "debian-sid_OVMF.inteltdx.ms.fd",
		modules: []string{"TdxDxe", "TdTcg2Dxe"}, noModules: []string{"SecretDxe"},
		sevTypes: []string{"SNP_SEC_MEM", "SNP_SEC_MEM", "SNP_SECRETS", "CPUID", "SVSM_CAA", "SNP_SEC_MEM"},
		tdx:      true, rtmr: true, store: true, vars: true, secureBoot: true, enrolled: []string{"PK", "KEK", "db", "dbx"},
		certs:   []string{"Microsoft Corporation KEK CA 2011", "Microsoft Windows Production PCA 2011", "Microsoft Corporation UEFI CA 2011"},
		version: "2026.08+ds-2", tdxRTMRs: true, minModules: 80, volumeCount: 5},
	{file: "debian-sid_OVMF.fd",
		modules: []string{"TdxDxe", "TdTcg2Dxe", "AmdSevDxe", "QemuKernelLoaderFsDxe"}, noModules: []string{"SecretDxe"},
		// The trap: a hashes table, but nothing that checks the blobs.
		sevTypes: amdSevSNPTypes, hashes: &Area{GPA: 0x810c00, Size: 0x400}, verifies: false,
		tdx: true, rtmr: true, store: true, vars: true, version: "2026.08+ds-2", tdxRTMRs: true, minModules: 100, volumeCount: 5},
	{file: "ovmf_AmdSev_suffix.bin",
		sevTypes: []string{"SNP_SEC_MEM", "SNP_SEC_MEM", "SNP_SECRETS", "CPUID", "SVSM_CAA", "SNP_KERNEL_HASHES", "SNP_SEC_MEM"},
		hashes:   &Area{GPA: 0x810c00, Size: 0x400}, tdx: true},
	{file: "ovmf_OvmfX64_suffix.bin",
		sevTypes: []string{"SNP_SEC_MEM", "SNP_SEC_MEM", "SNP_SECRETS", "CPUID", "SVSM_CAA", "SNP_SEC_MEM"}, tdx: true},
	{file: "gce_fake_CleanExample_0x1000.bin", sevTypes: []string{"SNP_SEC_MEM", "CPUID", "SNP_SECRETS"}, tdx: true},
	{file: "gce_fake_UnsignedSnp.bin", sevTypes: []string{"SNP_SEC_MEM", "CPUID", "SNP_SECRETS"}},
	{file: "tiny-kernel.bin", err: "not a UEFI firmware image"},
	{file: "cca-fw.bin", err: "not a UEFI firmware image"},
}

func TestInspectFirmwares(t *testing.T) {
	for _, tc := range firmwareTable {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel() // also checks that concurrent walks do not disturb each other
			info, err := Inspect(testenv.ReadVector(t, "inputs/"+tc.file))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Inspect error = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			for _, m := range tc.modules {
				if !slices.Contains(info.Modules, m) {
					t.Errorf("module %s: got absent, want present", m)
				}
			}
			for _, m := range tc.noModules {
				if slices.Contains(info.Modules, m) {
					t.Errorf("module %s: got present, want absent", m)
				}
			}
			if !slices.IsSorted(info.Modules) || len(slices.Compact(slices.Clone(info.Modules))) != len(info.Modules) {
				t.Errorf("modules are not sorted and unique: %v", info.Modules)
			}
			if len(info.Modules) < tc.minModules {
				t.Errorf("got %d modules, want at least %d", len(info.Modules), tc.minModules)
			}
			if len(info.Volumes) != tc.volumeCount {
				t.Errorf("got %d volumes, want %d: %+v", len(info.Volumes), tc.volumeCount, info.Volumes)
			}
			var types []string
			for _, s := range info.SEVSections {
				types = append(types, s.Type)
			}
			if diff := cmp.Diff(tc.sevTypes, types); diff != "" {
				t.Errorf("SEV section types (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.hashes, info.HashesTable); diff != "" {
				t.Errorf("hashes table (-want +got):\n%s", diff)
			}
			if info.VerifiesDirectBoot != tc.verifies || info.DirectBootEvidence == "" {
				t.Errorf("VerifiesDirectBoot = %v (%q), want %v with evidence", info.VerifiesDirectBoot, info.DirectBootEvidence, tc.verifies)
			}
			if (info.TDX != nil) != tc.tdx {
				t.Errorf("TDX metadata present = %v, want %v", info.TDX != nil, tc.tdx)
			}
			if tc.tdxTypes != nil {
				var got []string
				for _, s := range info.TDX.Sections {
					got = append(got, s.Type)
				}
				if diff := cmp.Diff(tc.tdxTypes, got); diff != "" {
					t.Errorf("TDX section types (-want +got):\n%s", diff)
				}
			}
			if info.MeasuresRTMR != tc.rtmr || info.RTMREvidence == "" {
				t.Errorf("MeasuresRTMR = %v (%q), want %v with evidence", info.MeasuresRTMR, info.RTMREvidence, tc.rtmr)
			}
			sb := info.SecureBoot
			if sb.VariableStore != tc.store || sb.Enabled != tc.secureBoot {
				t.Errorf("Secure Boot: store %v enabled %v (%s), want store %v enabled %v", sb.VariableStore, sb.Enabled, sb.Evidence, tc.store, tc.secureBoot)
			}
			if diff := cmp.Diff(tc.enrolled, sb.Enrolled); diff != "" {
				t.Errorf("enrolled (-want +got):\n%s", diff)
			}
			for _, c := range tc.certs {
				if !slices.ContainsFunc(sb.Certificates, func(x Certificate) bool { return strings.Contains(x.Subject, c) }) {
					t.Errorf("no enrolled certificate with subject %q; got %+v", c, sb.Certificates)
				}
			}
			if tc.vars != (len(info.Variables) > 0) {
				t.Errorf("got %d variables, want some: %v", len(info.Variables), tc.vars)
			}
			if info.Edk2Version != tc.version {
				t.Errorf("Edk2Version = %q, want %q", info.Edk2Version, tc.version)
			}
			if info.Vouches.SNPDirectBoot != tc.snpDirect || info.Vouches.TDXRTMRs != tc.tdxRTMRs {
				t.Errorf("Vouches = %+v, want snp_direct_boot %v, tdx_rtmrs %v", info.Vouches, tc.snpDirect, tc.tdxRTMRs)
			}
		})
	}
}

// TestInspectMicrosoftKeys checks the Secure Boot databases of the IntelTdx
// .ms image in detail: which variables hold what, and that Variables gives
// the raw data the signature lists were read from.
func TestInspectMicrosoftKeys(t *testing.T) {
	fw := testenv.ReadVector(t, "inputs/debian-sid_OVMF.inteltdx.ms.fd")
	vars, err := Variables(fw)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Variable{}
	for _, v := range vars {
		byName[v.Name] = v
	}
	for _, tc := range []struct {
		name string
		guid GUID
	}{{"PK", GlobalVariableGUID}, {"KEK", GlobalVariableGUID}, {"db", ImageSecurityDatabaseGUID}, {"dbx", ImageSecurityDatabaseGUID}} {
		v, ok := byName[tc.name]
		if !ok {
			t.Errorf("variable %s missing; have %d variables", tc.name, len(vars))
			continue
		}
		if v.GUID != tc.guid {
			t.Errorf("%s GUID = %s, want %s", tc.name, v.GUID, tc.guid)
		}
		// Authenticated, time-based (0x20), boot service, runtime, non-volatile.
		if v.Attributes&0x27 != 0x27 {
			t.Errorf("%s attributes = %#x, want NV|BS|RT|TIME_BASED_AUTH (0x27) set", tc.name, v.Attributes)
		}
		// The data is a run of EFI_SIGNATURE_LISTs that exactly fills it.
		n := 0
		for b := v.Data; len(b) > 0; n++ {
			size := binary.LittleEndian.Uint32(b[16:])
			if size < 28 || int(size) > len(b) {
				t.Fatalf("%s: signature list %d size %d does not fit %d bytes", tc.name, n, size, len(b))
			}
			b = b[size:]
		}
		if n == 0 {
			t.Errorf("%s has no signature list", tc.name)
		}
	}
	info, err := Inspect(fw)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, c := range info.SecureBoot.Certificates {
		count[c.Variable]++
		if len(c.SHA256) != 64 || c.Issuer == "" {
			t.Errorf("certificate %q: sha256 %q issuer %q, want a digest and an issuer", c.Subject, c.SHA256, c.Issuer)
		}
	}
	if count["PK"] != 1 || count["KEK"] < 2 || count["db"] < 2 {
		t.Errorf("certificates per variable = %v, want 1 PK, 2+ KEK, 2+ db", count)
	}
	if info.SecureBoot.Hashes["dbx"] < 10 {
		t.Errorf("dbx SHA-256 entries = %d, want the revocation list (10+)", info.SecureBoot.Hashes["dbx"])
	}
}

// TestVariablesCodeOnly: a CODE image has no variable store.
func TestVariablesCodeOnly(t *testing.T) {
	vars, err := Variables(testenv.ReadVector(t, "inputs/debian12_OVMF_CODE.fd"))
	if err != nil || vars != nil {
		t.Errorf("Variables(OVMF_CODE.fd) = %d variables, %v; want none and no error", len(vars), err)
	}
}

// TestInspectDeterministic: two runs, one after the other and one while
// another inspection runs, give the same result.
func TestInspectDeterministic(t *testing.T) {
	fw := testenv.ReadVector(t, "inputs/debian-sid_OVMF.fd")
	first, err := Inspect(fw)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make([]*Info, 2)
	errs := make([]error, 2)
	for i := range results {
		wg.Add(1)
		go func() { defer wg.Done(); results[i], errs[i] = Inspect(fw) }()
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if diff := cmp.Diff(first, results[i]); diff != "" {
			t.Errorf("run %d differs (-first +got):\n%s", i, diff)
		}
	}
}

// TestInspectCorrupt: damaged images give errors, not panics or results.
func TestInspectCorrupt(t *testing.T) {
	fw := testenv.ReadVector(t, "inputs/debian-sid_OVMF.amdsev.fd")
	dxe := bytes.Index(fw, []byte("_FVH"))
	tests := []struct {
		name   string
		mutate func([]byte) []byte
		want   string
	}{
		{"volume length beyond the image", func(b []byte) []byte {
			second := dxe + 4 + bytes.Index(b[dxe+4:], []byte("_FVH")) - 40
			binary.LittleEndian.PutUint64(b[second+32:], 1<<40)
			return b
		}, "volume length"},
		{"truncated in the middle", func(b []byte) []byte { return b[:len(b)/2] }, ""},
		{"SEV metadata signature", func(b []byte) []byte {
			i := bytes.LastIndex(b, []byte("ASEV"))
			copy(b[i:], "XSEV")
			return b
		}, "ASEV"},
		{"LZMA size beyond the budget", func(b []byte) []byte {
			// The first LZMA stream: properties 0x5d, dictionary size, then the size.
			i := bytes.Index(b, []byte{0x5d, 0x00, 0x00, 0x00, 0x01})
			binary.LittleEndian.PutUint64(b[i+5:], 1<<40)
			return b
		}, "limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Inspect(tc.mutate(bytes.Clone(fw)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Inspect error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func FuzzInspect(f *testing.F) {
	for _, file := range []string{"inputs/ovmf_AmdSev_suffix.bin", "inputs/gce_fake_UnsignedSnp.bin"} {
		if d := testenv.Vectors(f); d != "" {
			f.Add(testenv.ReadVector(f, file))
		}
	}
	if d := testenv.Vectors(f); d != "" {
		// A small real volume: the last one of Debian 12's OVMF (SECFV, 3 files) with the footer.
		b := testenv.ReadVector(f, "inputs/debian12_OVMF_CODE.fd")
		f.Add(b[0x1ac000:])
		// The start of a variable store.
		f.Add(testenv.ReadVector(f, "inputs/debian-sid_OVMF.inteltdx.ms.fd")[:0x4000])
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := Inspect(b)
		if err == nil && info.Size != len(b) {
			t.Errorf("Size = %d, want %d", info.Size, len(b))
		}
		Variables(b)
	})
}
