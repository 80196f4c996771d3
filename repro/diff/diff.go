// Package diff explains why two builds differ: it compares output trees
// file by file and, inside differing files it understands (cpio archives,
// tar archives, GPT disk images, JSON documents), member by member, so that
// a reproducibility failure names the entry that changed rather than just
// the artifact.
package diff

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cocobuild/cocobuild/internal/decompress"
)

// Difference is one thing that differs between A and B.
type Difference struct {
	Artifact string `json:"artifact"`         // the file, relative to the compared root
	Format   string `json:"format,omitempty"` // how it was read: cpio, tar, gpt, json, bytes
	Member   string `json:"member,omitempty"` // inside the artifact: an entry, a partition, a JSON field
	// What names every aspect that differs: missing in a/b, type, mode,
	// owner, link, size, content or value, and the format's own attributes
	// (for GPT: name, unique guid, attributes, first sector, disk guid).
	What string `json:"what"`
	A    string `json:"a,omitempty"`
	B    string `json:"b,omitempty"`
}

// Attr is a property of a member that only some formats have, such as a
// GPT partition's unique GUID; it is compared by name.
type Attr struct {
	Name, Value string
}

// Member is an entry inside an artifact.
type Member struct {
	Name  string // identifies the member in both artifacts
	Label string // shown in reports instead of Name when set
	Type  string // file, dir, symlink, device, partition, value…
	Mode  string
	Owner string
	Size  int64
	Link  string
	Hash  string // of the content, or the value itself for JSON
	Attrs []Attr // format-specific, compared by name
	Order int    // position in the artifact
}

func (d Difference) String() string {
	s := d.Artifact
	if d.Member != "" {
		s += " [" + d.Format + "] " + d.Member
	}
	s += ": " + d.What
	if d.A != "" || d.B != "" {
		s += fmt.Sprintf(" (a: %s, b: %s)", orNone(d.A), orNone(d.B))
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Report is the result of a comparison.
type Report struct {
	Compared    int          `json:"compared"` // files compared
	Differences []Difference `json:"differences"`
}

// Identical says nothing differs.
func (r *Report) Identical() bool { return len(r.Differences) == 0 }

// MaxMembers bounds the member differences reported per artifact; the rest
// are counted in one line.
const MaxMembers = 20

// Paths compares two directories (recursively) or two files.
func Paths(a, b string) (*Report, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return nil, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return nil, err
	}
	switch {
	case sa.IsDir() && sb.IsDir():
		return Trees(a, b)
	case !sa.IsDir() && !sb.IsDir():
		ba, err := os.ReadFile(a)
		if err != nil {
			return nil, err
		}
		bb, err := os.ReadFile(b)
		if err != nil {
			return nil, err
		}
		return &Report{Compared: 1, Differences: Files(filepath.Base(a), ba, bb)}, nil
	}
	return nil, fmt.Errorf("compare a directory with a directory or a file with a file: %s and %s", a, b)
}

// Trees compares every file below two directories.
func Trees(a, b string) (*Report, error) {
	fa, err := listTree(a)
	if err != nil {
		return nil, err
	}
	fb, err := listTree(b)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for n := range fa {
		names[n] = true
	}
	for n := range fb {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	rep := &Report{Differences: []Difference{}}
	for _, n := range sorted {
		ia, inA := fa[n]
		ib, inB := fb[n]
		switch {
		case !inB:
			rep.Differences = append(rep.Differences, Difference{Artifact: n, What: "missing in b"})
			continue
		case !inA:
			rep.Differences = append(rep.Differences, Difference{Artifact: n, What: "missing in a"})
			continue
		}
		rep.Compared++
		if ia.Mode() != ib.Mode() {
			rep.Differences = append(rep.Differences, Difference{Artifact: n, What: "mode", A: ia.Mode().String(), B: ib.Mode().String()})
		}
		if ia.IsDir() || ib.IsDir() {
			continue
		}
		ba, err := os.ReadFile(filepath.Join(a, n))
		if err != nil {
			return nil, err
		}
		bb, err := os.ReadFile(filepath.Join(b, n))
		if err != nil {
			return nil, err
		}
		rep.Differences = append(rep.Differences, Files(n, ba, bb)...)
	}
	return rep, nil
}

func listTree(root string) (map[string]fs.FileInfo, error) {
	out := map[string]fs.FileInfo{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = info
		return nil
	})
	return out, err
}

// Files compares the contents of one artifact, member by member when its
// format is known. An artifact that decompresses to more than 4 GiB is
// compared as bytes, and the difference says so.
func Files(name string, a, b []byte) []Difference { return files(name, a, b, maxDecompressed) }

// files is Files with a bound on what it decompresses of each artifact.
func files(name string, a, b []byte, limit int64) []Difference {
	if bytes.Equal(a, b) {
		return nil
	}
	var tooLarge error // why members were not compared, when it is size
	for _, f := range formats {
		if !f.match(name, a) || !f.match(name, b) {
			continue
		}
		ma, errA := f.members(a, limit)
		mb, errB := f.members(b, limit)
		if errA != nil || errB != nil {
			for _, err := range []error{errA, errB} {
				if errors.Is(err, decompress.ErrTooLarge) {
					tooLarge = err
				}
			}
			break // fall back to bytes
		}
		ds := compareMembers(name, f.name, ma, mb)
		if len(ds) == 0 {
			// Same members, different bytes: layout, padding or order.
			ds = append(ds, Difference{Artifact: name, Format: f.name, What: "layout (same members, different bytes)",
				A: digest(a), B: digest(b)})
			if i := firstDiff(a, b); i >= 0 {
				ds[0].What += fmt.Sprintf("; first differing byte at offset %d", i)
			}
		}
		return ds
	}
	d := Difference{Artifact: name, Format: "bytes", What: "content", A: digest(a), B: digest(b)}
	if len(a) != len(b) {
		d.What = fmt.Sprintf("content and size (%d vs %d bytes)", len(a), len(b))
	}
	if tooLarge != nil {
		d.What += fmt.Sprintf("; not compared member by member: %v", tooLarge)
	}
	if i := firstDiff(a, b); i >= 0 {
		d.What += fmt.Sprintf("; first differing byte at offset %d", i)
	}
	return []Difference{d}
}

func firstDiff(a, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return n
	}
	return -1
}

