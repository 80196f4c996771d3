package publish

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/publish/sign"
)

// digest384 makes a distinct, reproducible SHA-384-sized value for a label.
func digest384(label string) string {
	d := sha512.Sum384([]byte(label))
	return hex.EncodeToString(d[:])
}

func digest256(label string) string {
	d := sha256.Sum256([]byte(label))
	return hex.EncodeToString(d[:])
}

// covers is params.covers as the measure blocks write it.
func covers(firmware, kernel, initrd, cmdline bool) map[string]any {
	return map[string]any{"firmware": firmware, "kernel": kernel, "initrd": initrd, "cmdline": cmdline}
}

// testManifest is shaped like the manifest the measure blocks write: two SNP
// entries (two vCPU counts), one SEV-ES entry, two TDX entries, each
// covering the whole guest (direct boot on a firmware that commits to it).
func testManifest() *manifest.Manifest {
	fw, kernel := digest256("firmware"), digest256("kernel")
	full := func() map[string]any { return covers(true, true, true, true) }
	return &manifest.Manifest{
		Cocobuild: "0.1.0-test",
		Recipe:    manifest.Recipe{Name: "sample", SHA256: digest256("recipe")},
		Epoch:     1700000000,
		Inputs:    []manifest.Input{{Name: "ovmf", Source: "deb:ovmf=1", SHA256: fw, Size: 10}},
		Artifacts: []manifest.Artifact{
			{Name: "kernel.guest", Kind: "kernel", Path: "kernel/guest/vmlinuz", SHA256: kernel, Size: 20},
			{Name: "measure.snp", Kind: "measurements", Path: "measure/snp/measurements.json", SHA256: digest256("m"), Size: 30},
		},
		Measurements: []manifest.Measurement{
			{TEE: "snp", Name: "snp/vcpus=1", Params: map[string]any{"vcpus": 1.0, "firmware_sha256": fw, "kernel_sha256": kernel, "policy": "0x30000", "covers": full()},
				Values: map[string]any{"launch_measurement": digest384("snp1")}},
			{TEE: "snp", Name: "snp/vcpus=2", Params: map[string]any{"vcpus": 2.0, "firmware_sha256": fw, "kernel_sha256": kernel, "policy": "0x30000", "covers": full()},
				Values: map[string]any{"launch_measurement": digest384("snp2")}},
			{TEE: "seves", Name: "seves/vcpus=1", Params: map[string]any{"vcpus": 1.0, "kernel_sha256": kernel, "covers": full()},
				Values: map[string]any{"launch_measurement": digest384("seves1")}},
			{TEE: "tdx", Name: "tdx/memory=2G", Params: map[string]any{"memory": "2G", "firmware_sha256": fw, "kernel_sha256": kernel, "covers": full()},
				Values: map[string]any{"mrtd": digest384("mrtd"), "rtmr0": digest384("r0a"), "rtmr1": digest384("r1"), "rtmr2": digest384("r2")}},
			{TEE: "tdx", Name: "tdx/memory=4G", Params: map[string]any{"memory": "4G", "firmware_sha256": fw, "kernel_sha256": kernel, "covers": full()},
				Values: map[string]any{"mrtd": digest384("mrtd"), "rtmr0": digest384("r0b"), "rtmr1": digest384("r1"), "rtmr2": digest384("r2")}},
		},
	}
}

