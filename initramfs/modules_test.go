package initramfs

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// fakeModule returns a minimal relocatable x86-64 ELF file whose .modinfo
// section holds the given key=value strings, as a kernel module's does.
func fakeModule(info ...string) []byte {
	modinfo := []byte(strings.Join(info, "\x00") + "\x00")
	shstr := []byte("\x00.modinfo\x00.shstrtab\x00")
	le := binary.LittleEndian
	var b bytes.Buffer
	hdr := make([]byte, 64)
	copy(hdr, "\x7fELF\x02\x01\x01")
	le.PutUint16(hdr[16:], 1)  // ET_REL
	le.PutUint16(hdr[18:], 62) // EM_X86_64
	le.PutUint32(hdr[20:], 1)
	shoff := 64 + len(modinfo) + len(shstr)
	le.PutUint64(hdr[40:], uint64(shoff))
	le.PutUint16(hdr[52:], 64)
	le.PutUint16(hdr[58:], 64)
	le.PutUint16(hdr[60:], 3)
	le.PutUint16(hdr[62:], 2)
	b.Write(hdr)
	b.Write(modinfo)
	b.Write(shstr)
	sh := func(name, typ uint32, off, size int) {
		s := make([]byte, 64)
		le.PutUint32(s[0:], name)
		le.PutUint32(s[4:], typ)
		le.PutUint64(s[24:], uint64(off))
		le.PutUint64(s[32:], uint64(size))
		le.PutUint64(s[48:], 1)
		b.Write(s)
	}
	sh(0, 0, 0, 0)
	sh(1, 1, 64, len(modinfo))             // .modinfo, PROGBITS
	sh(10, 3, 64+len(modinfo), len(shstr)) // .shstrtab, STRTAB
	return b.Bytes()
}

// moduleTar builds a module tree tar from files by path.
func moduleTar(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range sortedKeys(files) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg})
		tw.Write(files[name])
	}
	tw.WriteHeader(&tar.Header{Name: "kernel/", Mode: 0o755, Typeflag: tar.TypeDir})
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sortedKeys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

