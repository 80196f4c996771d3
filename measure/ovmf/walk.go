package ovmf

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/linuxboot/fiano/pkg/compression"
	"github.com/linuxboot/fiano/pkg/guid"
	fianolog "github.com/linuxboot/fiano/pkg/log"
	"github.com/linuxboot/fiano/pkg/uefi"
)

// The firmware volumes, their FFS files and sections are parsed by fiano's
// pkg/uefi. That package keeps its settings in package variables (erase
// polarity, read-only mode, decompression, its logger), so every use of it
// here holds fianoMu and sets them for the call:
//   - ReadOnly: sections alias the image instead of being copied;
//   - DisableDecompression: fiano would otherwise run a system `xz` found
//     on PATH and decompress without a size bound; this package decompresses
//     LZMA sections itself, with fiano's pure-Go LZMA codec, after checking
//     the declared size against a budget;
//   - SuppressErasePolarityError: each volume sets its own erase polarity
//     rather than the first volume ever parsed in the process fixing it;
//   - a discarding logger: fiano logs unsupported volumes to stderr.
//
// fiano also panics on some malformed inputs (short version sections); the
// walk recovers and reports them as errors.
var fianoMu sync.Mutex

type discardLogger struct{}

func (discardLogger) Warnf(string, ...interface{})  {}
func (discardLogger) Errorf(string, ...interface{}) {}
func (discardLogger) Fatalf(f string, a ...interface{}) {
	panic(fmt.Sprintf("fiano: "+f, a...))
}

// withFiano runs fn with fiano's package settings as this package needs
// them and restores them afterwards; a panic in fn becomes an error.
func withFiano(fn func() error) (err error) {
	fianoMu.Lock()
	defer fianoMu.Unlock()
	ro, dd, sup, attrs, logger := uefi.ReadOnly, uefi.DisableDecompression, uefi.SuppressErasePolarityError, uefi.Attributes, fianolog.DefaultLogger
	uefi.ReadOnly, uefi.DisableDecompression, uefi.SuppressErasePolarityError, fianolog.DefaultLogger = true, true, true, discardLogger{}
	defer func() {
		uefi.ReadOnly, uefi.DisableDecompression, uefi.SuppressErasePolarityError, uefi.Attributes, fianolog.DefaultLogger = ro, dd, sup, attrs, logger
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed firmware volume (the UEFI parser gave up: %v)", r)
		}
	}()
	return fn()
}

// Limits on what a walk decompresses and how deep it nests, so that a
// crafted image cannot make Inspect allocate without bound. Real OVMF
// images decompress to about 15 MiB in two levels.
const (
	maxDecompressed = 128 << 20
	maxDepth        = 8
	maxModules      = 4096
)

// module is one FFS file with what the inspector reads from it.
type module struct {
	GUID     guid.GUID
	Type     uefi.FVFileType
	Name     string   // UI section, "" if none
	Version  string   // version section, "" if none
	Bodies   [][]byte // PE32/TE/raw/freeform section contents
	Volume   guid.GUID
	Nested   bool // found inside a decompressed volume
	Compress string
}

// volume is a firmware volume found in the image.
type volume struct {
	Offset int // in the image; -1 for volumes inside sections
	Length uint64
	FSGUID guid.GUID
	Name   guid.GUID // from the extended header, zero if none
	Files  int
}

// walker collects modules and volumes while fiano parses.
type walker struct {
	modules      []*module
	volumes      []volume
	decompressed int
	compressions map[string]bool
}

