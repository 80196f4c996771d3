package tdx

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"

	"github.com/google/go-tdx-guest/verify"

	"github.com/cocobuild/cocobuild/tee"
)

// checkSignature verifies the quote with go-tdx-guest's verify: the PCK
// certificate chain the quote carries up to Intel's SGX root (built in, or
// a root given as a file), the QE report and the quote's signature.
// Offline, the TCB info and QE identity collateral are not checked (the
// go-tdx-guest release used takes them from Intel's PCS only); --online
// fetches and checks them and the revocation lists.
func checkSignature(e *Evidence, sc *tee.SignatureCheck) ([]string, error) {
	o := &verify.Options{GetCollateral: sc.Online, CheckRevocations: sc.Online, Now: sc.Now}
	var notes []string
	names := make([]string, 0, len(sc.Files))
	for n := range sc.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b := sc.Files[n]
		var roots []*x509.Certificate
		for {
			var blk *pem.Block
			blk, b = pem.Decode(b)
			if blk == nil {
				break
			}
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return notes, fmt.Errorf("%s: %w", n, err)
			}
			roots = append(roots, c)
		}
		if len(roots) == 0 {
			c, err := x509.ParseCertificate(sc.Files[n])
			if err != nil {
				return notes, fmt.Errorf("%s: not a certificate (PEM or DER): the quote carries its PCK chain; give only the root you trust instead of Intel's built-in one", n)
			}
			roots = append(roots, c)
		}
		if o.TrustedRoots == nil {
			o.TrustedRoots = x509.NewCertPool()
		}
		for _, c := range roots {
			o.TrustedRoots.AddCert(c)
			notes = append(notes, fmt.Sprintf("%s: trusted root %q", n, c.Subject.CommonName))
		}
	}
	if err := verify.TdxQuote(e.Quote, o); err != nil {
		return notes, err
	}
	if e.Quote == nil {
		return notes, errors.New("no quote")
	}
	if sc.Online {
		notes = append(notes, "the quote's signature, QE report and PCK chain verify, and the TCB info, QE identity and revocation lists fetched from Intel's PCS accept it (go-tdx-guest verify)")
	} else {
		notes = append(notes, "the quote's signature, QE report and PCK certificate chain verify up to Intel's SGX root (go-tdx-guest verify, offline: TCB status and revocation not checked; --online checks them)")
	}
	return notes, nil
}