func xzBytes(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := xz.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func zstdBytes(b []byte) []byte {
	e, _ := zstd.NewWriter(nil)
	return e.EncodeAll(b, nil)
}

func gzBytes(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

const vermagic = "vermagic=6.1.0-56-cloud-amd64 SMP mod_unload modversions "

func testTree() map[string][]byte {
	return map[string][]byte{
		"kernel/drivers/virtio/virtio.ko":                    fakeModule("license=GPL", "depends=", vermagic),
		"kernel/drivers/virtio/virtio_ring.ko":               fakeModule("depends=", vermagic),
		"kernel/drivers/virtio/virtio_pci.ko.xz":             xzBytes(fakeModule("depends=virtio_ring,virtio,virtio_pci_modern_dev", vermagic)),
		"kernel/drivers/virtio/virtio_pci_modern_dev.ko.zst": zstdBytes(fakeModule("depends=", vermagic)),
		"kernel/drivers/block/virtio_blk.ko.gz":              gzBytes(fakeModule("depends=virtio_ring,virtio", vermagic)),
		"kernel/drivers/md/dm-mod.ko":                        fakeModule("depends=", vermagic),
		"kernel/drivers/md/dm-verity.ko":                     fakeModule("depends=dm-mod", vermagic),
		"modules.builtin":                                    []byte("kernel/fs/ext4/ext4.ko\nkernel/drivers/char/tpm.ko\n"),
		"modules.order":                                      []byte("ignored\n"),
	}
}

func TestResolveModules(t *testing.T) {
	tr, err := readModuleTree(bytes.NewReader(moduleTar(t, testTree())))
	if err != nil {
		t.Fatal(err)
	}
	res, err := resolveModules(tr, []string{"virtio_pci", "virtio-blk", "dm_verity", "ext4"})
	if err != nil {
		t.Fatal(err)
	}
	var names, paths []string
	for _, m := range res.Modules {
		names = append(names, m.Name)
		paths = append(paths, m.Path)
		if _, err := modinfo(m.data); err != nil {
			t.Errorf("%s: included bytes are not the uncompressed module: %v", m.Name, err)
		}
	}
	if diff := cmp.Diff([]string{"virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci", "virtio_blk", "dm_mod", "dm_verity"}, names); diff != "" {
		t.Errorf("module order (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff("kernel/drivers/virtio/virtio_pci.ko", paths[3]); diff != "" {
		t.Errorf("compressed module path (-want +got):\n%s", diff)
	}
	if got, want := res.Release, "6.1.0-56-cloud-amd64"; got != want {
		t.Errorf("release %q, want %q", got, want)
	}
	if diff := cmp.Diff([]string{"virtio_pci", "virtio_blk", "dm_verity"}, res.Load); diff != "" {
		t.Errorf("load list (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ext4"}, res.Builtin); diff != "" {
		t.Errorf("builtin (-want +got):\n%s", diff)
	}
	wantDep := `kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/md/dm-mod.ko:
kernel/drivers/md/dm-verity.ko: kernel/drivers/md/dm-mod.ko
`
	if diff := cmp.Diff(wantDep, string(res.DepFile)); diff != "" {
		t.Errorf("modules.dep (-want +got):\n%s", diff)
	}
}

func TestResolveModulesErrors(t *testing.T) {
	tests := []struct {
		name  string
		patch map[string][]byte
		load  []string
		want  string
	}{
		{"unknown", nil, []string{"nvme"}, "no module nvme"},
		{"missing dep", map[string][]byte{"kernel/a.ko": fakeModule("depends=zz", vermagic)}, []string{"a"}, "no module zz in the module tree (needed by a)"},
		{"cycle", map[string][]byte{"kernel/a.ko": fakeModule("depends=b", vermagic), "kernel/b.ko": fakeModule("depends=a", vermagic)}, []string{"a"}, "cycle: a -> b -> a"},
		{"kernels", map[string][]byte{"kernel/a.ko": fakeModule("depends=virtio", "vermagic=6.2.0 SMP")}, []string{"a"}, "mixes kernels"},
		{"twice", nil, []string{"virtio", "virtio"}, "listed twice"},
		{"not elf", map[string][]byte{"kernel/a.ko": []byte("nope")}, []string{"a"}, "not an ELF"},
		{"bad xz", map[string][]byte{"kernel/a.ko.xz": []byte("nope")}, []string{"a"}, "xz"},
		{"no modinfo", map[string][]byte{"kernel/a.ko": fakeModule()[:64]}, []string{"a"}, "kernel/a.ko"},
		{"no vermagic", map[string][]byte{"kernel/a.ko": fakeModule("depends=")}, []string{"a"}, "vermagic"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string][]byte{}
			if tc.name != "no vermagic" {
				files = testTree()
			}
			for k, v := range tc.patch {
				files[k] = v
			}
			tr, err := readModuleTree(bytes.NewReader(moduleTar(t, files)))
			if err == nil {
				_, err = resolveModules(tr, tc.load)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := readModuleTree(bytes.NewReader(moduleTar(t, map[string][]byte{"modules.order": nil}))); err == nil || !strings.Contains(err.Error(), "no kernel modules") {
		t.Errorf("tree without modules: %v", err)
	}
	files := testTree()
	files["kernel/other/virtio.ko"] = fakeModule(vermagic)
	if _, err := readModuleTree(bytes.NewReader(moduleTar(t, files))); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("tree with a module twice: %v", err)
	}
}

func FuzzModinfo(f *testing.F) {
	f.Add(fakeModule("depends=a,b", vermagic))
	f.Add([]byte("\x7fELF"))
	f.Fuzz(func(t *testing.T, b []byte) {
		modinfo(b)
	})
}
