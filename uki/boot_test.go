package uki_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/internal/testkinds"
	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/measure/tdx"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-eventlog/proto/state"
	"github.com/google/go-eventlog/register"
	"github.com/google/go-eventlog/tcg"
)

// bootPCRs boots disk (raw, with an ESP holding \EFI\BOOT\BOOTX64.EFI)
// under QEMU TCG with Debian's OVMF (4M, Secure Boot off) and a software
// TPM 2.0 (swtpm, on a unix socket the test starts, -device tpm-crb),
// without a network, and returns the SHA-256 PCRs the guest's
// testdata/pcrinit printed from /sys/class/tpm/tpm0/pcr-sha256/N and the
// firmware's event log, replayed by go-eventlog against the guest's
// SHA-256 and SHA-384 PCRs, and the guest's TPM quote.
func bootPCRs(t *testing.T, disk, code, vars string) (console, *tcg.EventLog) {
	t.Helper()
	qemu := testenv.Tool(t, "qemu-system-x86_64", "qemu-system-x86")
	swtpm := testenv.Tool(t, "swtpm", "swtpm")
	dir := t.TempDir()
	v := filepath.Join(dir, "vars.fd")
	b, err := os.ReadFile(vars)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(v, b, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "swtpm.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tpm := exec.CommandContext(ctx, swtpm, "socket", "--tpm2", "--tpmstate", "dir="+dir, "--ctrl", "type=unixio,path="+sock, "--terminate")
	var tpmLog bytes.Buffer
	tpm.Stdout, tpm.Stderr = &tpmLog, &tpmLog
	if err := tpm.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tpm.Process.Kill(); _ = tpm.Wait() }()
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	q := exec.CommandContext(ctx, qemu, append(qemuArgs(code, v, disk),
		"-chardev", "socket,id=chrtpm,path="+sock, "-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-crb,tpmdev=tpm0")...)
	out, err := q.CombinedOutput()
	if err != nil {
		t.Fatalf("qemu: %v\n%s\nswtpm: %s", err, out, tpmLog.String())
	}
	con, err := parseConsole(out)
	if err != nil {
		t.Fatalf("%v; console:\n%s", err, out)
	}
	el, err := tcg.ParseEventLog(con.log, tcg.ParseOpts{})
	if err != nil {
		t.Fatalf("go-eventlog does not parse the guest's event log: %v", err)
	}
	for _, bank := range []struct {
		name string
		alg  state.HashAlgo
		hash crypto.Hash
	}{{"sha256", state.HashAlgo_SHA256, crypto.SHA256}, {"sha384", state.HashAlgo_SHA384, crypto.SHA384}} {
		pcrs := register.PCRBank{TCGHashAlgo: bank.alg}
		for n := range 24 {
			d, _ := hex.DecodeString(con.pcrs[bank.name][n])
			pcrs.PCRs = append(pcrs.PCRs, register.PCR{Index: n, Digest: d, DigestAlg: bank.hash})
		}
		if _, err := el.Verify(pcrs.MRs()); err != nil {
			t.Fatalf("the guest's event log does not replay to its %s PCRs (go-eventlog): %v", bank.name, err)
		}
	}
	return con, el
}

// qemuArgs are QEMU's arguments for a TCG boot of disk (a snapshot) with
// the firmware code and a writable copy of its variable store, without a
// network, the serial console on stdout, and no reboot.
func qemuArgs(code, vars, disk string) []string {
	return []string{"-machine", "q35,accel=tcg", "-m", "1024", "-display", "none", "-serial", "stdio",
		"-monitor", "none", "-nic", "none", "-no-reboot",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + code,
		"-drive", "if=pflash,format=raw,unit=1,file=" + vars,
		"-drive", "file=" + disk + ",format=raw,if=virtio,snapshot=on"}
}

// console is what testdata/pcrinit printed: the PCR banks, the event
// log and the TPM quote.
type console struct {
	pcrs  map[string]map[int]string // bank, index: hex
	log   []byte
	quote map[string][]byte // attest, signature, akpub
}

// quoteParts are the QUOTE lines pcrinit prints.
var quoteParts = []string{"attest", "signature", "akpub"}