// short abbreviates a hex digest, and any value too long to read in a
// report (a base64 payload, say) to its start and its digest.
func short(s string) string {
	if len(s) == 64 && strings.Trim(s, "0123456789abcdef") == "" {
		return s[:16]
	}
	if len(s) > 100 {
		return fmt.Sprintf("%s… (%d bytes, %s)", s[:40], len(s), digest([]byte(s)))
	}
	return s
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:8])
}

// format reads the members of one kind of artifact.
type format struct {
	name    string
	match   func(name string, b []byte) bool
	members func(b []byte, limit int64) ([]Member, error) // limit: what may be decompressed
}

var formats = []format{cpioFormat, tarFormat, gptFormat, jsonFormat}

func compareMembers(artifact, format string, a, b []Member) []Difference {
	ma := map[string]Member{}
	for _, m := range a {
		ma[m.Name] = m
	}
	mb := map[string]Member{}
	for _, m := range b {
		mb[m.Name] = m
	}
	var names []string
	seen := map[string]bool{}
	for _, m := range append(append([]Member{}, a...), b...) {
		if !seen[m.Name] {
			seen[m.Name] = true
			names = append(names, m.Name)
		}
	}
	sort.Strings(names)
	var out []Difference
	add := func(member, what, va, vb string) {
		out = append(out, Difference{Artifact: artifact, Format: format, Member: member, What: what, A: va, B: vb})
	}
	label := func(m Member) string {
		if m.Label != "" {
			return m.Label
		}
		return m.Name
	}
	for _, n := range names {
		x, inA := ma[n]
		y, inB := mb[n]
		switch {
		case !inB:
			add(label(x), "missing in b", "", "")
			continue
		case !inA:
			add(label(y), "missing in a", "", "")
			continue
		}
		// One line per member, naming every aspect that differs.
		var whats, as, bs []string
		aspect := func(what, va, vb string) {
			if va != vb {
				whats, as, bs = append(whats, what), append(as, va), append(bs, vb)
			}
		}
		aspect("type", x.Type, y.Type)
		aspect("mode", x.Mode, y.Mode)
		aspect("owner", x.Owner, y.Owner)
		aspect("link", x.Link, y.Link)
		aspect("size", fmt.Sprint(x.Size), fmt.Sprint(y.Size))
		contentWord := "content"
		if format == "json" {
			contentWord = "value"
		}
		aspect(contentWord, short(x.Hash), short(y.Hash))
		for _, name := range attrNames(x.Attrs, y.Attrs) {
			aspect(name, attrValue(x.Attrs, name), attrValue(y.Attrs, name))
		}
		if len(whats) > 0 {
			add(label(x), strings.Join(whats, ", "), strings.Join(as, "; "), strings.Join(bs, "; "))
		}
	}
	if len(out) == 0 {
		// Same members: maybe another order.
		for i := range a {
			if i < len(b) && a[i].Name != b[i].Name {
				add(label(a[i]), "order", fmt.Sprintf("position %d", a[i].Order), fmt.Sprintf("%s at position %d", b[i].Name, b[i].Order))
				break
			}
		}
	}
	if len(out) > MaxMembers {
		extra := len(out) - MaxMembers
		out = append(out[:MaxMembers], Difference{Artifact: artifact, Format: format, What: fmt.Sprintf("… and %d more differences", extra)})
	}
	return out
}

// attrNames lists the names of a's attributes, then those only b has.
func attrNames(a, b []Attr) []string {
	var names []string
	seen := map[string]bool{}
	for _, at := range append(append([]Attr{}, a...), b...) {
		if !seen[at.Name] {
			seen[at.Name] = true
			names = append(names, at.Name)
		}
	}
	return names
}

func attrValue(attrs []Attr, name string) string {
	for _, at := range attrs {
		if at.Name == name {
			return at.Value
		}
	}
	return ""
}
