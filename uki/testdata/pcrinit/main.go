// Command pcrinit is the /init of the UKI boot test's initrd: it prints
// the guest's SHA-256 and SHA-384 PCR banks as the kernel's TPM driver
// exports them (/sys/class/tpm/tpm0/pcr-sha256/N, pcr-sha384/N) and the
// firmware's event log on the console, then a TPM quote of the SHA-256
// PCRs 0-23, then powers off.
//
// Kernel messages are silenced first (console log level 1), so that no
// printk lands in the middle of a line; the event log is printed in
// numbered chunks with the total length and SHA-256, so that the test can
// tell a lost or damaged chunk from a wrong log.
//
// The quote: an attestation key (a restricted ECDSA P-256 signing key
// with SHA-256, the attributes and scheme tpm2_createak gives an ECC AK,
// made as a primary key of the endorsement hierarchy) quotes the SHA-256
// PCRs 0-23 with the nonce the kernel command line gives
// (cocobuild.nonce=HEX), through go-tpm and the kernel's resource manager
// (or /dev/tpm0 without one). It prints "QUOTE name hex sha256" lines:
// attest (the TPMS_ATTEST, as tpm2_quote -m writes it), signature (the
// TPMT_SIGNATURE, tpm2_quote -s) and akpub (the AK's TPM2B_PUBLIC,
// tpm2_createak -u), each with the SHA-256 of its bytes, or "QUOTE error
// ..." when it fails.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

func main() {
	_ = syscall.Mount("proc", "/proc", "proc", 0, "")
	_ = os.WriteFile("/proc/sys/kernel/printk", []byte("1\n"), 0)
	_ = syscall.Mount("sysfs", "/sys", "sysfs", 0, "")
	_ = syscall.Mount("devtmpfs", "/dev", "devtmpfs", 0, "")
	out := os.Stdout
	if f, err := os.OpenFile("/dev/console", os.O_WRONLY, 0); err == nil {
		out = f
	}
	for range 100 {
		if _, err := os.Stat("/sys/class/tpm/tpm0/pcr-sha256/0"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, bank := range []string{"sha256", "sha384"} {
		for n := range 24 {
			b, err := os.ReadFile(fmt.Sprintf("/sys/class/tpm/tpm0/pcr-%s/%d", bank, n))
			if err != nil {
				fmt.Fprintf(out, "PCR %s %d error %v\n", bank, n, err)
				continue
			}
			fmt.Fprintf(out, "PCR %s %d %s\n", bank, n, strings.ToLower(strings.TrimSpace(string(b))))
		}
	}
	// The firmware's event log: "LOG i/n hex" chunks of 512 bytes, then
	// "LOGSUM length sha256".
	_ = syscall.Mount("securityfs", "/sys/kernel/security", "securityfs", 0, "")
	if b, err := os.ReadFile("/sys/kernel/security/tpm0/binary_bios_measurements"); err == nil {
		const chunk = 512
		n := (len(b) + chunk - 1) / chunk
		for i := range n {
			fmt.Fprintf(out, "LOG %d/%d %x\n", i, n, b[i*chunk:min((i+1)*chunk, len(b))])
		}
		fmt.Fprintf(out, "LOGSUM %d %x\n", len(b), sha256.Sum256(b))
	} else {
		fmt.Fprintf(out, "LOG error %v\n", err)
	}
	if err := quote(out); err != nil {
		fmt.Fprintf(out, "QUOTE error %v\n", err)
	}
	fmt.Fprintln(out, "PCR done")
	syscall.Sync()
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
}

// quote makes the attestation key, quotes the SHA-256 PCRs 0-23 with the
// command line's nonce and prints the quote, its signature and the AK's
// public area.
func quote(out io.Writer) error {
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return err
	}
	var nonce []byte
	for _, f := range strings.Fields(string(cmdline)) {
		if v, ok := strings.CutPrefix(f, "cocobuild.nonce="); ok {
			if nonce, err = hex.DecodeString(v); err != nil {
				return fmt.Errorf("cocobuild.nonce: %w", err)
			}
		}
	}
	if nonce == nil {
		return errors.New("no cocobuild.nonce=HEX on the kernel command line")
	}
	tpm, err := linuxtpm.Open("/dev/tpmrm0")
	if err != nil {
		// No resource manager: the TPM itself (nothing else uses it).
		if tpm, err = linuxtpm.Open("/dev/tpm0"); err != nil {
			return err
		}
	}
	defer tpm.Close()
	ak, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHEndorsement,
		InPublic: tpm2.New2B(tpm2.TPMTPublic{
			Type:    tpm2.TPMAlgECC,
			NameAlg: tpm2.TPMAlgSHA256,
			ObjectAttributes: tpm2.TPMAObject{
				FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true,
				UserWithAuth: true, Restricted: true, SignEncrypt: true,
			},
			Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
				Scheme: tpm2.TPMTECCScheme{
					Scheme:  tpm2.TPMAlgECDSA,
					Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
				},
				CurveID: tpm2.TPMECCNistP256,
			}),
			Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{}),
		}),
	}.Execute(tpm)
	if err != nil {
		return fmt.Errorf("creating the attestation key: %w", err)
	}
	defer func() { _, _ = tpm2.FlushContext{FlushHandle: ak.ObjectHandle}.Execute(tpm) }()
	q, err := tpm2.Quote{
		SignHandle:     tpm2.AuthHandle{Handle: ak.ObjectHandle, Name: ak.Name, Auth: tpm2.PasswordAuth(nil)},
		QualifyingData: tpm2.TPM2BData{Buffer: nonce},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
		PCRSelect: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{
			{Hash: tpm2.TPMAlgSHA256, PCRSelect: []byte{0xff, 0xff, 0xff}},
		}},
	}.Execute(tpm)
	if err != nil {
		return fmt.Errorf("quoting: %w", err)
	}
	for _, p := range []struct {
		name string
		b    []byte
	}{{"attest", q.Quoted.Bytes()}, {"signature", tpm2.Marshal(q.Signature)}, {"akpub", tpm2.Marshal(ak.OutPublic)}} {
		fmt.Fprintf(out, "QUOTE %s %x %x\n", p.name, p.b, sha256.Sum256(p.b))
	}
	return nil
}