// parseConsole reads pcrinit's lines from a serial console's output: "PCR
// bank n hex" (24 per bank), "LOG i/n hex" chunks, "LOGSUM length
// sha256", "QUOTE part hex sha256" (attest, signature, akpub) and "PCR
// done". A chunk or quote part that is missing or damaged (a console line
// the kernel or firmware wrote into) is an error naming it, never a
// shorter log or another quote.
func parseConsole(out []byte) (console, error) {
	c := console{pcrs: map[string]map[int]string{"sha256": {}, "sha384": {}}, quote: map[string][]byte{}}
	pcr := regexp.MustCompile(`^PCR (sha256|sha384) (\d+) ([0-9a-f]+)\r?$`)
	chunk := regexp.MustCompile(`^LOG (\d+)/(\d+) ([0-9a-f]*)\r?$`)
	sum := regexp.MustCompile(`^LOGSUM (\d+) ([0-9a-f]{64})\r?$`)
	quote := regexp.MustCompile(`^QUOTE (attest|signature|akpub) ([0-9a-f]+) ([0-9a-f]{64})\r?$`)
	var quoteErr string
	chunks := map[int][]byte{}
	total, length, digest, done := -1, -1, "", false
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		switch m := pcr.FindStringSubmatch(l); {
		case m != nil:
			n, _ := strconv.Atoi(m[2])
			c.pcrs[m[1]][n] = m[3]
			continue
		}
		if m := chunk.FindStringSubmatch(l); m != nil {
			i, _ := strconv.Atoi(m[1])
			total, _ = strconv.Atoi(m[2])
			chunks[i], _ = hex.DecodeString(m[3])
		} else if m := sum.FindStringSubmatch(l); m != nil {
			length, _ = strconv.Atoi(m[1])
			digest = m[2]
		} else if m := quote.FindStringSubmatch(l); m != nil {
			if b, err := hex.DecodeString(m[2]); err == nil && fmt.Sprintf("%x", sha256.Sum256(b)) == m[3] {
				c.quote[m[1]] = b
			}
		} else if e, ok := strings.CutPrefix(l, "QUOTE error "); ok {
			quoteErr = e
		}
		done = done || strings.HasPrefix(l, "PCR done")
	}
	if !done {
		return c, fmt.Errorf("the guest did not finish (no \"PCR done\")")
	}
	for bank, p := range c.pcrs {
		if len(p) != 24 {
			return c, fmt.Errorf("the guest printed %d %s PCRs, want 24", len(p), bank)
		}
	}
	if total < 1 || length < 0 {
		return c, fmt.Errorf("the guest printed no event log (or its LOGSUM line was damaged)")
	}
	for i := range total {
		b, ok := chunks[i]
		if !ok {
			return c, fmt.Errorf("event log chunk %d of %d is missing or damaged on the console", i, total)
		}
		c.log = append(c.log, b...)
	}
	if got := fmt.Sprintf("%x", sha256.Sum256(c.log)); len(c.log) != length || got != digest {
		return c, fmt.Errorf("event log of %d bytes, sha256 %s; the guest printed %d bytes, sha256 %s", len(c.log), got, length, digest)
	}
	if quoteErr != "" {
		return c, fmt.Errorf("the guest could not quote: %s", quoteErr)
	}
	for _, p := range quoteParts {
		if c.quote[p] == nil {
			return c, fmt.Errorf("the quote's %s is missing or damaged on the console (its sha256 does not match)", p)
		}
	}
	return c, nil
}

