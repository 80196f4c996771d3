// Package pcr models the TPM PCR values of a guest that boots a unified
// kernel image (UKI): what systemd-stub extends into PCR 11 for the UKI's
// PE sections, and what systemd-pcrphase extends for the boot phases, in
// the SHA-1, SHA-256, SHA-384 and SHA-512 banks. It is the model of
// `cocobuild measure pcr`, which answers as `systemd-measure calculate`
// does. Pure: bytes in, digests out.
//
// PCR 11 starts at zero. For each UKI section present and not empty, in
// the order of Sections (systemd's unified_sections, not the file's
// order), the stub extends the PCR with the digest of the section's name
// with its terminating NUL (".linux\x00"), then with the digest of the
// section's data. systemd-pcrphase then extends it with the digest of
// each word of the phase ("enter-initrd", "leave-initrd", ...), without a
// NUL.
package pcr

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"debug/pe"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"strings"
)

// ModelVersion identifies this package's model; bump it whenever any
// output changes for some input.
const ModelVersion = "1"

// KernelImage is the PCR systemd-stub measures the UKI's sections into
// (TPM_PCR_INDEX_KERNEL_IMAGE).
const KernelImage = 11

// Sections are the UKI sections systemd-stub measures into PCR 11, in the
// order it measures them (systemd's unified_sections without .pcrsig,
// which is never measured). Debian 12's systemd 252 knows the first six
// and .pcrpkey; .uname and .sbat are measured by the stubs of systemd 254
// and later (and computed by their systemd-measure's --uname and --sbat).
var Sections = []string{".linux", ".osrel", ".cmdline", ".initrd", ".splash", ".dtb", ".uname", ".sbat", ".pcrpkey"}

// DefaultPhases are the phases systemd-measure calculates when none is
// given: the boot phases systemd-pcrphase measures up to a booted system.
var DefaultPhases = []string{
	"enter-initrd",
	"enter-initrd:leave-initrd",
	"enter-initrd:leave-initrd:sysinit",
	"enter-initrd:leave-initrd:sysinit:ready",
}

// Bank is a PCR bank: its hash algorithm.
type Bank struct {
	// Name is the bank's name as systemd-measure prints it: sha1,
	// sha256, sha384 or sha512.
	Name string
	// TPMAlg is the TPM 2.0 algorithm identifier (TPM_ALG_SHA256 …).
	TPMAlg  uint16
	newHash func() hash.Hash
}

// New returns a new hash of the bank's algorithm.
func (b Bank) New() hash.Hash { return b.newHash() }

// Size is the size of the bank's digests in bytes.
func (b Bank) Size() int { return b.newHash().Size() }

// Banks are the PCR banks modelled, in systemd-measure's order (by name).
var Banks = []Bank{
	{"sha1", 0x0004, sha1.New},
	{"sha256", 0x000b, sha256.New},
	{"sha384", 0x000c, sha512.New384},
	{"sha512", 0x000d, sha512.New},
}

// bankAliases are the names OpenSSL (which systemd-measure asks) gives the
// algorithms of the TPM banks, lower case.
var bankAliases = map[string]string{
	"sha1": "sha1", "sha-1": "sha1", "ssl3-sha1": "sha1",
	"sha256": "sha256", "sha-256": "sha256", "sha2-256": "sha256",
	"sha384": "sha384", "sha-384": "sha384", "sha2-384": "sha384",
	"sha512": "sha512", "sha-512": "sha512", "sha2-512": "sha512",
}

// ParseBank returns the bank a name (any case, OpenSSL's aliases such as
// SHA2-256 too) stands for.
func ParseBank(name string) (Bank, error) {
	if n, ok := bankAliases[strings.ToLower(name)]; ok {
		for _, b := range Banks {
			if b.Name == n {
				return b, nil
			}
		}
	}
	return Bank{}, fmt.Errorf("unknown PCR bank %q: want sha1, sha256, sha384 or sha512", name)
}

// NormalizePhase returns a phase as systemd-measure and systemd-pcrphase
// take it: its words, split at ':', without empty ones, joined with ':'.
// "" means no phase: the PCR as the stub leaves it.
func NormalizePhase(phase string) string {
	return strings.Join(phaseWords(phase), ":")
}

