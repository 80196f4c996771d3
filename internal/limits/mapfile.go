package limits

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Mapped is a regular file mapped read-only into memory (see MapFile).
type Mapped struct {
	// Data is the file's bytes. It is valid until Close; writing to it
	// faults.
	Data []byte

	path   string
	st     unix.Stat_t
	mapped bool
}

// MapFile maps a whole regular file of at most the value of l in force
// read-only into memory, with its pages populated from the page cache at
// once, as Open checks it: the bytes are the file's own, with no copy and
// no allocation of their size (a measurement reads 20 MB of firmware,
// kernel and initrd, which ReadFile copies into fresh pages the kernel has
// to fault in and zero first). Where the file system cannot map the file,
// it is read as by ReadFile. An empty file is an empty, non-nil Data.
//
// The caller must Close the mapping when nothing reads Data any longer, and
// should call Unchanged after its last read: a file written or replaced
// while it is mapped shows through Data, where ReadFile's copy would have
// been torn too but unnoticed. A file truncated under a reader is worse:
// reading past its new end kills the process (SIGBUS), so map only what a
// short-lived command reads at once, as the measure commands do, and
// ReadFile what a long-running process keeps.
func (v *Values) MapFile(path string, l Limit) (*Mapped, error) {
	f, size, err := v.Open(path, l)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := &Mapped{path: path, Data: []byte{}}
	if err := unix.Fstat(int(f.Fd()), &m.st); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if size == 0 {
		return m, nil
	}
	if int64(int(size)) != size {
		return nil, fmt.Errorf("%s: %d bytes do not fit in memory here", path, size)
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_POPULATE)
	if err != nil {
		// Not every file system maps files (some FUSE ones do not): read it.
		if m.Data, err = v.ReadFile(path, l); err != nil {
			return nil, err
		}
		return m, nil
	}
	m.Data, m.mapped = b, true
	return m, nil
}

// Unchanged returns an error when the file is no longer the one mapped:
// another size, modification or status change time, inode or device (it
// was written, truncated or replaced since MapFile).
func (m *Mapped) Unchanged() error {
	var now unix.Stat_t
	if err := unix.Stat(m.path, &now); err != nil {
		return fmt.Errorf("%s: %w", m.path, err)
	}
	if now.Dev != m.st.Dev || now.Ino != m.st.Ino || now.Size != m.st.Size || now.Mtim != m.st.Mtim || now.Ctim != m.st.Ctim {
		return fmt.Errorf("%s changed while it was read: read it again when nothing writes it", m.path)
	}
	return nil
}

// Close unmaps the file; Data must not be read afterwards. Closing twice,
// or closing a file that was read rather than mapped, does nothing.
func (m *Mapped) Close() error {
	if m == nil || !m.mapped {
		return nil
	}
	b := m.Data
	m.Data, m.mapped = nil, false
	if err := unix.Munmap(b); err != nil {
		return fmt.Errorf("%s: %w", m.path, err)
	}
	return nil
}
