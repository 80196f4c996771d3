package rootfs

import (
	"fmt"
	"path"
	"strings"
)

// Pattern selects tree paths. It is written as an absolute path whose
// segments are path.Match patterns (*, ?, [a-z]); a segment "**" matches
// any number of segments, none included: "/home/**" is /home and all below.
type Pattern struct {
	text string
	segs []string
}

// ParsePattern checks and compiles a pattern.
func ParsePattern(s string) (Pattern, error) {
	if !strings.HasPrefix(s, "/") {
		return Pattern{}, fmt.Errorf("pattern %q must be an absolute path, such as \"/usr/share/doc/**\"", s)
	}
	p := Pattern{text: s}
	if s == "/" {
		return p, nil
	}
	for _, seg := range strings.Split(strings.TrimPrefix(s, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return Pattern{}, fmt.Errorf("pattern %q has an empty, . or .. segment", s)
		}
		if seg != "**" {
			if _, err := path.Match(seg, ""); err != nil {
				return Pattern{}, fmt.Errorf("pattern %q: segment %q: %w", s, seg, err)
			}
		}
		p.segs = append(p.segs, seg)
	}
	return p, nil
}

func (p Pattern) String() string { return p.text }

// Match reports whether the tree path p ("" for the root) matches.
func (p Pattern) Match(treePath string) bool {
	var segs []string
	if treePath != "" {
		segs = strings.Split(treePath, "/")
	}
	return matchSegs(p.segs, segs)
}

func matchSegs(pat, segs []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(segs); i++ {
				if matchSegs(pat[1:], segs[i:]) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], segs[0]); !ok {
			return false
		}
		pat, segs = pat[1:], segs[1:]
	}
	return len(segs) == 0
}

// Exclude removes every entry that matches (with what is below it) and
// returns how many entries it removed.
func (t *Tree) Exclude(p Pattern) int {
	n := 0
	for _, e := range t.Entries() {
		if e.Path == "" || !p.Match(e.Path) {
			continue
		}
		if _, still := t.entries[e.Path]; !still {
			continue // below an excluded directory
		}
		before := len(t.entries)
		t.remove(e.Path)
		n += before - len(t.entries)
	}
	return n
}

// Attrs are attribute overrides; nil fields are left alone.
type Attrs struct {
	UID, GID *int
	Mode     *uint32 // every entry but symlinks
	FileMode *uint32 // regular files (before Mode is considered: Mode wins if both)
	DirMode  *uint32 // directories
}

// Override sets the attributes of every entry that matches and returns
// how many matched. Hard links whose attributes end up different are
// written as separate files, since one inode has one set of attributes.
func (t *Tree) Override(p Pattern, a Attrs) int {
	n := 0
	for _, e := range t.Entries() {
		if !p.Match(e.Path) {
			continue
		}
		n++
		if a.UID != nil {
			e.UID = *a.UID
		}
		if a.GID != nil {
			e.GID = *a.GID
		}
		if e.Type == TypeSymlink {
			continue
		}
		switch {
		case a.Mode != nil:
			e.Mode = *a.Mode
		case e.Type == TypeReg && a.FileMode != nil:
			e.Mode = *a.FileMode
		case e.Type == TypeDir && a.DirMode != nil:
			e.Mode = *a.DirMode
		}
	}
	return n
}
