package fetch

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
)

// SourceEntry is one entry of an apt sources configuration: a line of a
// one-line-style .list file or a stanza of a deb822 .sources file.
type SourceEntry struct {
	File       string // where it was read, relative to the root it was read from
	Line       int    // the entry's first line in File
	Types      []string
	URIs       []string
	Suites     []string
	Components []string
	// SignedBy is the keyring: file paths or fingerprints, or (deb822
	// only) an inline key block, its continuation lines kept as written
	// after a newline.
	SignedBy      string
	Architectures []string
	Enabled       bool
}

// OSRelease is what os-release(5) says about the host's distribution.
type OSRelease struct {
	ID       string
	IDLike   []string
	Codename string // VERSION_CODENAME
}

// The files apt reads its sources from, relative to the file system root.
const (
	sourcesList    = "etc/apt/sources.list"
	sourcesListDir = "etc/apt/sources.list.d"
)

// ReadSources reads the apt sources of the system whose root is root
// (os.DirFS("/") for the host): etc/apt/sources.list and the *.list and
// *.sources files of etc/apt/sources.list.d, in apt's order (the main list
// first, then the directory's files by name). Missing files are not an
// error; a file apt could not parse is.
func ReadSources(root fs.FS) ([]SourceEntry, error) {
	var out []SourceEntry
	b, err := fs.ReadFile(root, sourcesList)
	switch {
	case err == nil:
		es, err := parseOneLine(sourcesList, b)
		if err != nil {
			return nil, err
		}
		out = append(out, es...)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("reading the apt sources: %w", err)
	}
	ents, err := fs.ReadDir(root, sourcesListDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading the apt sources: %w", err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, name := range names {
		p := path.Join(sourcesListDir, name)
		var parse func(string, []byte) ([]SourceEntry, error)
		switch {
		case strings.HasSuffix(name, ".list"):
			parse = parseOneLine
		case strings.HasSuffix(name, ".sources"):
			parse = parseDeb822
		default:
			continue // apt ignores other names (.save, .disabled, …)
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return nil, fmt.Errorf("reading the apt sources: %w", err)
		}
		es, err := parse(p, b)
		if err != nil {
			return nil, err
		}
		out = append(out, es...)
	}
	return out, nil
}

// parseOneLine parses the one-line format:
//
//	deb [ option=value … ] URI SUITE [COMPONENT …]
func parseOneLine(file string, b []byte) ([]SourceEntry, error) {
	var out []SourceEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for ln := 1; sc.Scan(); ln++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		e := SourceEntry{File: file, Line: ln, Types: []string{f[0]}, Enabled: true}
		f = f[1:]
		if len(f) > 0 && strings.HasPrefix(f[0], "[") {
			// Options: "[a=b c=d]", "[ a=b ]", …, up to the token that ends with "]".
			var opts []string
			for len(f) > 0 {
				tok := f[0]
				f = f[1:]
				done := strings.HasSuffix(tok, "]")
				tok = strings.TrimSuffix(strings.TrimPrefix(tok, "["), "]")
				if tok != "" {
					opts = append(opts, tok)
				}
				if done {
					break
				}
				if len(f) == 0 {
					return nil, fmt.Errorf("%s:%d: unterminated [ options ]", file, ln)
				}
			}
			for _, o := range opts {
				k, v, ok := strings.Cut(o, "=")
				if !ok {
					return nil, fmt.Errorf("%s:%d: option %q is not KEY=VALUE", file, ln, o)
				}
				switch strings.ToLower(k) {
				case "signed-by":
					e.SignedBy = strings.Join(strings.Split(v, ","), " ")
				case "arch":
					e.Architectures = strings.Split(v, ",")
				}
			}
		}
		if len(f) < 2 {
			return nil, fmt.Errorf("%s:%d: want TYPE [OPTIONS] URI SUITE [COMPONENT…], got %q", file, ln, strings.TrimSpace(line))
		}
		e.URIs, e.Suites, e.Components = []string{f[0]}, []string{f[1]}, f[2:]
		out = append(out, e)
	}
	return out, sc.Err()
}