// walkImage finds the firmware volumes of image (at 8-byte aligned offsets,
// as fiano's BIOS region parser does) and walks those in FFS2/FFS3 format;
// the others (the UEFI variable store) are listed and left to their own
// parsers.
func walkImage(image []byte) (*walker, error) {
	w := &walker{compressions: map[string]bool{}}
	err := withFiano(func() error {
		for off := 0; off < len(image); {
			rel := uefi.FindFirmwareVolumeOffset(image[off:])
			if rel < 0 {
				break
			}
			start := off + int(rel)
			if start < off { // a signature in the first 40 bytes
				off += 8
				continue
			}
			fv, err := w.volume(image[start:], start, 0)
			if err != nil {
				return fmt.Errorf("firmware volume at offset %#x: %w", start, err)
			}
			if fv.Length == 0 {
				return fmt.Errorf("firmware volume at offset %#x has length 0", start)
			}
			off = start + int(fv.Length)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// supportedFS are the volume formats whose files fiano parses.
var supportedFS = map[guid.GUID]bool{*uefi.FFS2: true, *uefi.FFS3: true}

func (w *walker) volume(data []byte, offset, depth int) (*uefi.FirmwareVolume, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("volumes nested more than %d deep", maxDepth)
	}
	if len(data) < uefi.FirmwareVolumeMinSize {
		return nil, fmt.Errorf("%d bytes left, less than a volume header", len(data))
	}
	fsGUID := guid.GUID(data[16:32])
	length := binary.LittleEndian.Uint64(data[32:40])
	if length < uefi.FirmwareVolumeMinSize || length > uint64(len(data)) {
		return nil, fmt.Errorf("volume length %#x is outside %#x..%#x", length, uefi.FirmwareVolumeMinSize, len(data))
	}
	if !supportedFS[fsGUID] {
		w.volumes = append(w.volumes, volume{Offset: offset, Length: length, FSGUID: fsGUID})
		return &uefi.FirmwareVolume{FirmwareVolumeFixedHeader: uefi.FirmwareVolumeFixedHeader{FileSystemGUID: fsGUID, Length: length}}, nil
	}
	// Volumes inside sections are parsed by fiano along with their section.
	fv, err := uefi.NewFirmwareVolume(data[:length], uint64(max(offset, 0)), false)
	if err != nil {
		return nil, err
	}
	return fv, w.files(fv, offset, depth)
}

func (w *walker) files(fv *uefi.FirmwareVolume, offset, depth int) error {
	w.volumes = append(w.volumes, volume{Offset: offset, Length: fv.Length, FSGUID: fv.FileSystemGUID, Name: fv.FVName, Files: len(fv.Files)})
	for _, f := range fv.Files {
		if f.Header.Type == uefi.FVFileTypePad {
			continue
		}
		if len(w.modules) >= maxModules {
			return fmt.Errorf("more than %d files", maxModules)
		}
		m := &module{GUID: f.Header.GUID, Type: f.Header.Type, Volume: fv.FVName, Nested: depth > 0}
		w.modules = append(w.modules, m)
		var err error
		if f.Header.Type == uefi.FVFileTypePEIM && len(f.Sections) == 0 {
			// fiano leaves PEIMs unparsed (uefi.SupportedFiles, so that
			// it can rebuild images); their sections are parsed here
			// with fiano's section parser.
			if b := f.Buf(); f.DataOffset <= uint64(len(b)) {
				err = w.parseSections(m, b[f.DataOffset:], depth)
			}
		} else {
			err = w.sections(m, f.Sections, depth)
		}
		if err != nil {
			return fmt.Errorf("file %v: %w", f.Header.GUID, err)
		}
	}
	return nil
}

func (w *walker) sections(m *module, secs []*uefi.Section, depth int) error {
	for _, s := range secs {
		hdr := sectionHeaderLen(s)
		buf := s.Buf()
		if hdr > len(buf) {
			return fmt.Errorf("section of %d bytes shorter than its header", len(buf))
		}
		switch s.Header.Type {
		case uefi.SectionTypeUserInterface:
			m.Name = s.Name
		case uefi.SectionTypeVersion:
			m.Version = s.Version
		case uefi.SectionTypePE32, uefi.SectionTypeTE, uefi.SectionTypeRaw, uefi.SectionTypeFreeformSubtypeGUID, uefi.SectionTypePIC:
			m.Bodies = append(m.Bodies, buf[hdr:])
		case uefi.SectionTypeFirmwareVolumeImage:
			for _, e := range s.Encapsulated {
				if fv, ok := e.Value.(*uefi.FirmwareVolume); ok {
					if err := w.nested(fv, depth+1); err != nil {
						return err
					}
				}
			}
		case uefi.SectionTypeGUIDDefined:
			if err := w.guided(m, s, depth); err != nil {
				return err
			}
		}
		var sub []*uefi.Section
		for _, e := range s.Encapsulated {
			if es, ok := e.Value.(*uefi.Section); ok {
				sub = append(sub, es)
			}
		}
		if len(sub) > 0 {
			if depth+1 > maxDepth {
				return fmt.Errorf("sections nested more than %d deep", maxDepth)
			}
			if err := w.sections(m, sub, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// nested walks a volume that fiano parsed inside a section.
func (w *walker) nested(fv *uefi.FirmwareVolume, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("volumes nested more than %d deep", maxDepth)
	}
	if !supportedFS[fv.FileSystemGUID] {
		w.volumes = append(w.volumes, volume{Offset: -1, Length: fv.Length, FSGUID: fv.FileSystemGUID})
		return nil
	}
	return w.files(fv, -1, depth)
}

// guided handles a GUID-defined section: LZMA-compressed ones are
// decompressed (within the budget) and their sections parsed by fiano.
func (w *walker) guided(m *module, s *uefi.Section, depth int) error {
	spec, ok := s.TypeSpecific.Header.(*uefi.SectionGUIDDefined)
	if !ok || s.TypeSpecific == nil {
		return nil
	}
	buf := s.Buf()
	if int(spec.DataOffset) > len(buf) {
		return fmt.Errorf("GUID-defined section data offset %#x beyond its %d bytes", spec.DataOffset, len(buf))
	}
	data := buf[spec.DataOffset:]
	if spec.Attributes&uint16(uefi.GUIDEDSectionProcessingRequired) == 0 {
		// Not encoded (e.g. an authentication wrapper): the sections follow.
		return w.parseSections(m, data, depth)
	}
	var c compression.Compressor
	switch spec.GUID {
	case compression.LZMAGUID:
		c = &compression.LZMA{}
	default:
		w.compressions[spec.GUID.String()] = true
		return nil // an encoding this package does not read (e.g. Brotli)
	}
	w.compressions[c.Name()] = true
	m.Compress = c.Name()
	// An LZMA stream starts with 5 bytes of properties and the
	// uncompressed size (u64, all ones when unknown).
	if len(data) < 13 {
		return fmt.Errorf("%s section of %d bytes: too short", c.Name(), len(data))
	}
	size := binary.LittleEndian.Uint64(data[5:13])
	if size > uint64(maxDecompressed-w.decompressed) {
		return fmt.Errorf("%s section declares %d bytes uncompressed; this image already decompressed %d and the limit is %d", c.Name(), int64(size), w.decompressed, maxDecompressed)
	}
	w.decompressed += int(size)
	out, err := c.Decode(data)
	if err != nil {
		return fmt.Errorf("%s section: %w", c.Name(), err)
	}
	return w.parseSections(m, out, depth)
}

// parseSections has fiano parse a run of sections (4-byte aligned, as edk2
// lays them out) and walks them.
func (w *walker) parseSections(m *module, buf []byte, depth int) error {
	if depth+1 > maxDepth {
		return fmt.Errorf("sections nested more than %d deep", maxDepth)
	}
	var secs []*uefi.Section
	for i, off := 0, uint64(0); off+4 <= uint64(len(buf)); i++ {
		s, err := uefi.NewSection(buf[off:], i)
		if err != nil {
			return fmt.Errorf("encapsulated section %d at offset %#x: %w", i, off, err)
		}
		if s.Header.ExtendedSize == 0 {
			return fmt.Errorf("encapsulated section %d at offset %#x has size 0", i, off)
		}
		secs = append(secs, s)
		off = uefi.Align4(off + uint64(s.Header.ExtendedSize))
	}
	return w.sections(m, secs, depth+1)
}

// sectionHeaderLen is the length of a section's common header (4 bytes, or
// 8 with the extended size), not counting type-specific headers.
func sectionHeaderLen(s *uefi.Section) int {
	if s.Header.Size == [3]uint8{0xff, 0xff, 0xff} {
		return 8
	}
	return 4
}
