package publish

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/publish/sign"
)

// The parsers of signed documents read untrusted bytes: they must return
// errors, never panic, and never accept what does not verify. The seeds are
// real documents signed by fuzzSigner.

var fuzzOnce sync.Once
var fuzzSigner *sign.Signer
var fuzzDocs []Document

func fuzzSeeds(f *testing.F) {
	fuzzOnce.Do(func() {
		s, err := sign.Generate(sign.ECDSAP256)
		if err != nil {
			panic(err)
		}
		// Partial coverage, so that the CoRIM seeds carry the coverage notes.
		r, err := NewRelease(partialManifest(), Options{TEEs: testTEEs, Name: "fuzz", Version: "1.0.0", Expires: testExpires, AllowPartialCoverage: true})
		if err != nil {
			panic(err)
		}
		docs, err := Sign(context.Background(), r, s, AllFormats, testTEEs)
		if err != nil {
			panic(err)
		}
		fuzzSigner, fuzzDocs = s, docs
	})
}

func FuzzVerifyStatement(f *testing.F) {
	fuzzSeeds(f)
	f.Add(doc(fuzzDocs, StatementFile).Data)
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","dsseEnvelope":{"payload":"","payloadType":"application/vnd.in-toto+json","signatures":[]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := VerifyStatement(context.Background(), b, fuzzSigner.Public())
		if err == nil && r == nil {
			t.Fatal("no error and no release")
		}
	})
}

func FuzzVerifyCoRIM(f *testing.F) {
	fuzzSeeds(f)
	f.Add(doc(fuzzDocs, CoRIMFile("snp")).Data)
	f.Add(doc(fuzzDocs, CoRIMFile("tdx")).Data)
	f.Add([]byte{0xd2, 0x84, 0x40, 0xa0, 0x40, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := VerifyCoRIM(b, fuzzSigner.Public(), testTEEs)
		if err == nil && v == nil {
			t.Fatal("no error and no values")
		}
		DetectFormat(b)
	})
}

func FuzzDecodeRVPS(f *testing.F) {
	fuzzSeeds(f)
	f.Add(doc(fuzzDocs, RVPSFile).Data)
	f.Add([]byte(`{"version":"0.1.0","type":"sample","payload":"e30="}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeRVPS(b)
		if err == nil && len(p) == 0 {
			t.Fatal("accepted an empty payload")
		}
		VerifyBlob(b, doc(fuzzDocs, RVPSSigFile).Data, fuzzSigner.Public())
	})
}

func FuzzManifestRelease(f *testing.F) {
	seed, err := json.Marshal(testManifest())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"cocobuild":"x","recipe":{"sha256":"x"},"measurements":[{"tee":"snp","name":"a","values":{"launch_measurement":"0X"}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := manifest.Parse(b)
		if err != nil {
			return
		}
		r, err := NewRelease(m, Options{TEEs: testTEEs, Name: "f", Version: "1.0.0", Expires: testExpires})
		if err != nil {
			return
		}
		// A release made from any manifest is one that Check accepts and
		// every format can encode.
		if err := r.Check(); err != nil {
			t.Fatalf("NewRelease made a release Check rejects: %v", err)
		}
		if _, err := EncodeRVPS(r, testTEEs); err != nil {
			t.Fatalf("RVPS: %v", err)
		}
		st, err := EncodeStatement(r)
		if err != nil {
			t.Fatalf("statement: %v", err)
		}
		if _, err := parseStatement(st); err != nil {
			t.Fatalf("statement does not parse back: %v", err)
		}
	})
}
