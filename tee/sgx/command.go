// Package sgx is cocobuild's command line for Intel SGX enclaves:
// `cocobuild measure sgx`, over the model in measure/sgx.
//
// SGX is not a tee.TEE registration: the measure block kind and its
// contract describe a confidential VM booted from firmware, a kernel, an
// initrd and a command line on vCPUs (CommonAttributes; Uncovered and
// FirmwareNeed speak of the kernel and firmware; the CoRIM triples and
// Trustee reference values are those of the VM's registers). An enclave
// is a process's address range, built from an enclave binary by an SDK or
// library OS, which no cocobuild recipe produces, and none of those
// attributes applies to it. internal/tees.Standalone lists the command
// with the TEEs' `measure` subcommands.
package sgx

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cocobuild/cocobuild/internal/atomicfile"
	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/internal/termsafe"
	"github.com/cocobuild/cocobuild/internal/units"
	model "github.com/cocobuild/cocobuild/measure/sgx"
	"github.com/cocobuild/cocobuild/tee"
)

// flags are the flags of `cocobuild measure sgx`.
type flags struct {
	elf, heap, pages     string
	sigstruct, key, sign string
	attributes, xfrm     string
	isvProdID, isvSVN    uint16
	vendorIntel          bool
	date                 string
}

// Command is `cocobuild measure sgx`.
func Command(cli *tee.CLI) *cobra.Command {
	var f flags
	c := &cobra.Command{
		Use:   "sgx (--elf FILE [--heap SIZE] | --pages FILE | --sigstruct FILE) [--key FILE [--sign OUT]] [flags]",
		Short: "Compute an Intel SGX enclave's MRENCLAVE, MRSIGNER and SIGSTRUCT",
		Long: `Compute the MRENCLAVE of an Intel SGX enclave from its pages, without an SGX CPU, as
ECREATE, EADD and EEXTEND extend it (Intel SDM vol. 3D): ECREATE with the SSA frame size and
enclave size, then for each page EADD with its offset and SECINFO flags and, for measured
pages, EEXTEND of each 256-byte chunk. The pages come from:

  --elf FILE --heap SIZE   an enclave ELF in the layout of the Linux kernel's SGX selftest
                           (tools/testing/selftests/sgx, load.c): the first PT_LOAD segment
                           is the TCS pages, the others regular pages with their permissions,
                           all measured, then an unmeasured read-write heap of SIZE bytes
                           (default 4KiB, the selftest's); the enclave size is the smallest
                           power of two that holds them, the SSA frame one page.
  --pages FILE             a page list in JSON: {"ssa_frame_size": 1, "size": 65536 (0 or
                           absent: the smallest power of two), "runs": [{"name", "offset",
                           "size", "type": "tcs"|"reg", "perm": "rwx" subset, "measure",
                           "file" (relative to the page list), "file_offset"}]}, runs in the
                           order they are added. --json prints an enclave's page list in this
                           form (without files).

MRSIGNER is SHA-256 of the signer's RSA-3072 modulus, little-endian as SGX stores it: from
--key (a PEM RSA key, public or private) or --sigstruct (a SIGSTRUCT, whose signature and
Q1/Q2 are checked, and whose enclave hash must equal the computed MRENCLAVE: a mismatch
fails). --sign OUT writes a SIGSTRUCT for the enclave signed with --key, an RSA-3072 key of
exponent 3 (openssl genrsa -3 3072), as the selftest and Intel's sgx_sign sign:
RSASSA-PKCS1-v1_5 over SHA-256 of its header and body, deterministic; --attributes, --xfrm,
--isv-prodid, --isv-svn, --date and --intel set its body and header (defaults: the
selftest's, a 64-bit enclave with x87 and SSE state).

Not covered: the enclave layouts of Intel's SGX SDK (its metadata section), Occlum and
Gramine, which Confidential Containers' enclave-cc uses; describe such an enclave with
--pages, or use the SDK's own sgx_sign or gramine-sgx-sign.

Input files must be regular files within the limits in force (--limit file=..., document=...).`,
		Example: `  cocobuild measure sgx --elf test_encl.elf --heap 4KiB --key sign_key.pem
  cocobuild measure sgx --elf test_encl.elf --heap 0x100000 --key sign_key.pem --sign test_encl.sigstruct --json
  cocobuild measure sgx --pages enclave-pages.json
  cocobuild measure sgx --elf test_encl.elf --sigstruct test_encl.sigstruct`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cli, cmd, &f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.elf, "elf", "", "enclave ELF in the kernel SGX selftest's layout")
	fl.StringVar(&f.heap, "heap", "4KiB", "heap size for --elf: bytes, 0x hex, or a size such as 64KiB (whole pages)")
	fl.StringVar(&f.pages, "pages", "", "page list of the enclave (JSON; see above)")
	fl.StringVar(&f.sigstruct, "sigstruct", "", "SIGSTRUCT file (1808 bytes) to check against the enclave and take MRSIGNER from")
	fl.StringVar(&f.key, "key", "", "signer's RSA-3072 key (PEM, public or private) for MRSIGNER and --sign")
	fl.StringVar(&f.sign, "sign", "", "write a SIGSTRUCT for the enclave, signed with --key (private), to this file")
	fl.StringVar(&f.attributes, "attributes", "0x4", "SIGSTRUCT ATTRIBUTES for --sign (0x4: 64-bit mode; 0x6 adds DEBUG)")
	fl.StringVar(&f.xfrm, "xfrm", "0x3", "SIGSTRUCT XFRM for --sign (0x3: x87 and SSE)")
	fl.Uint16Var(&f.isvProdID, "isv-prodid", 0, "SIGSTRUCT ISVPRODID for --sign")
	fl.Uint16Var(&f.isvSVN, "isv-svn", 0, "SIGSTRUCT ISVSVN for --sign")
	fl.StringVar(&f.date, "date", "", "SIGSTRUCT DATE for --sign, YYYYMMDD (default none, as the selftest; sgx_sign writes the day's)")
	fl.BoolVar(&f.vendorIntel, "intel", false, "SIGSTRUCT VENDOR 0x8086 (Intel's own enclaves) for --sign")
	return c
}

