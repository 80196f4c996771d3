package pe

import (
	"crypto"
	"fmt"
	"hash"
	"sort"

	_ "crypto/sha1"   // register SHA-1 for crypto.Hash users
	_ "crypto/sha256" // register SHA-256
	_ "crypto/sha512" // register SHA-384 and SHA-512
)

// Authenticode parses b and returns its Authenticode digest with h (for
// example crypto.SHA256 or crypto.SHA384). See File.Authenticode.
func Authenticode(b []byte, h crypto.Hash) ([]byte, error) {
	f, err := Parse(b)
	if err != nil {
		return nil, err
	}
	return f.Authenticode(h)
}

// Authenticode returns the image's Authenticode digest with h, computed as
// the Authenticode specification and edk2 (DxeImageVerificationLib,
// MeasureBootPeCoff) do:
//
//  1. the headers up to SizeOfHeaders, without the CheckSum field and
//     without the certificate table's data directory entry;
//  2. every section with raw data, in ascending PointerToRawData order;
//  3. the bytes after those (from offset SizeOfHeaders + the sum of the
//     sections' SizeOfRawData) up to the end of the file less the size of
//     the certificate table.
//
// For a well-formed signed image this equals what pesign and osslsigncode
// compute.
func (f *File) Authenticode(h crypto.Hash) ([]byte, error) {
	if !h.Available() {
		return nil, fmt.Errorf("hash %v is not available: link its implementation", h)
	}
	d := h.New()
	if err := f.WriteAuthenticode(d); err != nil {
		return nil, err
	}
	return d.Sum(nil), nil
}

// WriteAuthenticode writes the bytes that the Authenticode digest covers to
// d, in order (see Authenticode).
func (f *File) WriteAuthenticode(d hash.Hash) error {
	b := f.data
	hdrs := int(f.SizeOfHeaders) // Parse checked it lies within b and past the skipped fields
	d.Write(b[:f.CheckSumOffset])
	if f.SecurityDirOffset >= 0 {
		d.Write(b[f.CheckSumOffset+4 : f.SecurityDirOffset])
		d.Write(b[f.SecurityDirOffset+8 : hdrs])
	} else {
		d.Write(b[f.CheckSumOffset+4 : hdrs])
	}

	secs := make([]*Section, 0, len(f.Sections))
	for i := range f.Sections {
		if f.Sections[i].SizeOfRawData != 0 {
			secs = append(secs, &f.Sections[i])
		}
	}
	sort.SliceStable(secs, func(i, j int) bool { return secs[i].PointerToRawData < secs[j].PointerToRawData })
	hashed := uint64(hdrs)
	for _, s := range secs {
		data, err := f.SectionData(s)
		if err != nil {
			return fmt.Errorf("authenticode: %w", err)
		}
		d.Write(data)
		hashed += uint64(s.SizeOfRawData)
	}

	size := uint64(len(b))
	if size > hashed {
		_, certSize := f.CertificateTable()
		switch end := size - uint64(certSize); {
		case size < hashed+uint64(certSize):
			return fmt.Errorf("authenticode: the %d-byte file is smaller than its headers and sections (%d bytes) plus its certificate table (%d bytes): corrupt image", size, hashed, certSize)
		case end > hashed:
			d.Write(b[hashed:end])
		}
	}
	return nil
}