// parseDeb822 parses the deb822 format of *.sources files: stanzas of
// "Field: value" lines separated by empty lines, continuation lines
// starting with white space, comment lines starting with '#'.
func parseDeb822(file string, b []byte) ([]SourceEntry, error) {
	var out []SourceEntry
	fields := map[string]string{}
	start, last := 0, ""
	flush := func() error {
		if len(fields) == 0 {
			return nil
		}
		e := SourceEntry{File: file, Line: start, Enabled: true,
			Types: strings.Fields(fields["types"]), URIs: strings.Fields(fields["uris"]),
			Suites: strings.Fields(fields["suites"]), Components: strings.Fields(fields["components"]),
			SignedBy: fields["signed-by"], Architectures: strings.Fields(fields["architectures"]),
		}
		if v, ok := fields["enabled"]; ok {
			e.Enabled = strings.EqualFold(strings.TrimSpace(v), "yes")
		}
		clear(fields)
		if len(e.Types) == 0 || len(e.URIs) == 0 || len(e.Suites) == 0 {
			return fmt.Errorf("%s:%d: a stanza needs Types, URIs and Suites", file, e.Line)
		}
		out = append(out, e)
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for ln := 1; sc.Scan(); ln++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		switch {
		case strings.HasPrefix(line, "#"):
		case line == "":
			if err := flush(); err != nil {
				return nil, err
			}
			last = ""
		case line[0] == ' ' || line[0] == '\t':
			if last == "" {
				return nil, fmt.Errorf("%s:%d: continuation line outside a field", file, ln)
			}
			fields[last] += "\n" + line
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				return nil, fmt.Errorf("%s:%d: want \"Field: value\", got %q", file, ln, line)
			}
			if len(fields) == 0 {
				start = ln
			}
			last = strings.ToLower(strings.TrimSpace(k))
			fields[last] = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// ReadOSRelease reads etc/os-release (or usr/lib/os-release) under root.
func ReadOSRelease(root fs.FS) (OSRelease, error) {
	b, err := fs.ReadFile(root, "etc/os-release")
	if errors.Is(err, fs.ErrNotExist) {
		b, err = fs.ReadFile(root, "usr/lib/os-release")
	}
	if err != nil {
		return OSRelease{}, fmt.Errorf("reading os-release: %w", err)
	}
	var r OSRelease
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "ID":
			r.ID = v
		case "ID_LIKE":
			r.IDLike = strings.Fields(v)
		case "VERSION_CODENAME":
			r.Codename = v
		}
	}
	return r, nil
}

// debianAliases are the suite names Debian's archive serves besides the
// codenames of its releases.
var debianAliases = []string{"stable", "testing", "unstable", "sid", "oldstable", "oldoldstable"}

// isReleaseEntry says whether e is an entry of the host's own distribution
// archive: a binary ("deb") entry whose suite is the host's release (its
// codename, or an alias such as "unstable"), not its -security, -updates
// or -backports suites, nor a third-party repository's.
func isReleaseEntry(e SourceEntry, rel OSRelease) bool {
	if !e.Enabled || !slices.Contains(e.Types, "deb") {
		return false
	}
	for _, s := range e.Suites {
		if s == rel.Codename && s != "" || slices.Contains(debianAliases, s) {
			return true
		}
	}
	return false
}

// ErrNoArchive reports a host whose apt sources have no entry of its
// distribution's archive to take the mirrors from.
var ErrNoArchive = errors.New("no Debian archive entry in the host's apt sources")

// SuiteSources returns a deb822 sources file that asks the mirrors of the
// host's release entries for suite instead: their URIs, components,
// architectures and Signed-By, only the package indices (no translations,
// contents or AppStream data).
func SuiteSources(entries []SourceEntry, rel OSRelease, suite string) (string, error) {
	var b strings.Builder
	seen := map[string]bool{}
	for _, e := range entries {
		if !isReleaseEntry(e, rel) {
			continue
		}
		var s strings.Builder
		fmt.Fprintf(&s, "Types: deb\nURIs: %s\nSuites: %s\n", strings.Join(e.URIs, " "), suite)
		comps := e.Components
		if len(comps) == 0 {
			comps = []string{"main"}
		}
		fmt.Fprintf(&s, "Components: %s\n", strings.Join(comps, " "))
		if len(e.Architectures) > 0 {
			fmt.Fprintf(&s, "Architectures: %s\n", strings.Join(e.Architectures, " "))
		}
		if e.SignedBy != "" {
			first, rest, _ := strings.Cut(e.SignedBy, "\n")
			s.WriteString("Signed-By:")
			if first != "" {
				s.WriteString(" " + first)
			}
			s.WriteString("\n")
			if rest != "" {
				s.WriteString(rest + "\n")
			}
		}
		s.WriteString("Targets: Packages\n")
		if seen[s.String()] {
			continue
		}
		seen[s.String()] = true
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString(s.String())
	}
	if b.Len() == 0 {
		what := "release " + rel.Codename
		if rel.Codename == "" {
			what = "a release (os-release has no VERSION_CODENAME)"
		}
		return "", fmt.Errorf("%w: none of the enabled \"deb\" entries of %s and %s/ is for %s; add the host's Debian mirror to them, or use file = a saved copy of the package's file", ErrNoArchive, sourcesList, sourcesListDir, what)
	}
	return b.String(), nil
}