// result is the --json output.
type result struct {
	MREnclave string         `json:"mrenclave"`
	MRSigner  string         `json:"mrsigner,omitempty"`
	Enclave   *enclaveJSON   `json:"enclave,omitempty"`
	SigStruct *sigstructJSON `json:"sigstruct,omitempty"`
	Signed    string         `json:"signed,omitempty"`
}

type enclaveJSON struct {
	Pages    uint64          `json:"pages"`
	PageList *model.PageList `json:"page_list"`
}

type sigstructJSON struct {
	File        string `json:"file,omitempty"`
	Vendor      uint32 `json:"vendor"`
	Date        string `json:"date"`
	MiscSelect  uint32 `json:"miscselect"`
	MiscMask    uint32 `json:"miscmask"`
	Attributes  string `json:"attributes"`
	XFRM        string `json:"xfrm"`
	AttrMask    string `json:"attributes_mask"`
	XFRMMask    string `json:"xfrm_mask"`
	ISVProdID   uint16 `json:"isvprodid"`
	ISVSVN      uint16 `json:"isvsvn"`
	EnclaveHash string `json:"enclave_hash"`
	MRSigner    string `json:"mrsigner"`
	SignatureOK bool   `json:"signature_ok"`
}

func run(cli *tee.CLI, cmd *cobra.Command, f *flags) error {
	changed := cmd.Flags().Changed
	sources := 0
	for _, s := range []string{f.elf, f.pages} {
		if s != "" {
			sources++
		}
	}
	switch {
	case sources > 1:
		return cli.Usage(errors.New("--elf and --pages are alternatives: give one"))
	case sources == 0 && f.sigstruct == "":
		return cli.Usage(errors.New("give the enclave: --elf FILE (the kernel SGX selftest's layout) or --pages FILE (a page list), or a --sigstruct to read"))
	case changed("heap") && f.elf == "":
		return cli.Usage(errors.New("--heap is for --elf"))
	case f.sign != "" && f.sigstruct != "":
		return cli.Usage(errors.New("--sign writes a SIGSTRUCT and --sigstruct checks one: give one"))
	case f.sign != "" && (f.key == "" || sources == 0):
		return cli.Usage(errors.New("--sign needs the enclave (--elf or --pages) and --key, the private key to sign with"))
	}
	for _, n := range []string{"attributes", "xfrm", "isv-prodid", "isv-svn", "date", "intel"} {
		if changed(n) && f.sign == "" {
			return cli.Usage(fmt.Errorf("--%s sets a field of the SIGSTRUCT --sign writes: give --sign", n))
		}
	}

	var res result
	var layout *model.Layout
	switch {
	case f.elf != "":
		heap, err := parseHeap(f.heap)
		if err != nil {
			return cli.Usage(fmt.Errorf("--heap %q: %w", f.heap, err))
		}
		img, err := tee.ReadInput(cli.Limits, "elf", f.elf, limits.File)
		if err != nil {
			return cli.Usage(err)
		}
		if layout, err = model.SelftestLayout(img, heap); err != nil {
			return cli.Failure(tee.Escaped(fmt.Errorf("--elf %s: %w (the kernel SGX selftest's layout is the one read; describe other enclaves with --pages)", f.elf, err)))
		}
	case f.pages != "":
		doc, err := tee.ReadInput(cli.Limits, "pages", f.pages, limits.Document)
		if err != nil {
			return cli.Usage(err)
		}
		pl, err := model.ParsePageList(doc)
		if err != nil {
			return cli.Failure(tee.Escaped(fmt.Errorf("--pages %s: %w", f.pages, err)))
		}
		if layout, err = pl.Layout(pageReader(cli.Limits, filepath.Dir(f.pages))); err != nil {
			return cli.Failure(tee.Escaped(fmt.Errorf("--pages %s: %w", f.pages, err)))
		}
	}
	var mr [32]byte
	if layout != nil {
		var err error
		if mr, err = layout.MREnclave(); err != nil {
			return cli.Failure(tee.Escaped(err))
		}
		res.MREnclave = hex.EncodeToString(mr[:])
		res.Enclave = &enclaveJSON{Pages: layout.Pages(), PageList: layout.PageList()}
	}

	var key *rsa.PrivateKey
	if f.key != "" {
		b, err := tee.ReadInput(cli.Limits, "key", f.key, limits.Document)
		if err != nil {
			return cli.Usage(err)
		}
		pub, priv, err := parseKey(b)
		if err != nil {
			return cli.Usage(tee.Escaped(fmt.Errorf("--key %s: %w", f.key, err)))
		}
		signer, err := model.MRSigner(pub)
		if err != nil {
			return cli.Usage(tee.Escaped(fmt.Errorf("--key %s: %w", f.key, err)))
		}
		res.MRSigner = hex.EncodeToString(signer[:])
		key = priv
	}

	if f.sigstruct != "" {
		b, err := tee.ReadInput(cli.Limits, "sigstruct", f.sigstruct, limits.Document)
		if err != nil {
			return cli.Usage(err)
		}
		ss, err := model.ParseSigStruct(b)
		if err != nil {
			return cli.Failure(tee.Escaped(fmt.Errorf("--sigstruct %s: %w", f.sigstruct, err)))
		}
		j := describe(ss)
		j.File = f.sigstruct
		verr := ss.Verify()
		j.SignatureOK = verr == nil
		res.SigStruct = j
		if verr != nil {
			return cli.Failure(tee.Escaped(fmt.Errorf("--sigstruct %s: %w", f.sigstruct, verr)))
		}
		if res.MRSigner != "" && res.MRSigner != j.MRSigner {
			return cli.Failure(tee.Escaped(fmt.Errorf("--sigstruct %s is signed by MRSIGNER %s, not by --key %s (%s)", f.sigstruct, j.MRSigner, f.key, res.MRSigner)))
		}
		res.MRSigner = j.MRSigner
		if layout == nil {
			res.MREnclave = j.EnclaveHash
		} else if j.EnclaveHash != res.MREnclave {
			return cli.Failure(tee.Escaped(fmt.Errorf("--sigstruct %s signs enclave hash %s, but the enclave's MRENCLAVE is %s: it signs another enclave (or another heap size or layout)", f.sigstruct, j.EnclaveHash, res.MREnclave)))
		}
	}

	if f.sign != "" {
		if key == nil {
			return cli.Usage(fmt.Errorf("--sign needs a private key: --key %s holds a public one", f.key))
		}
		ss, err := newSigStruct(f, mr)
		if err != nil {
			return cli.Usage(err)
		}
		if err := ss.Sign(key); err != nil {
			return cli.Usage(tee.Escaped(fmt.Errorf("--key %s: %w", f.key, err)))
		}
		if err := atomicfile.WriteFile(f.sign, ss.Marshal(), 0o644); err != nil {
			return cli.Failure(tee.Escaped(fmt.Errorf("--sign: %w", err)))
		}
		res.SigStruct = describe(ss)
		res.SigStruct.File = f.sign
		res.SigStruct.SignatureOK = true
		res.Signed = f.sign
	}

	if cli.JSON() {
		return cli.PrintJSON(res)
	}
	fmt.Fprintln(cli.Stdout, "MRENCLAVE:", res.MREnclave)
	if res.MRSigner != "" {
		fmt.Fprintln(cli.Stdout, "MRSIGNER:", res.MRSigner)
	}
	if res.Signed != "" {
		fmt.Fprintln(cli.Stderr, "wrote SIGSTRUCT", termsafe.Escape(res.Signed))
	}
	return nil
}

