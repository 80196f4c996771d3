package initramfs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/initramfs"
	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/testkinds"
)

// load loads a recipe made of body and returns the diagnostics as text.
func load(t *testing.T, dir, body string) (*builder.Loaded, string) {
	t.Helper()
	p := filepath.Join(dir, "r.hcl")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := builder.Load(p, testkinds.LoadOptions(filepath.Join(dir, "cache"), input.Options{AllowUnpinned: true}))
	var de *builder.DiagError
	if errors.As(err, &de) {
		return nil, de.Diags.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	return l, ""
}

func TestDecodeErrors(t *testing.T) {
	noModule := t.TempDir() // no go.mod above a temporary directory
	tests := []struct {
		name, body, want string
	}{
		{"compression", `initramfs "a" {
  compression = "lz4"
  file "/x" { content = "" }
}`, "compression is one of none, gzip, zstd, xz"},
		{"agent sources", `input "bin" { file = "r.hcl" }
initramfs "a" {
  agent {
    package = "./cmd/x"
    file    = input.bin
    path    = "/agent"
  }
}`, "Agent needs one source"},
		{"agent path", `initramfs "a" {
  agent {
    package = "./x"
    path    = "/"
  }
  go_module = "."
}`, "Invalid agent path"},
		{"duplicate path", `initramfs "a" {
  file "/etc/x" { content = "a" }
  dir "/etc/x" {}
}`, "/etc/x is given twice"},
		{"escaping path", `initramfs "a" {
  file "/../x" { content = "a" }
}`, "not a clean absolute path"},
		{"mode", `initramfs "a" {
  file "/x" {
    content = "a"
    mode    = "0999"
  }
}`, "not an octal mode"},
		{"device", `initramfs "a" {
  device "/dev/x" {
    type  = "pipe"
    major = 1
    minor = 2
  }
}`, `type "pipe" is not char, block or fifo`},
		{"device numbers", `initramfs "a" {
  device "/dev/x" {
    type  = "char"
    major = 5000
    minor = 2
  }
}`, "outside 0-4095:0-1048575"},
		{"file sources", `initramfs "a" {
  file "/x" {}
}`, "File needs content or source"},
		{"no go module", `initramfs "a" {
  uroot { commands = ["core/init"] }
}`, "No Go module"},
		{"not a go module", `initramfs "a" {
  go_module = "."
  uroot { commands = ["core/init"] }
}`, "holds no go.mod"},
		{"args without uroot", `input "bin" { file = "r.hcl" }
initramfs "a" {
  agent {
    file = input.bin
    path = "/init"
    args = ["-v"]
  }
}`, "Agent args without u-root"},
		{"empty", `initramfs "a" {}`, "Empty initramfs"},
		{"command twice", `initramfs "a" {
  go_module = "."
  uroot { commands = ["core/ls", "github.com/x/ls"] }
}`, "their last elements differ"},
		{"unknown init", `initramfs "a" {
  go_module = "."
  uroot {
    commands = ["core/ls"]
    init     = "init"
  }
}`, `init "init" is not among the commands`},
		{"two uroot blocks", `initramfs "a" {
  go_module = "."
  uroot { commands = ["core/ls"] }
  uroot { commands = ["core/cat"] }
}`, "Duplicate uroot block"},
		{"module names", `input "m" { file = "r.hcl" }
initramfs "a" {
  modules {
    from = input.m
    load = ["virtio blk"]
  }
}`, "Invalid module name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(noModule, strings.ReplaceAll(tc.name, " ", "_"))
			os.MkdirAll(dir, 0o755)
			_, diags := load(t, dir, tc.body)
			if !strings.Contains(diags, tc.want) {
				t.Errorf("diagnostics %q, want one containing %q", diags, tc.want)
			}
			if !strings.Contains(diags, "r.hcl:") {
				t.Errorf("diagnostics %q name no file:line", diags)
			}
		})
	}
}

// TestPackEntries builds an image from files, links and devices only (no Go
// build) and checks what Inspect finds in it.
func TestPackEntries(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "blob"), []byte("\x7fELF prebuilt agent"), 0o600)
	l, diags := load(t, dir, `recipe {
  epoch = 1700000000
}
input "agent" { file = "blob" }
initramfs "a" {
  agent {
    file = input.agent
    path = "/sbin/agent"
  }
  file "/etc/hostname" { content = "guest\n" }
  symlink "/etc/mtab" { target = "/proc/self/mounts" }
  device "/dev/kmsg" {
    type  = "char"
    major = 1
    minor = 11
    mode  = "0644"
  }
  dir "/tmp" { mode = "0700" }
  device "/run/fifo" {
    type  = "fifo"
    major = 0
    minor = 0
  }
  file "/etc/owned" {
    content = "x"
    uid     = 1000
    gid     = 100
  }
  compression = "xz"
}`)
	if diags != "" {
		t.Fatal(diags)
	}
	res, err := l.Build(context.Background(), filepath.Join(dir, "out"), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(filepath.Join(dir, "out", "initramfs", "a", "initramfs.cpio.xz"))
	if err != nil {
		t.Fatal(err)
	}
	listing, err := initramfs.Inspect(img)
	if err != nil {
		t.Fatal(err)
	}
	type short struct{ Name, Type, Mode, Link string }
	var got []short
	for _, e := range listing.Entries {
		got = append(got, short{e.Name, e.Type, e.Mode, e.Link})
		wantUID, wantGID := uint64(0), uint64(0)
		if e.Name == "etc/owned" {
			wantUID, wantGID = 1000, 100
		}
		if e.MTime != 1700000000 || e.UID != wantUID || e.GID != wantGID {
			t.Errorf("%s: mtime %d owner %d:%d, want the epoch and %d:%d", e.Name, e.MTime, e.UID, e.GID, wantUID, wantGID)
		}
	}
	want := []short{
		{"dev", "dir", "0755", ""}, {"dev/console", "char", "0600", ""}, {"dev/kmsg", "char", "0644", ""}, {"dev/null", "char", "0666", ""},
		{"etc", "dir", "0755", ""}, {"etc/hostname", "file", "0644", ""}, {"etc/mtab", "symlink", "0777", "/proc/self/mounts"},
		{"etc/owned", "file", "0644", ""},
		{"init", "symlink", "0777", "/sbin/agent"},
		{"proc", "dir", "0755", ""}, {"run", "dir", "0755", ""}, {"run/fifo", "fifo", "0600", ""},
		{"sbin", "dir", "0755", ""}, {"sbin/agent", "file", "0755", ""},
		{"sys", "dir", "0755", ""}, {"tmp", "dir", "0700", ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	var extra map[string]any
	for _, a := range res.Manifest.Artifacts {
		if a.Name == "initramfs.a" {
			extra = a.Extra
		}
	}
	if extra["compression"] != "xz" || extra["agent"] != "/sbin/agent" {
		t.Errorf("manifest fields %v", extra)
	}
}
