package sev

import (
	"crypto/sha512"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// benchParams is the benchmark: 4 vCPUs, SNP, debian12_OVMF.fd.
func benchParams(b *testing.B) Params {
	b.Helper()
	return Params{Mode: ModeSNP, Firmware: testenv.ReadVector(b, "inputs/debian12_OVMF.fd"),
		VCPUs: 4, VCPUType: "EPYC-Milan", GuestFeatures: 1}
}

// BenchmarkSNPDigest4VCPU measures the whole SNP digest: firmware parsing,
// VMSA construction and the PAGE_INFO chain. Its bytes/s count the bytes the
// SNP algorithm hashes (pages and PAGE_INFOs), as BenchmarkRawSHA384SameBytes does.
func BenchmarkSNPDigest4VCPU(b *testing.B) {
	p := benchParams(b)
	_, st, err := measure(p, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.logical)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Measure(p); err != nil {
			b.Fatal(err)
		}
	}
	// Repeated firmware pages (erased flash) and AP VMSAs are hashed once.
	b.ReportMetric(float64(st.hashed), "hashed-bytes/op")
	b.ReportMetric(float64(st.logical), "algorithm-bytes/op")
}

// BenchmarkRawSHA384SameBytes hashes, in one SHA-384 stream, as many bytes as
// the SNP algorithm hashes for BenchmarkSNPDigest4VCPU.
func BenchmarkRawSHA384SameBytes(b *testing.B) {
	_, st, err := measure(benchParams(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, st.logical)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	b.SetBytes(st.logical)
	b.ReportAllocs()
	var sum [DigestSize]byte
	for b.Loop() {
		sum = sha512.Sum384(buf)
	}
	_ = sum
}

// TestChainCountsBytes checks the byte count the benchmarks rely on:
// firmware pages plus VMSA pages, and one PAGE_INFO per measured page.
func TestChainCountsBytes(t *testing.T) {
	p := Params{Mode: ModeSNP, Firmware: testenv.ReadVector(t, "inputs/debian12_OVMF.fd"), VCPUs: 4, VCPUType: "EPYC-Milan", GuestFeatures: 1}
	_, st, err := measure(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	fw, err := ParseFirmware(p.Firmware)
	if err != nil {
		t.Fatal(err)
	}
	pages := int64(len(p.Firmware) / PageSize)
	infos := pages + int64(p.VCPUs)
	for _, s := range fw.Sections {
		switch s.Type {
		case SectionSNPSecrets, SectionCPUID:
			infos++
		default:
			infos += int64(s.Size / PageSize)
		}
	}
	want := (pages+int64(p.VCPUs))*PageSize + infos*pageInfoSize
	if st.logical != want {
		t.Errorf("logical bytes = %d, want %d", st.logical, want)
	}
	if st.hashed > st.logical || st.hashed < infos*pageInfoSize {
		t.Errorf("hashed bytes = %d, want between %d and %d", st.hashed, infos*pageInfoSize, st.logical)
	}
}

// BenchmarkSNPPreparedMatrix measures a recipe-sized matrix (every CPU type
// sev-snp-measure knows times 1, 2, 4 and 8 vCPUs) on one prepared firmware.
func BenchmarkSNPPreparedMatrix(b *testing.B) {
	p := benchParams(b)
	b.ReportAllocs()
	for b.Loop() {
		pre, err := Prepare(p.Firmware)
		if err != nil {
			b.Fatal(err)
		}
		for _, cpu := range CPUTypes() {
			for _, n := range []int{1, 2, 4, 8} {
				q := p
				q.VCPUType, q.VCPUs, q.Firmware = cpu, n, nil
				if _, err := pre.Measure(q); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}