var testExpires = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func testRelease(t testing.TB, version string) *Release {
	t.Helper()
	r, err := NewRelease(testManifest(), Options{TEEs: testTEEs, Name: "sample", Version: version, Expires: testExpires, Namespace: "example.org/coco"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func testSigner(t testing.TB, alg sign.Algorithm) *sign.Signer {
	t.Helper()
	s, err := sign.Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func signAll(t testing.TB, r *Release, s *sign.Signer) []Document {
	t.Helper()
	docs, err := Sign(context.Background(), r, s, AllFormats, testTEEs)
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

func doc(docs []Document, name string) Document {
	for _, d := range docs {
		if d.Name == name {
			return d
		}
	}
	return Document{}
}

func replaceDoc(docs []Document, d Document) []Document {
	out := append([]Document(nil), docs...)
	for i := range out {
		if out[i].Name == d.Name {
			out[i] = d
		}
	}
	return out
}

var verifyAt = VerifyOptions{TEEs: testTEEs, Now: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}

func TestSignVerifyRoundTrip(t *testing.T) {
	for _, alg := range []sign.Algorithm{sign.ECDSAP256, sign.Ed25519} {
		t.Run(string(alg), func(t *testing.T) {
			s := testSigner(t, alg)
			r := testRelease(t, "1.2.0")
			docs := signAll(t, r, s)
			var names []string
			for _, d := range docs {
				names = append(names, d.Name)
			}
			want := []string{"corim-snp.cbor", "corim-tdx.cbor", "cosign.pub", "rvps.json", "rvps.json.sig", "rvps.json.sigstore.json", "statement.sigstore.json"}
			if diff := cmp.Diff(want, names); diff != "" {
				t.Fatalf("documents (-want +got):\n%s", diff)
			}
			v, err := Verify(context.Background(), docs, s.Public(), verifyAt)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(r, v.Release); diff != "" {
				t.Errorf("verified release differs from the signed one (-signed +verified):\n%s", diff)
			}
			if got := len(v.Checked); got != 7 { // statement, release, cosign.pub, rvps bundle, rvps, 2 CoRIMs
				t.Errorf("checked %d things, want 7: %q", got, v.Checked)
			}
		})
	}
}

func TestSignIsDeterministic(t *testing.T) {
	for _, alg := range []sign.Algorithm{sign.ECDSAP256, sign.Ed25519} {
		s := testSigner(t, alg)
		a := signAll(t, testRelease(t, "1.0.0"), s)
		b := signAll(t, testRelease(t, "1.0.0"), s)
		for i := range a {
			if !bytes.Equal(a[i].Data, b[i].Data) {
				t.Errorf("%s: %s differs between two signings of the same release", alg, a[i].Name)
			}
		}
	}
}

func TestRVPSPayloadHasManifestNamesAndValues(t *testing.T) {
	m := testManifest()
	r := testRelease(t, "0.3.1")
	msg, err := EncodeRVPS(r, testTEEs)
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]any
	if err := json.Unmarshal(msg, &env); err != nil {
		t.Fatal(err)
	}
	if env["version"] != "0.1.0" || env["type"] != "sample" {
		t.Errorf("message version/type = %v/%v, want 0.1.0/sample", env["version"], env["type"])
	}
	got, err := DecodeRVPS(msg)
	if err != nil {
		t.Fatal(err)
	}
	// What the manifest says, under Trustee's default-policy names and the
	// rvps:/// names, built here from the manifest itself.
	want := map[string]any{}
	addTo := func(name, v string) {
		l, _ := want[name].([]any)
		for _, x := range l {
			if x == v {
				return
			}
		}
		want[name] = append(l, v)
	}
	policy := map[string]string{"snp/launch_measurement": "snp_launch_measurement", "seves/launch_measurement": "seves_launch_measurement",
		"tdx/mrtd": "mr_td", "tdx/rtmr0": "rtmr_0", "tdx/rtmr1": "rtmr_1", "tdx/rtmr2": "rtmr_2"}
	uri := map[string]string{"snp/launch_measurement": "snp/launch_measurement", "seves/launch_measurement": "seves/launch_measurement",
		"tdx/mrtd": "tdx/mr_td", "tdx/rtmr0": "tdx/rtmr_0", "tdx/rtmr1": "tdx/rtmr_1", "tdx/rtmr2": "tdx/rtmr_2"}
	for _, mm := range m.Measurements {
		for k, v := range mm.Values {
			key := mm.TEE + "/" + k
			addTo(policy[key], v.(string))
			addTo("rvps:///example.org/coco/"+uri[key]+":0.3.1", v.(string))
		}
	}
	for k, l := range want {
		vals := l.([]any)
		sortAny(vals)
		want[k] = vals
	}
	// 0x30000: ABI 0.0, SMT allowed, not single-socket.
	want["snp_guest_abi_major"], want["snp_guest_abi_minor"] = 0.0, 0.0
	want["snp_smt_allowed"], want["snp_single_socket"] = true, false
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RVPS payload (-want +got):\n%s", diff)
	}
	for _, name := range []string{"snp_launch_measurement", "mr_td", "rtmr_1", "rtmr_2"} {
		if _, ok := got[name].([]any); !ok {
			t.Errorf("%s is %T, want a list (the default policy tests membership)", name, got[name])
		}
	}
}

func sortAny(l []any) {
	for i := 1; i < len(l); i++ {
		for j := i; j > 0 && l[j].(string) < l[j-1].(string); j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
}

func TestRVPSConflictingScalarsAreLeftOut(t *testing.T) {
	m := testManifest()
	m.Measurements[1].Params["policy"] = "0x30100" // ABI major 1 on one entry only
	r, err := NewRelease(m, Options{TEEs: testTEEs, Name: "s", Version: "1.0.0", Expires: testExpires})
	if err != nil {
		t.Fatal(err)
	}
	p, err := RVPSPayload(r, testTEEs)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := p["snp_guest_abi_major"]; ok {
		t.Errorf("snp_guest_abi_major = %v, want it left out: the entries disagree", v)
	}
	if v := p["snp_smt_allowed"]; v != true {
		t.Errorf("snp_smt_allowed = %v, want true (both entries agree)", v)
	}
}

// tamperJSON rewrites the first occurrence of old in a document.
func tamper(t *testing.T, d Document, old, new string) Document {
	t.Helper()
	if !bytes.Contains(d.Data, []byte(old)) {
		t.Fatalf("%s does not contain %q", d.Name, old)
	}
	d.Data = bytes.Replace(append([]byte(nil), d.Data...), []byte(old), []byte(new), 1)
	return d
}

func TestVerifyRejects(t *testing.T) {
	ctx := context.Background()
	s := testSigner(t, sign.ECDSAP256)
	r := testRelease(t, "2.0.0")
	docs := signAll(t, r, s)

	// A statement whose payload was changed after signing: re-encode the
	// envelope payload with one reference value altered.
	st := doc(docs, StatementFile)
	var bundle map[string]any
	if err := json.Unmarshal(st.Data, &bundle); err != nil {
		t.Fatal(err)
	}
	env := bundle["dsseEnvelope"].(map[string]any)
	payload, err := decodeB64(env["payload"].(string))
	if err != nil {
		t.Fatal(err)
	}
	payload = bytes.Replace(payload, []byte(digest384("snp1")), []byte(digest384("evil")), 1)
	env["payload"] = encodeB64(payload)
	tamperedStatement, _ := json.Marshal(bundle)

	// A validly signed envelope of another payload type.
	other, err := SignBundle(ctx, "application/vnd.example+json", []byte(`{"a":1}`), s)
	if err != nil {
		t.Fatal(err)
	}
	// A CoRIM signed by another key.
	otherKey := testSigner(t, sign.ECDSAP256)
	foreign, err := EncodeCoRIM(r, testTEEs, "snp", otherKey)
	if err != nil {
		t.Fatal(err)
	}
	// An RVPS message with other values, signed by the right key.
	r2 := testRelease(t, "2.0.0")
	r2.Entries[0].Values["launch_measurement"] = digest384("other")
	other2 := signAll(t, r2, s)

	cases := []struct {
		name string
		docs []Document
		key  *sign.PublicKey
		opts VerifyOptions
		want error // errors.Is target, or nil to match text only
		text string
	}{
		{"tampered statement", replaceDoc(docs, Document{Name: StatementFile, Data: tamperedStatement}), s.Public(), verifyAt, sign.ErrSignature, "DSSE"},
		{"tampered RVPS message", replaceDoc(docs, tamper(t, doc(docs, RVPSFile), `"payload": "`, `"payload": "A`)), s.Public(), verifyAt, sign.ErrSignature, "rvps.json"},
		{"RVPS signature of other values", replaceDoc(docs, doc(other2, RVPSFile)), s.Public(), verifyAt, sign.ErrSignature, "rvps.json"},
		{"RVPS message and signatures of other values", replaceDoc(replaceDoc(replaceDoc(docs, doc(other2, RVPSFile)), doc(other2, RVPSSigFile)), doc(other2, RVPSBundleFile)), s.Public(), verifyAt, ErrMismatch, "not the statement's"},
		{"RVPS bundle of other values", replaceDoc(docs, doc(other2, RVPSBundleFile)), s.Public(), verifyAt, sign.ErrSignature, "rvps.json.sigstore.json"},
		{"RVPS bundle signed by another key", replaceDoc(docs, Document{Name: RVPSBundleFile, Data: mustMessageBundle(t, doc(docs, RVPSFile).Data, otherKey)}), s.Public(), verifyAt, sign.ErrSignature, "rvps.json.sigstore.json"},
		{"RVPS bundle with a flipped signature byte", replaceDoc(docs, Document{Name: RVPSBundleFile, Data: flipSignature(t, doc(docs, RVPSBundleFile).Data)}), s.Public(), verifyAt, sign.ErrSignature, "rvps.json.sigstore.json"},
		{"RVPS bundle without its message", dropDoc(docs, RVPSFile, RVPSSigFile), s.Public(), verifyAt, nil, "rvps.json.sigstore.json has no rvps.json"},
		{"tampered CoRIM", replaceDoc(docs, tamperBytes(doc(docs, CoRIMFile("snp")), []byte(mustHex(digest384("snp1"))))), s.Public(), verifyAt, sign.ErrSignature, "corim-snp.cbor"},
		{"CoRIM signed by another key", replaceDoc(docs, Document{Name: CoRIMFile("snp"), Data: foreign}), s.Public(), verifyAt, sign.ErrSignature, "corim-snp.cbor"},
		{"wrong key", docs, otherKey.Public(), verifyAt, sign.ErrSignature, "statement"},
		{"wrong payload type", replaceDoc(docs, Document{Name: StatementFile, Data: other}), s.Public(), verifyAt, ErrPayloadType, "application/vnd.example+json"},
		{"expired", docs, s.Public(), VerifyOptions{TEEs: testTEEs, Now: testExpires.Add(time.Second)}, ErrExpired, "expired on 2030-01-01"},
		{"expired at the instant", docs, s.Public(), VerifyOptions{TEEs: testTEEs, Now: testExpires}, ErrExpired, "expired"},
		{"rollback", docs, s.Public(), VerifyOptions{TEEs: testTEEs, Now: verifyAt.Now, MinVersion: "2.0.1"}, ErrRollback, "older than 2.0.1"},
		{"no statement", docs[:3], s.Public(), verifyAt, nil, "statement.sigstore.json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Verify(ctx, c.docs, c.key, c.opts)
			if err == nil {
				t.Fatal("verified, want an error")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("error %q is not %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.text) {
				t.Errorf("error %q does not mention %q", err, c.text)
			}
		})
	}
	// The same documents verify at the minimum version itself.
	if _, err := Verify(ctx, docs, s.Public(), VerifyOptions{TEEs: testTEEs, Now: verifyAt.Now, MinVersion: "2.0.0"}); err != nil {
		t.Errorf("MinVersion equal to the release: %v", err)
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// tamperBytes flips a bit of the first occurrence of b in the document.
func tamperBytes(d Document, b []byte) Document {
	i := bytes.Index(d.Data, b)
	if i < 0 {
		panic(fmt.Sprintf("%s does not hold %x", d.Name, b))
	}
	d.Data = append([]byte(nil), d.Data...)
	d.Data[i] ^= 1
	return d
}

func TestNewReleaseErrors(t *testing.T) {
	cases := []struct {
		name string
		edit func(*manifest.Manifest, *Options)
		text string
	}{
		{"bad version", func(_ *manifest.Manifest, o *Options) { o.Version = "1.2" }, "not a semantic version"},
		{"no expiry", func(_ *manifest.Manifest, o *Options) { o.Expires = time.Time{} }, "no expiry"},
		{"expiry before epoch", func(_ *manifest.Manifest, o *Options) { o.Expires = time.Unix(1600000000, 0) }, "is not after the recipe epoch"},
		{"no measurements", func(m *manifest.Manifest, _ *Options) { m.Measurements = nil }, "add a measure block"},
		{"bad name", func(_ *manifest.Manifest, o *Options) { o.Name = "a b" }, "release name"},
		{"bad namespace", func(_ *manifest.Manifest, o *Options) { o.Namespace = "/x" }, "namespace"},
		{"non-hex value", func(m *manifest.Manifest, _ *Options) { m.Measurements[0].Values["launch_measurement"] = "xyz" }, "is not hex"},
		{"duplicate", func(m *manifest.Manifest, _ *Options) { m.Measurements[1].Name = m.Measurements[0].Name }, "appears twice"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := testManifest()
			o := Options{TEEs: testTEEs, Name: "sample", Version: "1.0.0", Expires: testExpires}
			c.edit(m, &o)
			_, err := NewRelease(m, o)
			if err == nil || !strings.Contains(err.Error(), c.text) {
				t.Errorf("error %v, want one mentioning %q", err, c.text)
			}
		})
	}
}

func TestReleaseModel(t *testing.T) {
	r := testRelease(t, "v1.0.0")
	if r.Version != "1.0.0" {
		t.Errorf("version %q, want 1.0.0 (without v)", r.Version)
	}
	if want := time.Unix(1700000000, 0).UTC(); !r.Issued.Equal(want) {
		t.Errorf("issued %s, want the recipe epoch %s", r.Issued, want)
	}
	var tdx *Entry
	for i := range r.Entries {
		if r.Entries[i].Name == "tdx/memory=2G" {
			tdx = &r.Entries[i]
		}
	}
	if tdx == nil {
		t.Fatal("no tdx/memory=2G entry")
	}
	want := []Derived{
		{Param: "firmware_sha256", Name: "input.ovmf", SHA256: digest256("firmware")},
		{Param: "kernel_sha256", Name: "kernel.guest", SHA256: digest256("kernel")},
	}
	if diff := cmp.Diff(want, tdx.DerivedFrom); diff != "" {
		t.Errorf("derived_from (-want +got):\n%s", diff)
	}
	if tdx.Recipe != digest256("recipe") || tdx.Version != "1.0.0" || !tdx.Expires.Equal(testExpires) {
		t.Errorf("entry recipe/version/expires = %s/%s/%s", tdx.Recipe, tdx.Version, tdx.Expires)
	}
}

func TestCompareVersions(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"1.0.0", "1.0.1", -1}, {"1.10.0", "1.9.0", 1}, {"v2.0.0", "2.0.0", 0}, {"1.0.0-rc1", "1.0.0", -1},
	}
	for _, c := range cases {
		if got := CompareVersions(c.a, c.b); got != c.want {
			t.Errorf("CompareVersions(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestNoPrivateKeyInDocuments(t *testing.T) {
	for _, alg := range []sign.Algorithm{sign.ECDSAP256, sign.Ed25519} {
		var secret [][]byte
		var k crypto.Signer
		switch alg {
		case sign.ECDSAP256:
			ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			scalar, err := ek.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			k, secret = ek, append(secret, scalar)
		case sign.Ed25519:
			_, ek, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			k, secret = ek, append(secret, ek.Seed())
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		secret = append(secret, der)
		s, err := sign.NewSigner(k)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range signAll(t, testRelease(t, "1.0.0"), s) {
			for _, enc := range []func([]byte) string{func(b []byte) string { return string(b) }, hex.EncodeToString, base64.StdEncoding.EncodeToString} {
				for _, sec := range secret {
					if bytes.Contains(d.Data, []byte(enc(sec))) {
						t.Errorf("%s: %s holds the private key", alg, d.Name)
					}
				}
			}
			if bytes.Contains(d.Data, []byte("PRIVATE KEY")) {
				t.Errorf("%s: %s holds a private key PEM", alg, d.Name)
			}
		}
	}
}

// dropDoc returns docs without the named documents.
func dropDoc(docs []Document, names ...string) []Document {
	var out []Document
	for _, d := range docs {
		if !slices.Contains(names, d.Name) {
			out = append(out, d)
		}
	}
	return out
}

func mustMessageBundle(t *testing.T, msg []byte, s *sign.Signer) []byte {
	t.Helper()
	b, err := SignMessageBundle(msg, s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// flipSignature flips a bit of the signature of a message-signature bundle.
func flipSignature(t *testing.T, b []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	ms := m["messageSignature"].(map[string]any)
	sig, err := decodeB64(ms["signature"].(string))
	if err != nil {
		t.Fatal(err)
	}
	sig[len(sig)/2] ^= 1
	ms["signature"] = encodeB64(sig)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestNewReleaseLeavesOutEarlierDocuments: the documents of a release a
// publish block already made (kind reference-values, or below publish/)
// are never subjects of a release of the same manifest.
func TestNewReleaseLeavesOutEarlierDocuments(t *testing.T) {
	for _, a := range []manifest.Artifact{
		{Name: "publish.sample/rvps.json", Kind: ArtifactKindReferenceValues, Path: "publish/sample/rvps.json", SHA256: digest256("rvps"), Size: 40},
		{Name: "publish.sample/cosign.pub", Kind: "file", Path: "publish/sample/cosign.pub", SHA256: digest256("pub"), Size: 50},
		{Name: "odd", Kind: ArtifactKindReferenceValues, Path: "elsewhere/statement.sigstore.json", SHA256: digest256("st"), Size: 60},
	} {
		t.Run(a.Path, func(t *testing.T) {
			m := testManifest()
			m.Artifacts = append(m.Artifacts, a)
			r, err := NewRelease(m, Options{TEEs: testTEEs, Name: "sample", Version: "1.0.0", Expires: testExpires, Namespace: "example.org/coco"})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(testRelease(t, "1.0.0").Subjects, r.Subjects); diff != "" {
				t.Errorf("subjects (-want +got):\n%s", diff)
			}
		})
	}
}