// TestUKIBootPCRs: a UKI built from Debian 12's stub, Debian's cloud
// kernel 6.1 (its TPM CRB driver built in) and an initrd with
// testdata/pcrinit, on a disk's ESP, booted with Debian 12's OVMF (Secure
// Boot off) and swtpm: the guest's PCRs 4, 7, 9 and 11 are the measure
// block's pcr4, pcr7, pcr9 and pcr11; the guest's TPM quote of its PCRs
// checks against the build's release with cocobuild check and
// tpm2_checkquote (checkQuote).
func TestUKIBootPCRs(t *testing.T) {
	m, pcrs, b := bootUKI(t, false)
	for _, n := range []int{4, 7, 9, 11} {
		if got, want := pcrs[n], fmt.Sprint(m.Values[fmt.Sprintf("pcr%d", n)]); got != want {
			t.Errorf("guest PCR %d = %s, want the measure block's %s", n, got, want)
		}
	}
	t.Run("quote", func(t *testing.T) { checkQuote(t, b.boot) })
	// The TD model's RTMR1 events of the same boot (measure/tdx, as the
	// measure "tdx" block computes them with uki and disk) are OVMF's PCR 4
	// and 5 events (the same edk2 code measures them, through TCG2 here,
	// the CC protocol in a TD): their SHA-384 digests, separators aside,
	// in the guest's log order.
	disk, err := os.ReadFile(b.disk)
	if err != nil {
		t.Fatal(err)
	}
	tdvf, err := os.ReadFile(testenv.VectorFile(t, "inputs/debian-sid_OVMF.fd"))
	if err != nil {
		t.Fatal(err)
	}
	for _, cc := range []bool{false, true} {
		res, err := tdx.Measure(tdvf, tdx.Options{UKI: &tdx.UKIBoot{UKI: b.uki, Disk: disk[:tdx.GPTHeadSize], FailedBootOptions: 1, LinuxCC: cc}})
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		var rtmr2 int
		for _, e := range res.Events {
			if e.RTMR == 1 && e.Type != tdx.EvSeparator {
				want = append(want, fmt.Sprintf("%#x %x", uint32(e.Type), e.Digest[:]))
			}
			if e.RTMR == 2 {
				rtmr2++
			}
		}
		var got []string
		for _, e := range b.log.Events(register.HashSHA384) {
			if (e.Index == 4 || e.Index == 5) && uint32(e.Type) != uint32(tdx.EvSeparator) {
				got = append(got, fmt.Sprintf("%#x %x", uint32(e.Type), e.Digest))
			}
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("LinuxCC %v: RTMR1 events (type, SHA-384) of the TD model vs the guest's PCR 4 and 5 events (-model +guest):\n%s", cc, d)
		}
		if want := map[bool]int{false: 0, true: 2}[cc]; rtmr2 != want {
			t.Errorf("LinuxCC %v: %d RTMR2 events, want %d (LoadOptions and the initrd with a Linux >= 6.9 stub)", cc, rtmr2, want)
		}
		if res.RTMR[0].Computable || !res.RTMR[1].Computable || !res.RTMR[2].Computable {
			t.Errorf("LinuxCC %v: RTMR0-2 computable %v %v %v, want false (boot variables of a disk boot) true true", cc, res.RTMR[0].Computable, res.RTMR[1].Computable, res.RTMR[2].Computable)
		}
		// The expected CCEL parses with go-eventlog and replays to the
		// model's RTMR1-3 (RTMR0, not computable, has no events in it), and
		// not to another RTMR1.
		var bank register.RTMRBank
		for i := range 4 {
			d := res.RTMR[i].Value
			if i == 0 {
				d = tdx.Replay()
			}
			bank.RTMRs = append(bank.RTMRs, register.RTMR{Index: i, Digest: d[:]})
		}
		if _, err := tcg.ParseAndReplay(res.EventLog(), bank.MRs(), tcg.ParseOpts{}); err != nil {
			t.Errorf("LinuxCC %v: go-eventlog does not replay the expected CCEL: %v", cc, err)
		}
		bank.RTMRs[1].Digest = bytes.Repeat([]byte{1}, 48)
		if _, err := tcg.ParseAndReplay(res.EventLog(), bank.MRs(), tcg.ParseOpts{}); err == nil {
			t.Errorf("LinuxCC %v: go-eventlog replays the CCEL to another RTMR1", cc)
		}
	}
}

// booted is what bootUKI built and read.
type booted struct {
	disk string
	uki  []byte
	log  *tcg.EventLog // replayed against the guest's PCRs
	boot ukiBoot
}

// TestUKISecureBoot: the same UKI signed with the recipe's own db key
// (kernel too), booted with Debian's OVMF_CODE_4M.secboot.fd and the
// variable store the uki block writes (PK, KEK, db: the db certificate):
// the firmware verifies and starts it, the guest prints its PCRs, and PCR
// 4, 7, 9 and 11 are the measure block's with secure_boot = true.
func TestUKISecureBoot(t *testing.T) {
	m, pcrs, _ := bootUKI(t, true)
	for _, n := range []int{4, 7, 9, 11} {
		if got, want := pcrs[n], fmt.Sprint(m.Values[fmt.Sprintf("pcr%d", n)]); got != want {
			t.Errorf("guest PCR %d = %s, want the measure block's %s", n, got, want)
		}
	}
}

// ukiBoot is a boot of the test's UKI disk.
type ukiBoot struct {
	// rebuild writes the same recipe (same nonce) with another
	// failed_boot_options and builds it into a directory name beside out.
	rebuild func(name string, failed int) (*manifest.Measurement, string)
	out     string // the build output
	cache   string // the build cache (the development key lies below it)
	nonce   []byte // the nonce on the UKI's command line, which the guest quotes with
	con     console
}

