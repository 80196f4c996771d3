package sev

import (
	"crypto/sha256"
	"crypto/sha512"
	"slices"
	"testing"
	"time"

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

// BenchmarkSNPDirectBootVsHashOnce measures the case (Debian's 4 MiB
// OVMF.amdsev.fd, a 14 MB kernel, a 1 MiB initrd, 2 vCPUs) and reports the
// cost of hashing its bytes once beside it: SHA-256 over the kernel, initrd
// and cmdline (the hashes table) and SHA-384 over the bytes of the SNP
// algorithm (pages and PAGE_INFOs). The goal: x-hash-once <= 1.2.
func BenchmarkSNPDirectBootVsHashOnce(b *testing.B) {
	p := Params{Mode: ModeSNP, Firmware: testenv.ReadVector(b, "inputs/debian-sid_OVMF.amdsev.fd"),
		VCPUs: 2, VCPUType: "EPYC-Milan", GuestFeatures: 1,
		DirectBoot: &DirectBoot{Kernel: testenv.ReadVector(b, "inputs/vmlinuz-6.1.0-56-cloud-amd64"),
			Initrd: testenv.ReadVector(b, "inputs/initrd-b.bin"), Cmdline: "console=ttyS0 root=/dev/vda1"}}
	_, st, err := measure(p, nil)
	if err != nil {
		b.Fatal(err)
	}
	pages := make([]byte, st.logical)
	for i := range pages {
		pages[i] = byte(i * 7)
	}
	once := timeOnce(func() {
		sha256.Sum256(p.DirectBoot.Kernel)
		sha256.Sum256(p.DirectBoot.Initrd)
		sha256.Sum256([]byte(p.DirectBoot.Cmdline + "\x00"))
		sha512.Sum384(pages)
	})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Measure(p); err != nil {
			b.Fatal(err)
		}
	}
	measured := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(float64(once.Nanoseconds())/1e6, "hash-once-ms")
	b.ReportMetric(measured/1e6, "measure-ms")
	b.ReportMetric(measured/float64(once.Nanoseconds()), "x-hash-once")
}

// timeOnce is the median time of fn over 15 runs (a benchmark cannot run
// another with testing.Benchmark).
func timeOnce(fn func()) time.Duration {
	var ds []time.Duration
	for range 15 {
		t := time.Now()
		fn()
		ds = append(ds, time.Since(t))
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}
