package sgx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxPageListRuns bounds the runs of a page list description.
const MaxPageListRuns = 1 << 16

// PageList is the description of an enclave's page list that `cocobuild
// measure sgx --pages` reads, in JSON: the SECS parameters and the runs of
// pages in the order they are added, each with its contents in a file
// (for measured pages) or none.
//
//	{"ssa_frame_size": 1, "size": 65536, "runs": [
//	  {"name": "tcs", "offset": 0, "size": 8192, "type": "tcs", "measure": true, "file": "encl.bin"},
//	  {"name": "text", "offset": 8192, "size": 4096, "type": "reg", "perm": "rx", "measure": true, "file": "encl.bin", "file_offset": 8192},
//	  {"name": "heap", "offset": 12288, "size": 4096, "type": "reg", "perm": "rw"}]}
type PageList struct {
	// SSAFrameSize is SECS.SSAFRAMESIZE in pages (default 1).
	SSAFrameSize uint32 `json:"ssa_frame_size,omitempty"`
	// Size is SECS.SIZE; 0 stands for the smallest power of two that
	// holds every run.
	Size uint64    `json:"size,omitempty"`
	Runs []PageRun `json:"runs"`
}

// PageRun is a run of pages of a PageList.
type PageRun struct {
	Name string `json:"name,omitempty"`
	// Offset and Size are in bytes from the enclave base, multiples of
	// PageSize.
	Offset uint64 `json:"offset"`
	Size   uint64 `json:"size"`
	// Type is "tcs" or "reg"; Perm the permissions of a "reg" run, a
	// subset of "rwx" in that order.
	Type string `json:"type"`
	Perm string `json:"perm,omitempty"`
	// Measure says the pages are also measured with EEXTEND, their
	// contents read from File at FileOffset (Size bytes, or up to the
	// file's end, zeros after it); without File they are zeros.
	Measure    bool   `json:"measure,omitempty"`
	File       string `json:"file,omitempty"`
	FileOffset uint64 `json:"file_offset,omitempty"`
}

// ParsePageList reads a page list description: strict JSON, no unknown
// fields, at most MaxPageListRuns runs.
func ParsePageList(b []byte) (*PageList, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var p PageList
	if err := d.Decode(&p); err != nil {
		return nil, fmt.Errorf("page list: %w", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("page list: data after the JSON object")
	}
	if len(p.Runs) > MaxPageListRuns {
		return nil, fmt.Errorf("page list: %d runs, more than %d", len(p.Runs), MaxPageListRuns)
	}
	for i, r := range p.Runs {
		if _, err := r.flags(); err != nil {
			return nil, fmt.Errorf("page list run %d: %w", i, err)
		}
		if r.File != "" && !r.Measure {
			return nil, fmt.Errorf("page list run %d: has a file but is not measured: unmeasured pages do not enter MRENCLAVE", i)
		}
	}
	return &p, nil
}

// flags returns the run's SECINFO flags.
func (r PageRun) flags() (uint64, error) {
	var perm uint64
	rest := r.Perm
	for _, p := range []struct {
		c    string
		flag uint64
	}{{"r", PermR}, {"w", PermW}, {"x", PermX}} {
		if s, ok := strings.CutPrefix(rest, p.c); ok {
			perm |= p.flag
			rest = s
		}
	}
	if rest != "" {
		return 0, fmt.Errorf("perm %q is not a subset of \"rwx\" in that order", r.Perm)
	}
	switch r.Type {
	case "tcs":
		if perm != 0 {
			return 0, fmt.Errorf("a TCS run has no permissions, got perm %q", r.Perm)
		}
		return SecInfoFlags(PageTCS, 0), nil
	case "reg":
		return SecInfoFlags(PageREG, perm), nil
	}
	return 0, fmt.Errorf("type %q: want tcs or reg", r.Type)
}

// Layout returns the page list's layout. read returns the contents of
// the measured runs that name a file: n bytes of file at off, or fewer
// when the file ends first. It is called once per such run, after the
// runs were checked, and only for runs within MaxPages pages in all.
func (p *PageList) Layout(read func(file string, off, n uint64) ([]byte, error)) (*Layout, error) {
	l := &Layout{SSAFrameSize: p.SSAFrameSize, Size: p.Size}
	if l.SSAFrameSize == 0 {
		l.SSAFrameSize = 1
	}
	var end uint64
	for i, r := range p.Runs {
		flags, err := r.flags()
		if err != nil {
			return nil, fmt.Errorf("page list run %d: %w", i, err)
		}
		name := r.Name
		if name == "" {
			name = fmt.Sprintf("run %d", i)
		}
		l.Segments = append(l.Segments, Segment{Offset: r.Offset, Size: r.Size, Flags: flags, Measure: r.Measure, Name: name})
		if r.Offset <= 1<<62 && r.Size <= 1<<62 {
			end = max(end, r.Offset+r.Size)
		} else {
			end = 1 << 63
		}
	}
	if l.Size == 0 {
		for l.Size = 2 * PageSize; l.Size < end && l.Size < 1<<63; l.Size <<= 1 {
		}
	}
	if err := l.Check(); err != nil {
		return nil, fmt.Errorf("page list: %w", err)
	}
	for i, r := range p.Runs {
		if r.File == "" {
			continue
		}
		data, err := read(r.File, r.FileOffset, r.Size)
		if err != nil {
			return nil, fmt.Errorf("page list run %d (%s): %w", i, l.Segments[i].Name, err)
		}
		if uint64(len(data)) > r.Size {
			return nil, fmt.Errorf("page list run %d (%s): read %d bytes for %d", i, l.Segments[i].Name, len(data), r.Size)
		}
		l.Segments[i].Data = data
	}
	return l, nil
}

// PageList describes the layout as a page list, without file names: the
// form `cocobuild measure sgx --json` shows.
func (l *Layout) PageList() *PageList {
	p := &PageList{SSAFrameSize: l.SSAFrameSize, Size: l.Size}
	for _, s := range l.Segments {
		r := PageRun{Name: s.Name, Offset: s.Offset, Size: s.Size, Type: "reg", Measure: s.Measure}
		if PageType(s.Flags>>8) == PageTCS {
			r.Type = "tcs"
		}
		for _, c := range []struct {
			flag uint64
			s    string
		}{{PermR, "r"}, {PermW, "w"}, {PermX, "x"}} {
			if s.Flags&c.flag != 0 {
				r.Perm += c.s
			}
		}
		p.Runs = append(p.Runs, r)
	}
	return p
}
