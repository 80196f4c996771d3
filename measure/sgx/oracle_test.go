package sgx

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// selftestDir is where the kernel's SGX selftest lives in the source tree.
const selftestDir = "tools/testing/selftests/sgx"

// oracleHeaps are the heap sizes the oracle measures an enclave ELF at:
// the selftest's default (one page), two pages, the heaps either side of
// the first power-of-two enclave size past the ELF's pages (one fills it,
// the next needs twice the size), 64 KiB and 1 MiB.
func oracleHeaps(t *testing.T, elf []byte) []uint64 {
	t.Helper()
	l, err := SelftestLayout(elf, PageSize)
	if err != nil {
		t.Fatalf("the selftest's enclave ELF: %v", err)
	}
	end := l.Segments[len(l.Segments)-1].Offset // the ELF's pages end where the heap starts
	fill := l.Size - end
	if fill == PageSize {
		fill = 2*l.Size - end
	}
	return []uint64{PageSize, 2 * PageSize, fill, fill + PageSize, 0x10000, 0x100000}
}

// selftestSource extracts the kernel SGX selftest and the headers it
// includes from Debian's linux-source tarball into dir and returns the
// source tree's root. It fails in CI (skips elsewhere) when the package
// is not installed.
func selftestSource(ctx context.Context, t *testing.T, dir string) string {
	t.Helper()
	tarballs, _ := filepath.Glob("/usr/src/linux-source-*.tar.xz")
	if len(tarballs) == 0 {
		if testenv.InCI() {
			t.Fatal("/usr/src/linux-source-*.tar.xz not found: apt-get install linux-source")
		}
		t.Skip("/usr/src/linux-source-*.tar.xz not found: apt-get install linux-source")
	}
	tarball := tarballs[len(tarballs)-1]
	testenv.Tool(t, "tar", "tar")
	testenv.Tool(t, "xz", "xz-utils")
	top := strings.TrimSuffix(filepath.Base(tarball), ".tar.xz")
	// One pass over the tarball (xz is read to its end either way).
	cmd := exec.CommandContext(ctx, "tar", "-xJf", tarball, "-C", dir, "--wildcards",
		top+"/"+selftestDir+"/*", top+"/tools/include/*",
		top+"/arch/x86/include/asm/sgx.h", top+"/arch/x86/include/asm/enclu.h", top+"/arch/x86/include/uapi/asm/sgx.h")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("extracting the SGX selftest from %s: %v\n%s", tarball, err, out)
	}
	return filepath.Join(dir, top)
}

// oracleLine is one line of the driver's output.
type oracleLine struct {
	heap                uint64
	mrenclave, mrsigner string
	sigstruct           []byte
}