// bootUKI builds the UKI disk (signed, with its variable store, when sb)
// with a fresh nonce on its command line (cocobuild.nonce=HEX, which
// testdata/pcrinit quotes with) and a release signed with the development
// key, and boots it; it returns the tpm measurement and the guest's PCRs.
func bootUKI(t *testing.T, sb bool) (*manifest.Measurement, map[int]string, booted) {
	m, out, boot := buildUKI(t, sb)
	code := need(t, "/usr/share/OVMF/OVMF_CODE_4M.fd", "ovmf")
	vars := need(t, "/usr/share/OVMF/OVMF_VARS_4M.fd", "ovmf")
	if sb {
		code = need(t, "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", "ovmf")
		vars = filepath.Join(out, "uki", "guest", "OVMF_VARS.fd")
	}
	disk := filepath.Join(out, "disk", "boot", "disk.raw")
	con, log := bootPCRs(t, disk, code, vars)
	pcrs := con.pcrs["sha256"]
	for n := range 24 {
		t.Logf("guest PCR %d %s", n, pcrs[n])
	}
	img, err := os.ReadFile(filepath.Join(out, "uki", "guest", "uki.efi"))
	if err != nil {
		t.Fatal(err)
	}
	boot.con = con
	return m, pcrs, booted{disk: disk, uki: img, log: log, boot: boot}
}

