package initramfs

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/cocobuild/cocobuild/internal/decompress"
)

// maxModuleTree bounds what readModuleTree holds in memory.
const maxModuleTree = 2 << 30

// moduleTree is the content of a lib/modules/RELEASE directory: module
// files by path (relative to the directory) and the names of built-in
// modules.
type moduleTree struct {
	files   map[string][]byte // *.ko, *.ko.xz, *.ko.zst, *.ko.gz
	byName  map[string]string // normalised module name -> path
	builtin map[string]bool   // normalised names from modules.builtin
}

// modName normalises a module name: the kernel treats - and _ alike.
func modName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// moduleFileName returns the module name of a module file path, or "".
func moduleFileName(p string) string {
	b := path.Base(p)
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if n, ok := strings.CutSuffix(b, ext); ok {
			return modName(n)
		}
	}
	return ""
}

// readModuleTree reads a tar of a lib/modules/RELEASE directory (as an
// input's extract_dir delivers it).
func readModuleTree(r io.Reader) (*moduleTree, error) {
	t := &moduleTree{files: map[string][]byte{}, byName: map[string]string{}, builtin: map[string]bool{}}
	tr := tar.NewReader(r)
	var total int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the module tree (a tar of lib/modules/RELEASE): %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		mod := moduleFileName(name)
		if mod == "" && name != "modules.builtin" {
			continue
		}
		if h.Size < 0 || total+h.Size > maxModuleTree {
			return nil, fmt.Errorf("the module tree holds more than %d bytes", int64(maxModuleTree))
		}
		b, err := io.ReadAll(io.LimitReader(tr, h.Size))
		if err != nil {
			return nil, err
		}
		total += int64(len(b))
		if name == "modules.builtin" {
			for _, l := range strings.Split(string(b), "\n") {
				if n := moduleFileName(strings.TrimSpace(l)); n != "" {
					t.builtin[n] = true
				}
			}
			continue
		}
		if prev, dup := t.byName[mod]; dup {
			return nil, fmt.Errorf("module %s is in the tree twice: %s and %s", mod, prev, name)
		}
		t.files[name] = b
		t.byName[mod] = name
	}
	if len(t.files) == 0 {
		return nil, errors.New("the module tree holds no kernel modules (*.ko): give the tar of lib/modules/RELEASE, e.g. an input with extract_dir")
	}
	return t, nil
}

// kmod is a kernel module chosen for the initramfs.
type kmod struct {
	Name    string   `json:"name"`
	Path    string   `json:"path"` // relative to lib/modules/RELEASE, uncompressed (.ko)
	Depends []string `json:"depends,omitempty"`
	data    []byte
}

// modinfo reads the key=value strings of a module's .modinfo section.
func modinfo(ko []byte) (map[string][]string, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, fmt.Errorf("not an ELF kernel module: %w", err)
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, errors.New("no .modinfo section")
	}
	if sec.Size > uint64(len(ko)) {
		return nil, errors.New(".modinfo section past the end of the file")
	}
	b, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("reading .modinfo: %w", err)
	}
	info := map[string][]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			info[k] = append(info[k], v)
		}
	}
	return info, nil
}

// uncompressModule returns a module file's ELF bytes.
func uncompressModule(p string, b []byte) ([]byte, error) {
	out, err := uncompress(p, b)
	if err != nil {
		return nil, fmt.Errorf("uncompressing %s: %w", p, err)
	}
	return out, nil
}

