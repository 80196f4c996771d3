package publish

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/publish/sign"
)

// TestVerifyHintNamesCosignType checks that the hint of every build names
// the cosign v3 commands as cosign takes them: --bundle (not the deprecated
// --signature) and, for the statement, --type with its predicate type,
// without which cosign finds nothing.
func TestVerifyHintNamesCosignType(t *testing.T) {
	for _, pub := range []*sign.PublicKey{sign.DevSigner().Public(), testSigner(t, sign.ECDSAP256).Public()} {
		h := VerifyHint(pub, "OUT", "OUT/publish/sample", testRelease(t, "1.0.0"), true)
		for _, want := range []string{
			"cosign verify-blob --key ",
			"--bundle OUT/publish/sample/" + RVPSBundleFile + " --insecure-ignore-tlog OUT/publish/sample/" + RVPSFile,
			"cosign verify-blob-attestation --key ",
			"--type " + PredicateType + " --bundle OUT/publish/sample/" + StatementFile,
		} {
			if !strings.Contains(h, want) {
				t.Errorf("hint %q does not say %q", h, want)
			}
		}
		if strings.Contains(h, "--signature") {
			t.Errorf("hint %q uses --signature, deprecated in cosign v3", h)
		}
	}
}

// TestVerifyHintFollowsRelease: the build's hint names rvps.json only
// when the release has it, the real file of the disk image (else the first
// file subject), and the pushed disk image when the release names one.
func TestVerifyHintFollowsRelease(t *testing.T) {
	pub := testSigner(t, sign.ECDSAP256).Public()
	withDisk := testRelease(t, "1.0.0")
	withDisk.Subjects = append(withDisk.Subjects, Subject{Name: "disk/guest/disk.qcow2", Kind: "disk", SHA256: strings.Repeat("ef", 32), Size: 100})
	pushed := testRelease(t, "1.0.0")
	pushed.Subjects = append(pushed.Subjects, Subject{Name: "127.0.0.1:5000/coco/sample@sha256:" + strings.Repeat("ab", 32), Kind: SubjectKindOCI, SHA256: strings.Repeat("ab", 32), Size: 500})
	rel := "OUT/publish/s"
	att := "cosign verify-blob-attestation --key PUB --type " + PredicateType + " --bundle " + rel + "/" + StatementFile + " --insecure-ignore-tlog "
	blob := "cosign verify-blob --key PUB --bundle " + rel + "/" + RVPSBundleFile + " --insecure-ignore-tlog " + rel + "/" + RVPSFile
	for _, c := range []struct {
		name      string
		r         *Release
		rvps      bool
		want, not []string
	}{
		{"disk subject, every format", withDisk, true, []string{blob, att + "OUT/disk/guest/disk.qcow2"}, []string{"DISK", "verify-attestation "}},
		{"no rvps format", withDisk, false, []string{att + "OUT/disk/guest/disk.qcow2"}, []string{RVPSBundleFile, RVPSFile}},
		{"no disk: the first file subject", testRelease(t, "1.0.0"), true, []string{att + "OUT/kernel/guest/vmlinuz"}, []string{"DISK"}},
		{"pushed disk image", pushed, true, []string{"cosign verify-attestation --key PUB --type " + PredicateType + " --insecure-ignore-tlog " + pushed.Subjects[len(pushed.Subjects)-1].Name}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := VerifyHint(pub, "OUT", rel, c.r, c.rvps)
			for _, w := range c.want {
				if !strings.Contains(h, w) {
					t.Errorf("hint %q: got no %q, want it", h, w)
				}
			}
			for _, n := range c.not {
				if strings.Contains(h, n) {
					t.Errorf("hint %q: got %q, want none", h, n)
				}
			}
		})
	}
}

func TestCosignHintsOCI(t *testing.T) {
	r := testRelease(t, "1.0.0")
	disk := Subject{Name: "127.0.0.1:5000/coco/sample@sha256:" + strings.Repeat("ab", 32), Kind: SubjectKindOCI, SHA256: strings.Repeat("ab", 32), Size: 500}
	r.Subjects = append(r.Subjects, disk)
	got := CosignHints("PUB", "rel", "out/disk.qcow2", 1<<20, r, false)
	want := []string{
		"cosign verify-blob-attestation --key PUB --type " + PredicateType + " --bundle rel/" + StatementFile + " --insecure-ignore-tlog out/disk.qcow2",
		"cosign verify-attestation --key PUB --type " + PredicateType + " --insecure-ignore-tlog " + disk.Name,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("CosignHints = %q, want %q", got, want)
	}
}