// parseHeap reads a heap size: 0x hex, or a size ParseSize reads.
func parseHeap(s string) (uint64, error) {
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		return strconv.ParseUint(h, 16, 64)
	}
	n, err := units.ParseSize(s)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, errors.New("negative size")
	}
	return uint64(n), nil
}

// pageReader reads the contents of page list runs from files relative to
// dir, within the file limit in force.
func pageReader(lim *limits.Values, dir string) func(file string, off, n uint64) ([]byte, error) {
	return func(file string, off, n uint64) ([]byte, error) {
		path := file
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, file)
		}
		fh, size, err := lim.Open(path, limits.File)
		if err != nil {
			return nil, err
		}
		defer fh.Close()
		if off >= uint64(size) {
			return []byte{}, nil
		}
		b := make([]byte, min(n, uint64(size)-off))
		if _, err := fh.ReadAt(b, int64(off)); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		return b, nil
	}
}

// parseKey reads a PEM RSA key: a private key (PKCS #1 or PKCS #8) or a
// public one (PKIX or PKCS #1).
func parseKey(b []byte) (*rsa.PublicKey, *rsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, nil, errors.New("no PEM block: want an RSA key in PEM")
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return &k.PublicKey, k, nil
	}
	if k, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
		if rk, ok := k.(*rsa.PrivateKey); ok {
			return &rk.PublicKey, rk, nil
		}
		return nil, nil, fmt.Errorf("a %T, not an RSA key", k)
	}
	if k, err := x509.ParsePKIXPublicKey(blk.Bytes); err == nil {
		if rk, ok := k.(*rsa.PublicKey); ok {
			return rk, nil, nil
		}
		return nil, nil, fmt.Errorf("a %T, not an RSA key", k)
	}
	if k, err := x509.ParsePKCS1PublicKey(blk.Bytes); err == nil {
		return k, nil, nil
	}
	return nil, nil, fmt.Errorf("PEM block %q is no RSA key (PKCS #1, PKCS #8 or PKIX)", blk.Type)
}