// runOracle builds the selftest's enclave and our driver around its
// encl_load and encl_measure, runs the driver with the shim for
// /dev/sgx_enclave at the oracleHeaps, and returns the enclave ELF, the
// selftest's signing key, the heaps and the driver's lines.
func runOracle(t *testing.T) (elf []byte, key *rsa.PrivateKey, heaps []uint64, lines []oracleLine) {
	t.Helper()
	gcc := testenv.Tool(t, "gcc", "gcc")
	if _, err := os.Stat("/usr/include/openssl/evp.h"); err != nil {
		if testenv.InCI() {
			t.Fatal("OpenSSL headers not found: apt-get install libssl-dev")
		}
		t.Skip("OpenSSL headers not found: apt-get install libssl-dev")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	work := t.TempDir()
	root := selftestSource(ctx, t, work)
	src := filepath.Join(root, selftestDir)
	oracle, err := filepath.Abs("testdata/oracle")
	if err != nil {
		t.Fatal(err)
	}
	run := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, gcc, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gcc %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	include := "-I" + filepath.Join(root, "tools/include")
	elfPath := filepath.Join(work, "test_encl.elf")
	// As the selftest's Makefile builds test_encl.elf.
	run(src, "-Wall", "-static", "-nostdlib", "-nostartfiles", "-fPIC", "-fno-stack-protector", "-mrdrnd", include,
		"-T", "test_encl.lds", "test_encl.c", "test_encl_bootstrap.S", "-o", elfPath, "-Wl,--build-id=none")
	shim := filepath.Join(work, "sgxshim.so")
	run(oracle, "-Wall", "-shared", "-fPIC", "-o", shim, "sgxshim.c", "-ldl")
	driver := filepath.Join(work, "driver")
	run(src, "-Wall", "-g", include, "-I.", "-fPIC", "-z", "noexecstack", "-o", driver,
		filepath.Join(oracle, "driver.c"), "load.c", "sigstruct.c", "sign_key.S", "-lcrypto")

	if elf, err = os.ReadFile(elfPath); err != nil {
		t.Fatal(err)
	}
	heaps = oracleHeaps(t, elf)
	args := []string{elfPath}
	for _, h := range heaps {
		args = append(args, strconv.FormatUint(h, 10))
	}
	cmd := exec.CommandContext(ctx, driver, args...)
	cmd.Env = append(os.Environ(), "LD_PRELOAD="+shim)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the selftest driver: %v\n%s", err, stderr.Bytes())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 {
			t.Fatalf("driver line %q: want HEAP MRENCLAVE MRSIGNER SIGSTRUCT", sc.Text())
		}
		h, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			t.Fatalf("driver line %q: %v", sc.Text(), err)
		}
		ss, err := hex.DecodeString(f[3])
		if err != nil {
			t.Fatalf("driver line %q: %v", sc.Text(), err)
		}
		lines = append(lines, oracleLine{h, f[1], f[2], ss})
	}
	if len(lines) != len(heaps) {
		t.Fatalf("the driver printed %d lines for %d heap sizes:\n%s", len(lines), len(heaps), out)
	}

	pemBytes, err := os.ReadFile(filepath.Join(src, "sign_key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(pemBytes)
	if blk == nil {
		t.Fatal("sign_key.pem holds no PEM block")
	}
	if key, err = x509.ParsePKCS1PrivateKey(blk.Bytes); err != nil {
		t.Fatalf("sign_key.pem: %v", err)
	}
	return elf, key, heaps, lines
}

// TestSelftestOracle builds the Linux kernel's SGX selftest enclave and
// runs the selftest's own encl_load and encl_measure on it (through a
// stand-in for /dev/sgx_enclave) for several heap sizes: our MRENCLAVE
// from the same ELF and heap size, our SIGSTRUCT signed with the same key,
// and its MRSIGNER must be those of the selftest, byte for byte.
func TestSelftestOracle(t *testing.T) {
	elf, key, heaps, lines := runOracle(t)
	t.Logf("heaps %#x", heaps)
	sizes := map[uint64]bool{}
	for i, o := range lines {
		if o.heap != heaps[i] {
			t.Fatalf("driver line %d is for heap %#x, want %#x", i, o.heap, heaps[i])
		}
		l, err := SelftestLayout(elf, o.heap)
		if err != nil {
			t.Fatalf("heap %#x: SelftestLayout: %v", o.heap, err)
		}
		sizes[l.Size] = true
		mr, err := l.MREnclave()
		if err != nil {
			t.Fatalf("heap %#x: MREnclave: %v", o.heap, err)
		}
		if got := hex.EncodeToString(mr[:]); got != o.mrenclave {
			t.Errorf("heap %#x: MRENCLAVE = %s, the selftest's encl_measure = %s", o.heap, got, o.mrenclave)
		}
		ss := SelftestSigStruct(mr)
		if err := ss.Sign(key); err != nil {
			t.Fatalf("heap %#x: Sign: %v", o.heap, err)
		}
		if got := ss.Marshal(); !bytes.Equal(got, o.sigstruct) {
			t.Errorf("heap %#x: SIGSTRUCT differs from the selftest's at %d bytes", o.heap, countDiff(got, o.sigstruct))
		}
		signer := ss.MRSigner()
		if got := hex.EncodeToString(signer[:]); got != o.mrsigner {
			t.Errorf("heap %#x: MRSIGNER = %s, the selftest's = %s", o.heap, got, o.mrsigner)
		}
		parsed, err := ParseSigStruct(o.sigstruct)
		if err != nil {
			t.Fatalf("heap %#x: parsing the selftest's SIGSTRUCT: %v", o.heap, err)
		}
		if diff := cmp.Diff(ss, parsed); diff != "" {
			t.Errorf("heap %#x: the selftest's SIGSTRUCT parsed (-ours +parsed):\n%s", o.heap, diff)
		}
		if err := parsed.Verify(); err != nil {
			t.Errorf("heap %#x: the selftest's SIGSTRUCT: %v", o.heap, err)
		}
	}
	if len(sizes) < 3 {
		t.Errorf("the heaps gave enclaves of %d sizes (%v), want at least 3: ECREATE's size is not checked", len(sizes), sizes)
	}
}

// countDiff counts the bytes at which a and b differ (or their length
// difference).
func countDiff(a, b []byte) int {
	n := max(len(a), len(b)) - min(len(a), len(b))
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}