// TestOCISubject checks that a statement may name the pushed disk image by
// its reference by digest (and only so), and that verify --artifacts does
// not look for it among the files.
func TestOCISubject(t *testing.T) {
	ctx := context.Background()
	s := testSigner(t, sign.ECDSAP256)
	hexd := strings.Repeat("cd", 32)
	for _, c := range []struct {
		name, ref, sha string
		ok             bool
	}{
		{"by digest", "127.0.0.1:5000/coco/sample@sha256:" + hexd, hexd, true},
		{"another digest", "127.0.0.1:5000/coco/sample@sha256:" + hexd, strings.Repeat("ef", 32), false},
		{"by tag", "127.0.0.1:5000/coco/sample:disk", hexd, false},
		{"oci:// prefix", "oci://127.0.0.1:5000/coco/sample@sha256:" + hexd, hexd, false},
		{"a path", "../disk", hexd, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := testRelease(t, "1.0.0")
			files := map[string]string{"kernel/guest/vmlinuz": "kernel", "measure/snp/measurements.json": "m"}
			for i := range r.Subjects { // the sizes a build would state for these files
				r.Subjects[i].Size = int64(len(files[r.Subjects[i].Name]))
			}
			r.Subjects = append(r.Subjects, Subject{Name: c.ref, Kind: SubjectKindOCI, SHA256: c.sha})
			docs, err := Sign(ctx, r, s, AllFormats, testTEEs)
			if !c.ok {
				if err == nil {
					t.Fatalf("signed a statement naming %s with sha256 %s", c.ref, c.sha)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// verify --artifacts checks the files, not the disk's manifest.
			out := t.TempDir()
			for p, content := range files {
				p = filepath.Join(out, filepath.FromSlash(p))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			o := verifyAt
			o.Artifacts = out
			v, err := Verify(ctx, docs, s.Public(), o)
			if err != nil {
				t.Fatalf("verify --artifacts: %v", err)
			}
			if !slices.ContainsFunc(v.Checked, func(c string) bool { return strings.HasPrefix(c, "2 subjects match") }) {
				t.Errorf("verify --artifacts says %q, want the 2 files checked", v.Checked)
			}
		})
	}
}

// TestVerifyOneRVPSBundle checks a lone rvps.json with its sigstore bundle
// in place of the detached signature: it verifies, and not for another
// message or key.
func TestVerifyOneRVPSBundle(t *testing.T) {
	ctx := context.Background()
	s := testSigner(t, sign.Ed25519)
	docs := signAll(t, testRelease(t, "1.0.0"), s)
	msg, b := doc(docs, RVPSFile).Data, doc(docs, RVPSBundleFile).Data
	o := VerifyOptions{TEEs: testTEEs, SkipExpiry: true}
	if _, err := VerifyOne(ctx, msg, b, s.Public(), o); err != nil {
		t.Fatalf("rvps.json with its bundle: %v", err)
	}
	other := doc(signAll(t, testRelease(t, "2.0.0"), s), RVPSFile).Data
	if _, err := VerifyOne(ctx, other, b, s.Public(), o); !errors.Is(err, sign.ErrSignature) {
		t.Errorf("another rvps.json with the bundle: %v, want %v", err, sign.ErrSignature)
	}
	if _, err := VerifyOne(ctx, msg, b, testSigner(t, sign.Ed25519).Public(), o); !errors.Is(err, sign.ErrSignature) {
		t.Errorf("the bundle with another key: %v, want %v", err, sign.ErrSignature)
	}
}

// TestCosignHintsLargeArtifact: cosign reads a blob of at most 128 MiB by
// default, so the hint for a larger subject raises COSIGN_MAX_ATTACHMENT_SIZE
// to the subject's size, rounded up to a MiB; at 128 MiB it does not.
func TestCosignHintsLargeArtifact(t *testing.T) {
	for _, tc := range []struct {
		size   int64
		prefix string
	}{{128 << 20, ""}, {128<<20 + 1, "COSIGN_MAX_ATTACHMENT_SIZE=129MiB "}, {137101312, "COSIGN_MAX_ATTACHMENT_SIZE=131MiB "}} {
		got := CosignHints("PUB", "rel", "out/disk.qcow2", tc.size, nil, false)
		want := tc.prefix + "cosign verify-blob-attestation --key PUB --type " + PredicateType + " --bundle rel/" + StatementFile + " --insecure-ignore-tlog out/disk.qcow2"
		if len(got) != 1 || got[0] != want {
			t.Errorf("size %d: CosignHints = %q, want %q", tc.size, got, want)
		}
	}
}