// newSigStruct returns the SIGSTRUCT --sign fills in for mrenclave.
func newSigStruct(f *flags, mr [32]byte) (*model.SigStruct, error) {
	ss := model.SelftestSigStruct(mr)
	var err error
	if ss.Attributes, err = strconv.ParseUint(f.attributes, 0, 64); err != nil {
		return nil, fmt.Errorf("--attributes %q: want a number (0x hex)", f.attributes)
	}
	if ss.XFRM, err = strconv.ParseUint(f.xfrm, 0, 64); err != nil {
		return nil, fmt.Errorf("--xfrm %q: want a number (0x hex)", f.xfrm)
	}
	ss.ISVProdID, ss.ISVSVN = f.isvProdID, f.isvSVN
	if f.vendorIntel {
		ss.Vendor = model.VendorIntel
	}
	if f.date != "" {
		// DATE is BCD: the digits of yyyymmdd read as hex.
		d, err := strconv.ParseUint(f.date, 16, 32)
		if len(f.date) != 8 || err != nil || strings.ContainsAny(f.date, "abcdefABCDEF") {
			return nil, fmt.Errorf("--date %q: want YYYYMMDD", f.date)
		}
		ss.Date = uint32(d)
	}
	return ss, nil
}

// describe returns the JSON form of a SIGSTRUCT.
func describe(ss *model.SigStruct) *sigstructJSON {
	signer := ss.MRSigner()
	return &sigstructJSON{
		Vendor: ss.Vendor, Date: fmt.Sprintf("%08x", ss.Date), MiscSelect: ss.MiscSelect, MiscMask: ss.MiscMask,
		Attributes: fmt.Sprintf("%#x", ss.Attributes), XFRM: fmt.Sprintf("%#x", ss.XFRM),
		AttrMask: fmt.Sprintf("%#x", ss.AttributesMask), XFRMMask: fmt.Sprintf("%#x", ss.XFRMMask),
		ISVProdID: ss.ISVProdID, ISVSVN: ss.ISVSVN,
		EnclaveHash: hex.EncodeToString(ss.MREnclave[:]), MRSigner: hex.EncodeToString(signer[:]),
	}
}
