package tdx

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/google/go-tdx-guest/verify"

	"github.com/cocobuild/cocobuild/tee"
)

// collateral are Intel PCS responses given as files, served to
// go-tdx-guest's verify in place of the network.
type collateral struct {
	tcbInfo, qeIdentity, pckCRL, rootCRL []byte
	// signingChain is the PEM chain that signs the TCB info and QE
	// identity (Intel SGX TCB Signing and the root), which the PCS sends
	// as a response header.
	signingChain []byte
	// pckCRLChain is the chain of the PCK CRL's issuer (the PCK CA of the
	// quote's chain and the root).
	pckCRLChain []byte
}

// Get serves the collateral by the PCS URL go-tdx-guest asks for; nothing
// else is fetched.
func (c *collateral) Get(u string) (map[string][]string, []byte, error) {
	chain := func(name string, pem []byte) map[string][]string {
		return map[string][]string{name: {url.QueryEscape(string(pem))}}
	}
	switch {
	case strings.Contains(u, "/tcb?") && c.tcbInfo != nil:
		return chain("Tcb-Info-Issuer-Chain", c.signingChain), c.tcbInfo, nil
	case strings.Contains(u, "/qe/identity") && c.qeIdentity != nil:
		return chain("Sgx-Enclave-Identity-Issuer-Chain", c.signingChain), c.qeIdentity, nil
	case strings.Contains(u, "/pckcrl") && c.pckCRL != nil:
		return chain("Sgx-Pck-Crl-Issuer-Chain", c.pckCRLChain), c.pckCRL, nil
	case strings.HasSuffix(u, ".der") && c.rootCRL != nil:
		return nil, c.rootCRL, nil
	}
	return nil, nil, fmt.Errorf("%s is not among the collateral files given (no network access without --online)", u)
}

// checkSignature verifies the quote with go-tdx-guest's verify: the PCK
// certificate chain the quote carries up to Intel's SGX root (built in, or
// a root given as a file), the QE report and the quote's signature; with
// the collateral given as files (TCB info, QE identity and the chain that
// signs them; the PCK and root CRLs), also the TCB status and revocation,
// offline. --online fetches what is not given from Intel's PCS.
func checkSignature(e *Evidence, sc *tee.SignatureCheck) ([]string, error) {
	o := &verify.Options{GetCollateral: sc.Online, CheckRevocations: sc.Online, Now: sc.Now}
	col := &collateral{}
	var notes []string
	names := make([]string, 0, len(sc.Files))
	for n := range sc.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		what, err := col.add(n, sc.Files[n], o)
		if err != nil {
			return notes, fmt.Errorf("%s: %w", n, err)
		}
		notes = append(notes, n+": "+what)
	}
	given := col.tcbInfo != nil || col.qeIdentity != nil || col.pckCRL != nil || col.rootCRL != nil
	if given {
		var missing []string
		for _, m := range []struct {
			b    []byte
			what string
		}{{col.tcbInfo, "the TCB info (tcb?fmspc=…)"}, {col.qeIdentity, "the QE identity (qe/identity)"}, {col.signingChain, "the chain that signs them (the Tcb-Info-Issuer-Chain: Intel SGX TCB Signing and the root, PEM)"}} {
			if m.b == nil {
				missing = append(missing, m.what)
			}
		}
		if (col.pckCRL == nil) != (col.rootCRL == nil) {
			missing = append(missing, "both CRLs (the PCK CRL and the root CA CRL) or neither")
		}
		if len(missing) > 0 && !sc.Online {
			return notes, fmt.Errorf("collateral given, but not %s", strings.Join(missing, ", "))
		}
		chain, err := pckIssuerChain(e)
		if err != nil {
			return notes, err
		}
		col.pckCRLChain = chain
		o.GetCollateral, o.CheckRevocations = true, sc.Online || col.pckCRL != nil
		if !sc.Online {
			o.Getter = col
		}
	}
	if err := verify.TdxQuote(e.Quote, o); err != nil {
		return notes, err
	}
	switch {
	case sc.Online:
		notes = append(notes, "the quote's signature, QE report and PCK chain verify, and the TCB info, QE identity and revocation lists fetched from Intel's PCS accept it (go-tdx-guest verify)")
	case o.GetCollateral && o.CheckRevocations:
		notes = append(notes, "the quote's signature, QE report and PCK chain verify, and the TCB info, QE identity and revocation lists given as files accept it (go-tdx-guest verify, offline)")
	case o.GetCollateral:
		notes = append(notes, "the quote's signature, QE report and PCK chain verify, and the TCB info and QE identity given as files accept it (go-tdx-guest verify, offline; revocation not checked without the CRLs)")
	default:
		notes = append(notes, "the quote's signature, QE report and PCK certificate chain verify up to Intel's SGX root (go-tdx-guest verify, offline: TCB status and revocation not checked; give the collateral as files, or --online)")
	}
	return notes, nil
}

// add classifies one file: TCB info or QE identity (JSON), a CRL (DER),
// the TCB signing chain, or a root to trust in place of Intel's built-in
// one (PEM or DER).
func (c *collateral) add(name string, b []byte, o *verify.Options) (string, error) {
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(t, &m); err != nil {
			return "", err
		}
		switch {
		case m["tcbInfo"] != nil:
			c.tcbInfo = b
			return "TCB info", nil
		case m["enclaveIdentity"] != nil:
			c.qeIdentity = b
			return "QE identity", nil
		}
		return "", errors.New("JSON that is neither TCB info nor a QE identity")
	}
	if crl, err := x509.ParseRevocationList(b); err == nil {
		if crl.Issuer.CommonName == "Intel SGX Root CA" {
			c.rootCRL = b
			return "root CA CRL", nil
		}
		c.pckCRL = b
		return fmt.Sprintf("PCK CRL of %q", crl.Issuer.CommonName), nil
	}
	certs, err := parseCerts(b)
	if err != nil {
		return "", errors.New("not TCB info, a QE identity, a CRL or certificates (PEM or DER)")
	}
	for _, cert := range certs {
		if cert.Subject.CommonName == "Intel SGX TCB Signing" {
			c.signingChain = b
			return "the chain that signs the TCB info and QE identity", nil
		}
	}
	if o.TrustedRoots == nil {
		o.TrustedRoots = x509.NewCertPool()
	}
	var cns []string
	for _, cert := range certs {
		o.TrustedRoots.AddCert(cert)
		cns = append(cns, fmt.Sprintf("%q", cert.Subject.CommonName))
	}
	return "trusted root " + strings.Join(cns, ", "), nil
}

// parseCerts reads PEM certificates, or one DER certificate.
func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := b
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) > 0 {
		return out, nil
	}
	c, err := x509.ParseCertificate(b)
	if err != nil {
		return nil, err
	}
	return []*x509.Certificate{c}, nil
}

// pckIssuerChain is the PEM chain above the PCK certificate in the quote:
// the issuer of the PCK CRL, and the root.
func pckIssuerChain(e *Evidence) ([]byte, error) {
	raw := e.Quote.GetSignedData().GetCertificationData().GetQeReportCertificationData().GetPckCertificateChainData().GetPckCertChain()
	certs, err := parseCerts(raw)
	if err != nil || len(certs) < 2 {
		return nil, fmt.Errorf("the quote carries no PCK certificate chain to check the PCK CRL's issuer with")
	}
	var out []byte
	for _, c := range certs[1:] {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out, nil
}
