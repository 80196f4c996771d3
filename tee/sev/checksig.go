package sev

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/verify"

	"github.com/cocobuild/cocobuild/tee"
)

// checkSignature verifies the report's signature with go-sev-guest's
// verify: the VCEK or VLEK certificate and the ASK/ARK chain come from the
// certificate table of an extended report and from the files given, and
// are fetched from AMD's key distribution service only when sc.Online.
func checkSignature(ctx context.Context, e *Evidence, sc *tee.SignatureCheck) ([]string, error) {
	chain := &spb.CertificateChain{}
	if e.Certs != nil {
		chain.VcekCert, chain.VlekCert, chain.AskCert, chain.ArkCert = e.Certs.GetVcekCert(), e.Certs.GetVlekCert(), e.Certs.GetAskCert(), e.Certs.GetArkCert()
	}
	var notes []string
	names := make([]string, 0, len(sc.Files))
	for n := range sc.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		certs, err := parseCerts(sc.Files[name])
		if err != nil {
			return notes, fmt.Errorf("%s: %w", name, err)
		}
		for _, c := range certs {
			role := certRole(c)
			switch role {
			case "VCEK":
				chain.VcekCert = c.Raw
			case "VLEK":
				chain.VlekCert = c.Raw
			case "ASK":
				chain.AskCert = c.Raw
			case "ARK":
				chain.ArkCert = c.Raw
			}
			notes = append(notes, fmt.Sprintf("%s: %s certificate %q", name, role, c.Subject.CommonName))
		}
	}
	if len(chain.GetVcekCert()) == 0 && len(chain.GetVlekCert()) == 0 && !sc.Online {
		return notes, errors.New("no VCEK or VLEK certificate: give it with --cert (snpguest fetch vcek writes it; the ASK/ARK chain is built in) or allow fetching it with --online")
	}
	o := &verify.Options{DisableCertFetching: !sc.Online, Now: sc.Now}
	if fms := e.Report.GetCpuid1EaxFms(); fms != 0 {
		o.Product = abi.SevProductFromCpuid1Eax(fms)
	} else if len(chain.GetVcekCert()) > 0 {
		// A version 2 report does not say which product signed it: the
		// VCEK's issuer (SEV-Milan, SEV-Genoa, …) does.
		if c, err := x509.ParseCertificate(chain.GetVcekCert()); err == nil {
			if line := strings.TrimPrefix(c.Issuer.CommonName, "SEV-"); line != c.Issuer.CommonName {
				if p, err := kds.ParseProductLine(line); err == nil {
					o.Product = p
				}
			}
		}
	}
	a := &spb.Attestation{Report: e.Report, CertificateChain: chain, Product: o.Product}
	if err := verify.SnpAttestationContext(ctx, a, o); err != nil {
		return notes, err
	}
	signer := "VCEK"
	if info, err := abi.ParseSignerInfo(e.Report.GetSignerInfo()); err == nil && info.SigningKey == abi.VlekReportSigner {
		signer = "VLEK"
	}
	notes = append(notes, fmt.Sprintf("the report's signature verifies with the %s, whose chain leads to AMD's root key (go-sev-guest verify%s)", signer, map[bool]string{true: ", online", false: ", offline"}[sc.Online]))
	return notes, nil
}

// parseCerts reads DER or PEM certificates (a KDS cert_chain holds two).
func parseCerts(b []byte) ([]*x509.Certificate, error) {
	if c, err := x509.ParseCertificate(b); err == nil {
		return []*x509.Certificate{c}, nil
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no certificate in it (want DER or PEM)")
	}
	return out, nil
}

// certRole names an AMD certificate by its place in the chain: ARK
// (self-signed), ASK (another CA), or the VCEK/VLEK that signs reports.
func certRole(c *x509.Certificate) string {
	switch {
	case c.IsCA && c.Subject.String() == c.Issuer.String():
		return "ARK"
	case c.IsCA:
		return "ASK"
	case strings.Contains(c.Subject.CommonName, "VLEK"):
		return "VLEK"
	}
	return "VCEK"
}