func uncompress(p string, b []byte) ([]byte, error) {
	var f decompress.Format
	switch {
	case strings.HasSuffix(p, ".ko"):
		return b, nil
	case strings.HasSuffix(p, ".ko.gz"):
		f = decompress.Gzip
	case strings.HasSuffix(p, ".ko.xz"):
		f = decompress.XZ
	case strings.HasSuffix(p, ".ko.zst"):
		f = decompress.Zstd
	default:
		return nil, fmt.Errorf("%s is not a kernel module", p)
	}
	r, err := decompress.NewReader(bytes.NewReader(b), f, maxModuleTree)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// resolved is the outcome of resolving module names against a tree.
type resolved struct {
	Release string   `json:"release"`        // from the modules' vermagic
	Load    []string `json:"load"`           // the names asked for, in order, built-ins left out
	Builtin []string `json:"builtin"`        // names asked for that are built into the kernel
	Modules []kmod   `json:"modules"`        // every module to include, dependencies first
	DepFile []byte   `json:"-"`              // modules.dep for Modules
	Order   []string `json:"order,omitzero"` // load order of every module, dependencies first
}

// resolveModules picks the modules named (and, transitively, those their
// `depends=` modinfo names) from the tree, uncompressed, in an order in
// which each module follows its dependencies.
func resolveModules(t *moduleTree, names []string) (*resolved, error) {
	res := &resolved{Load: []string{}, Builtin: []string{}}
	done := map[string]*kmod{}
	visiting := map[string]bool{}
	var visit func(name string, stack []string) error
	visit = func(name string, stack []string) error {
		if done[name] != nil {
			return nil
		}
		if visiting[name] {
			return fmt.Errorf("modules depend on each other in a cycle: %s", strings.Join(append(stack, name), " -> "))
		}
		p, ok := t.byName[name]
		if !ok {
			msg := fmt.Sprintf("no module %s in the module tree", name)
			if len(stack) > 0 {
				msg += fmt.Sprintf(" (needed by %s)", strings.Join(stack, " -> "))
			}
			return errors.New(msg)
		}
		visiting[name] = true
		ko, err := uncompressModule(p, t.files[p])
		if err != nil {
			return err
		}
		info, err := modinfo(ko)
		if err != nil {
			return fmt.Errorf("module %s (%s): %w", name, p, err)
		}
		m := &kmod{Name: name, Path: strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(p, ".xz"), ".zst"), ".gz"), data: ko}
		if vm := info["vermagic"]; len(vm) > 0 {
			rel, _, _ := strings.Cut(strings.TrimSpace(vm[0]), " ")
			if res.Release == "" {
				res.Release = rel
			} else if rel != res.Release {
				return fmt.Errorf("module %s is for kernel %s, the others for %s: the tree mixes kernels", name, rel, res.Release)
			}
		}
		for _, d := range info["depends"] {
			for _, dep := range strings.Split(d, ",") {
				if dep = modName(strings.TrimSpace(dep)); dep != "" {
					m.Depends = append(m.Depends, dep)
					if err := visit(dep, append(stack, name)); err != nil {
						return err
					}
				}
			}
		}
		sort.Strings(m.Depends)
		visiting[name] = false
		done[name] = m
		res.Modules = append(res.Modules, *m)
		return nil
	}
	seen := map[string]bool{}
	for _, n := range names {
		name := modName(n)
		if seen[name] {
			return nil, fmt.Errorf("module %s is listed twice", n)
		}
		seen[name] = true
		if _, ok := t.byName[name]; !ok && t.builtin[name] {
			res.Builtin = append(res.Builtin, name)
			continue
		}
		if err := visit(name, nil); err != nil {
			return nil, err
		}
		res.Load = append(res.Load, name)
	}
	if len(res.Modules) > 0 && res.Release == "" {
		return nil, errors.New("the modules have no vermagic: cannot tell the kernel release they are for")
	}
	// modules.dep lists, for each module, every module it needs, in the
	// order modprobe loads them from the end.
	var dep bytes.Buffer
	for _, m := range res.Modules {
		res.Order = append(res.Order, m.Name)
		var all []string
		var walk func(n string)
		inAll := map[string]bool{}
		walk = func(n string) {
			for _, d := range done[n].Depends {
				if !inAll[d] {
					inAll[d] = true
					walk(d)
					all = append(all, done[d].Path)
				}
			}
		}
		walk(m.Name)
		for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
			all[i], all[j] = all[j], all[i]
		}
		fmt.Fprintf(&dep, "%s:", m.Path)
		for _, a := range all {
			fmt.Fprintf(&dep, " %s", a)
		}
		dep.WriteString("\n")
	}
	res.DepFile = dep.Bytes()
	return res, nil
}