func phaseWords(phase string) []string {
	var words []string
	for w := range strings.SplitSeq(phase, ":") {
		if w != "" {
			words = append(words, w)
		}
	}
	return words
}

// Section is one UKI section: its name (one of Sections) and its data.
type Section struct {
	Name string
	Data []byte
}

// Event is one extension of a PCR: what a TPM event log records for it.
type Event struct {
	PCR int
	// Type is the TCG event type (EvIPL …), 0 where not set.
	Type uint32
	// Description says what was measured: "section name .linux",
	// "section .linux", "phase word enter-initrd".
	Description string
	// Digest is the digest extended, in the bank's algorithm.
	Digest []byte
}

// Extend returns the PCR value pcr extended with digest:
// H(pcr || digest).
func Extend(b Bank, pcr, digest []byte) []byte {
	h := b.New()
	h.Write(pcr)
	h.Write(digest)
	return h.Sum(nil)
}

func digest(b Bank, data []byte) []byte {
	h := b.New()
	h.Write(data)
	return h.Sum(nil)
}

// checkSections refuses a section that is not one of Sections, or given
// twice.
func checkSections(sections []Section) error {
	seen := map[string]bool{}
	for _, s := range sections {
		if !slices.Contains(Sections, s.Name) {
			return fmt.Errorf("section %q is not one systemd-stub measures (%s)", s.Name, strings.Join(Sections, ", "))
		}
		if seen[s.Name] {
			return fmt.Errorf("section %s given twice", s.Name)
		}
		seen[s.Name] = true
	}
	return nil
}

// UKIEvents returns the extensions of PCR 11 systemd-stub makes for the
// sections of a UKI, in the order it makes them; empty sections are
// skipped, as the stub skips them.
func UKIEvents(b Bank, sections []Section) ([]Event, error) {
	if err := checkSections(sections); err != nil {
		return nil, err
	}
	var evs []Event
	for _, name := range Sections {
		for _, s := range sections {
			if s.Name != name || len(s.Data) == 0 {
				continue
			}
			evs = append(evs,
				Event{PCR: KernelImage, Description: "section name " + name, Digest: digest(b, append([]byte(name), 0))},
				Event{PCR: KernelImage, Description: "section " + name, Digest: digest(b, s.Data)})
		}
	}
	return evs, nil
}

// PhaseEvents returns the extensions of PCR 11 systemd-pcrphase makes to
// reach a phase: one per word.
func PhaseEvents(b Bank, phase string) []Event {
	var evs []Event
	for _, w := range phaseWords(phase) {
		evs = append(evs, Event{PCR: KernelImage, Description: "phase word " + w, Digest: digest(b, []byte(w))})
	}
	return evs
}

// Replay returns the value of a PCR that starts at zero and is extended
// with the digests of evs.
func Replay(b Bank, evs []Event) []byte {
	pcr := make([]byte, b.Size())
	for _, e := range evs {
		pcr = Extend(b, pcr, e.Digest)
	}
	return pcr
}

// Value is the expected PCR 11 of one bank after one phase.
type Value struct {
	// Phase is the normalized phase ("" for none).
	Phase string
	Bank  string
	PCR   int
	Value []byte
}

// Calculate returns PCR 11 after each phase, in each bank, as
// systemd-measure calculate does: phases normalized, sorted and without
// duplicates (DefaultPhases when phases is nil), banks sorted by name
// without duplicates (all of Banks when banks is empty); the values ordered
// by phase, then bank.
func Calculate(sections []Section, banks []Bank, phases []string) ([]Value, error) {
	if err := checkSections(sections); err != nil {
		return nil, err
	}
	if len(banks) == 0 {
		banks = Banks
	}
	banks = slices.Clone(banks)
	slices.SortFunc(banks, func(a, b Bank) int { return strings.Compare(a.Name, b.Name) })
	banks = slices.CompactFunc(banks, func(a, b Bank) bool { return a.Name == b.Name })
	if phases == nil {
		phases = DefaultPhases
	}
	var ph []string
	for _, p := range phases {
		ph = append(ph, NormalizePhase(p))
	}
	slices.Sort(ph)
	ph = slices.Compact(ph)

	var out []Value
	base := map[string][]byte{}
	for _, b := range banks {
		evs, err := UKIEvents(b, sections)
		if err != nil {
			return nil, err
		}
		base[b.Name] = Replay(b, evs)
	}
	for _, p := range ph {
		for _, b := range banks {
			v := base[b.Name]
			for _, e := range PhaseEvents(b, p) {
				v = Extend(b, v, e.Digest)
			}
			out = append(out, Value{Phase: p, Bank: b.Name, PCR: KernelImage, Value: v})
		}
	}
	return out, nil
}