// buildUKI builds the boot test's recipe (see bootUKI) and returns its tpm
// measurement and build output.
func buildUKI(t *testing.T, sb bool) (*manifest.Measurement, string, ukiBoot) {
	stub := need(t, stubPath, "systemd-boot-efi")
	code := need(t, "/usr/share/OVMF/OVMF_CODE_4M.fd", "ovmf")
	vars := need(t, "/usr/share/OVMF/OVMF_VARS_4M.fd", "ovmf")
	if sb {
		code = need(t, "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", "ovmf")
	}
	cpio := testenv.Tool(t, "cpio", "cpio")
	kernel := testenv.VectorFile(t, "inputs/vmlinuz-6.1.0-56-cloud-amd64")
	dir := t.TempDir()

	// The initrd: /init is testdata/pcrinit, static.
	root := filepath.Join(dir, "root")
	for _, d := range []string{"proc", "sys", "dev"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	gb := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(root, "init"), "./testdata/pcrinit")
	gb.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if o, err := gb.CombinedOutput(); err != nil {
		t.Fatalf("go build pcrinit: %v\n%s", err, o)
	}
	initrd := filepath.Join(dir, "initrd.cpio")
	c := exec.Command(cpio, "-o", "-H", "newc", "--quiet", "-O", initrd)
	c.Dir, c.Stdin = root, strings.NewReader("init\nproc\nsys\ndev\n")
	if o, err := c.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v\n%s", err, o)
	}
	nonce := make([]byte, 20)
	if _, err := rand.Read(nonce); err != nil {
		t.Fatal(err)
	}

	ins := []struct{ name, path string }{{"stub", stub}, {"linux", kernel}, {"initrd", initrd}, {"fw", code}}
	signing, measureSB := "", ""
	if sb {
		measureSB = "  secure_boot = true\n"
		cert, key := testDBKey(t, "cocobuild boot test db")
		writePEM(t, filepath.Join(dir, "db.crt"), "CERTIFICATE", cert.Raw)
		writePEM(t, filepath.Join(dir, "db.key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
		ins = append(ins, struct{ name, path string }{"db_crt", filepath.Join(dir, "db.crt")}, struct{ name, path string }{"db_key", filepath.Join(dir, "db.key")},
			struct{ name, path string }{"vars", vars})
		signing = "  db_key  = input.db_key\n  db_cert = input.db_crt\n  vars_template = input.vars\n"
	}
	var inputs strings.Builder
	for _, in := range ins {
		b, err := os.ReadFile(in.path)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&inputs, "input %q {\n  file   = %q\n  sha256 = %q\n}\n\n", in.name, in.path, sha(b))
	}
	cache := filepath.Join(dir, "cache")
	build := func(name string, failed int) (*manifest.Measurement, string) {
		t.Helper()
		src := "recipe {\n  name = \"ukiboot\"\n}\n\n" + inputs.String() + `
uki "guest" {
  stub    = input.stub
  kernel  = input.linux
  initrd  = input.initrd
  cmdline = "console=ttyS0 panic=-1 cocobuild.nonce=` + hex.EncodeToString(nonce) + `"
  osrel   = "ID=cocobuild\n"
` + signing + `}

disk "boot" {
  partition "esp" {
    size  = "40MiB"
    files = { "/EFI/BOOT/BOOTX64.EFI" = uki.guest }
  }
}

measure "tpm" {
  firmware            = input.fw
  uki                 = uki.guest
  failed_boot_options = ` + strconv.Itoa(failed) + ` # 1: QEMU's default CD-ROM drive, empty: Boot0001 "UEFI QEMU DVD-ROM" is Not Found
` + measureSB + `}

publish "ukiboot" {
  version                = "0.1.0"
  expires                = "2099-01-01T00:00:00Z"
  key                    = "dev"
  allow_partial_coverage = true
}
`
		rdir := filepath.Join(dir, "recipe-"+name)
		if err := os.MkdirAll(rdir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(rdir, "r.hcl"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, name)
		res, err := testkinds.Load(t, rdir, cache, input.Options{}).Build(context.Background(), out, 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range res.Manifest.Measurements {
			if res.Manifest.Measurements[i].TEE == "tpm" {
				return &res.Manifest.Measurements[i], out
			}
		}
		t.Fatal("no tpm measurement in the manifest")
		return nil, ""
	}
	m, out := build("out", 1)
	return m, out, ukiBoot{rebuild: build, out: out, cache: cache, nonce: nonce}
}

// TestParseConsole: a lost or damaged event-log chunk or quote part, a
// missing bank or an unfinished guest is an error, never a shorter log or
// another quote.
func TestParseConsole(t *testing.T) {
	log := bytes.Repeat([]byte{0xab}, 600)
	var good strings.Builder
	for _, bank := range []string{"sha256", "sha384"} {
		for n := range 24 {
			fmt.Fprintf(&good, "PCR %s %d %x\r\n", bank, n, n)
		}
	}
	lines := []string{fmt.Sprintf("LOG 0/2 %x\r\n", log[:512]), fmt.Sprintf("LOG 1/2 %x\r\n", log[512:])}
	sum := fmt.Sprintf("LOGSUM 600 %x\r\n", sha256.Sum256(log))
	parts := map[string][]byte{"attest": []byte("\xffTCG quote"), "signature": []byte("sig"), "akpub": []byte("ak")}
	var quote strings.Builder
	for _, p := range quoteParts {
		fmt.Fprintf(&quote, "QUOTE %s %x %x\r\n", p, parts[p], sha256.Sum256(parts[p]))
	}
	q := quote.String()
	all := good.String() + lines[0] + lines[1] + sum + q + "PCR done\r\n"
	for _, tc := range []struct {
		name, console, err string
	}{
		{"whole", all, ""},
		{"printk inside a chunk", good.String() + lines[0][:40] + "[    1.234] random: crng init done\r\n" + lines[1] + sum + q + "PCR done\r\n", "chunk 0 of 2 is missing"},
		{"damaged sum", good.String() + lines[0] + lines[1] + "LOGSUM 600 00\r\n" + q + "PCR done\r\n", "no event log"},
		{"wrong bytes", good.String() + lines[0] + strings.Replace(lines[1], "ab", "ac", 1) + sum + q + "PCR done\r\n", "sha256"},
		{"a bank short", strings.Replace(all, "PCR sha384 3 3\r\n", "", 1), "23 sha384 PCRs"},
		{"unfinished", good.String() + lines[0], "did not finish"},
		{"quote part damaged", strings.Replace(all, fmt.Sprintf("%x", parts["signature"]), fmt.Sprintf("%x", "sih"), 1), "signature is missing or damaged"},
		{"quote part cut", strings.Replace(all, "QUOTE akpub ", "QUOTE akpub [ 1.2] x", 1), "akpub is missing or damaged"},
		{"quote failed", strings.Replace(all, q, "QUOTE error quoting: TPM_RC_HIERARCHY\r\n", 1), "could not quote: quoting: TPM_RC_HIERARCHY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConsole([]byte(tc.console))
			if tc.err == "" {
				if err != nil || !bytes.Equal(c.log, log) {
					t.Fatalf("parseConsole = %d bytes, %v; want the 600-byte log", len(c.log), err)
				}
				if d := cmp.Diff(parts, c.quote); d != "" {
					t.Fatalf("quote parts (-printed +parsed):\n%s", d)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("parseConsole error = %v, want one containing %q", err, tc.err)
			}
		})
	}
}
