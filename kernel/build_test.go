package kernel

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

func TestKbuildTimestamp(t *testing.T) {
	tests := []struct {
		epoch int64
		want  string
	}{
		{0, "Thu Jan  1 00:00:00 UTC 1970"},
		{1700000000, "Tue Nov 14 22:13:20 UTC 2023"},
	}
	for _, tc := range tests {
		if got := KbuildTimestamp(tc.epoch); got != tc.want {
			t.Errorf("KbuildTimestamp(%d) = %q, want %q", tc.epoch, got, tc.want)
		}
	}
}

func TestSortedByTarget(t *testing.T) {
	// Two runs of the same build whose parallel jobs finished in another
	// order give the same log.
	a := []string{
		"#", "# configuration written to .config", "#",
		"  CC      kernel/fork.o",
		"  CC      init/main.o",
		"../init/main.c:10:5: warning: unused variable 'x'",
		"   10 |     int x;",
		"make[2]: Nothing to be done for 'all'.",
		"  BUILD   arch/x86/boot/bzImage",
		"Kernel: arch/x86/boot/bzImage is ready  (#1)",
	}
	b := []string{
		"#", "# configuration written to .config", "#",
		"  BUILD   arch/x86/boot/bzImage",
		"Kernel: arch/x86/boot/bzImage is ready  (#1)",
		"  CC      init/main.o",
		"../init/main.c:10:5: warning: unused variable 'x'",
		"   10 |     int x;",
		"make[2]: Nothing to be done for 'all'.",
		"  CC      kernel/fork.o",
	}
	want := strings.Join([]string{
		"#", "# configuration written to .config", "#",
		"  BUILD   arch/x86/boot/bzImage",
		"Kernel: arch/x86/boot/bzImage is ready  (#1)",
		"  CC      init/main.o",
		"../init/main.c:10:5: warning: unused variable 'x'",
		"   10 |     int x;",
		"  CC      kernel/fork.o",
		"make[2]: Nothing to be done for 'all'.",
	}, "\n") + "\n"
	if diff := cmp.Diff(want, sortedByTarget(a)); diff != "" {
		t.Errorf("a (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, sortedByTarget(b)); diff != "" {
		t.Errorf("b (-want +got):\n%s", diff)
	}
}

// TestBuildEnv checks that nothing of the host's environment reaches a
// kernel build and that the work directory is mapped away.
func TestBuildEnv(t *testing.T) {
	t.Setenv("KBUILD_BUILD_USER", "host-user")
	t.Setenv("CFLAGS", "-march=native")
	k, err := newKbuild(t.TempDir(), 1700000000, 2, os.Stderr, nil)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range k.env() {
		name, v, _ := strings.Cut(kv, "=")
		if _, dup := env[name]; dup {
			t.Errorf("%s set twice", name)
		}
		env[name] = v
	}
	want := map[string]string{
		"PATH": BuildPath, "LC_ALL": "C", "LANG": "C", "TZ": "UTC", "SOURCE_DATE_EPOCH": "1700000000",
		"KBUILD_BUILD_TIMESTAMP": "Tue Nov 14 22:13:20 UTC 2023", "KBUILD_BUILD_USER": "cocobuild",
		"KBUILD_BUILD_HOST": "cocobuild", "KBUILD_BUILD_VERSION": "1", "LOCALVERSION": "",
		"KCFLAGS": "-ffile-prefix-map=" + k.work + "/=", "KAFLAGS": "-ffile-prefix-map=" + k.work + "/=",
		"HOME": k.work + "/home", "TMPDIR": k.work + "/tmp",
	}
	if diff := cmp.Diff(want, env); diff != "" {
		t.Errorf("environment (-want +got):\n%s", diff)
	}
	if got := k.clean("  CC      " + k.work + "/linux/tools/objtool/x.o"); got != "  CC      $WORK/linux/tools/objtool/x.o" {
		t.Errorf("clean: %q", got)
	}
	k.jobs = 7
	if got, want := k.title([]string{"make", "-j7", "bzImage", "-j72"}), "make -j$JOBS bzImage -j72"; got != want {
		t.Errorf("title: %q, want %q", got, want)
	}
}

func TestMissingToolsError(t *testing.T) {
	e := &MissingToolsError{Tools: []string{"flex", "libelf.h"}, Packages: []string{"flex", "libelf-dev"}}
	if got, want := e.Error(), "building a kernel needs flex, libelf.h: apt-get install flex libelf-dev"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}

func TestToolchainIdentity(t *testing.T) {
	if err := CheckTools(); err != nil {
		t.Skip(err) // the source build tests fail in CI for this
	}
	id, err := ToolchainIdentity(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(id), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "gcc: gcc ") || !strings.HasPrefix(lines[1], "ld: GNU ld") ||
		!strings.HasPrefix(lines[2], "make: GNU Make") || !strings.HasPrefix(lines[3], "xz: xz (XZ Utils)") {
		t.Errorf("toolchain identity:\n%s", id)
	}
}

// TestIsXZ checks the extraction's choice of decompressor on files the
// real compressors made (xz picks the multi-threaded xz; gzip and a plain
// tar do not).
func TestIsXZ(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "src.tar")
	if err := os.WriteFile(plain, []byte("linux-6.12/Makefile\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	compress := func(tool, pkg, ext string) string {
		p := testenv.Tool(t, tool, pkg)
		out := plain + ext
		cmd := exec.Command(p, "-c", plain)
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		if err := os.WriteFile(out, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return out
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte{0xfd, '7', 'z'}, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		want bool
	}{
		{"xz", compress("xz", "xz-utils", ".xz"), true},
		{"gzip", compress("gzip", "gzip", ".gz"), false},
		{"uncompressed", plain, false},
		{"shorter than the magic", short, false},
		{"missing", filepath.Join(dir, "none.tar.xz"), false},
	}
	for _, tc := range tests {
		if got := isXZ(tc.path); got != tc.want {
			t.Errorf("%s: isXZ(%s) = %v, want %v", tc.name, tc.path, got, tc.want)
		}
	}
}