// StubVersion returns the systemd release of the stub a UKI was made
// from, as its .sdmagic section says ("#### LoaderInfo: systemd-stub
// 252.39-1~deb12u2 ####" is 252).
func StubVersion(img []byte) (int, error) {
	f, err := pe.NewFile(bytes.NewReader(img))
	if err != nil {
		return 0, fmt.Errorf("not a PE image: %w", err)
	}
	defer f.Close()
	s := f.Section(".sdmagic")
	if s == nil {
		return 0, errors.New("no .sdmagic section: not made from systemd-stub")
	}
	b, err := s.Data()
	if err != nil {
		return 0, fmt.Errorf(".sdmagic: %w", err)
	}
	rest, ok := strings.CutPrefix(string(bytes.TrimRight(b, "\x00")), "#### LoaderInfo: systemd-stub ")
	v, _, _ := strings.Cut(rest, ".")
	n, err := strconv.Atoi(strings.TrimRight(v, " #"))
	if !ok || err != nil || n < 1 {
		return 0, fmt.Errorf(".sdmagic %q: want \"#### LoaderInfo: systemd-stub VERSION ####\"", b)
	}
	return n, nil
}

// MeasuredSections are the sections the stub of a systemd release
// measures, in the order it measures them: up to 253 those of Sections
// but .uname and .sbat, which 254 and 255 measure too (systemd's
// unified_sections). Later releases measure sections not modelled here
// (.ucode, .profile).
func MeasuredSections(version int) ([]string, error) {
	switch {
	case version < 250:
		return nil, fmt.Errorf("systemd-stub %d: the stubs before 250 measure differently (not modelled)", version)
	case version <= 253:
		return slices.DeleteFunc(slices.Clone(Sections), func(s string) bool { return s == ".uname" || s == ".sbat" }), nil
	case version <= 255:
		return slices.Clone(Sections), nil
	}
	return nil, fmt.Errorf("systemd-stub %d: the stubs after 255 measure sections not modelled here (.ucode, .profile)", version)
}

// UKISections returns the sections of a unified kernel image that its
// systemd-stub (StubVersion) measures into PCR 11, in the order it
// measures them, each its VirtualSize bytes as the stub sees them in
// memory: the section's raw data, and zeros where VirtualSize exceeds it.
func UKISections(img []byte) ([]Section, error) {
	v, err := StubVersion(img)
	if err != nil {
		return nil, err
	}
	measured, err := MeasuredSections(v)
	if err != nil {
		return nil, err
	}
	f, err := pe.NewFile(bytes.NewReader(img))
	if err != nil {
		return nil, fmt.Errorf("not a PE image: %w", err)
	}
	defer f.Close()
	byName := map[string]Section{}
	for _, s := range f.Sections {
		if !slices.Contains(measured, s.Name) {
			continue
		}
		if _, dup := byName[s.Name]; dup {
			return nil, fmt.Errorf("section %s appears twice", s.Name)
		}
		if uint64(s.VirtualSize) > uint64(len(img)) || uint64(s.Offset)+uint64(min(s.Size, s.VirtualSize)) > uint64(len(img)) {
			return nil, fmt.Errorf("section %s: its data lies beyond the end of the image", s.Name)
		}
		data := make([]byte, s.VirtualSize)
		copy(data, img[s.Offset:s.Offset+min(s.Size, s.VirtualSize)])
		byName[s.Name] = Section{Name: s.Name, Data: data}
	}
	var out []Section
	for _, n := range measured {
		if s, ok := byName[n]; ok {
			out = append(out, s)
		}
	}
	return out, nil
}
