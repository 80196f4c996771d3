package kernel_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/testkinds"
)

const sourceInput = `
input "src" {
  file = "linux.tar.xz"
}
input "frag" {
  file = "extra.config"
}
`

// TestDecodeDiagnostics checks the errors of the kernel block's two forms.
func TestDecodeDiagnostics(t *testing.T) {
	tests := []struct {
		name, block string
		want        []string // summary, then a part of the detail; "" when valid
	}{
		{"source", `kernel "k" {
  source {
    tarball   = input.src
    base      = "tinyconfig"
    fragments = ["common", input.frag, "tdx"]
  }
  cmdline = ["console=ttyS0"]
}`, nil},
		{"base file", `kernel "k" {
  source {
    tarball = input.src
    base    = input.frag
  }
}`, nil},
		{"both", `kernel "k" {
  image = input.src
  source {
    tarball = input.src
    base    = "defconfig"
  }
}`, []string{"Both image and source", "either a prebuilt image"}},
		{"neither", `kernel "k" {
  cmdline = "console=ttyS0"
}`, []string{"Missing required argument", `"image" is required, but no definition was found. Give image = … (a prebuilt bzImage, e.g. input.NAME), or a source { tarball, base, fragments } block`}},
		{"unknown base", `kernel "k" {
  source {
    tarball = input.src
    base    = "smallconfig"
  }
}`, []string{"Unknown base configuration", `tinyconfig, defconfig, allnoconfig`}},
		{"unknown fragment", `kernel "k" {
  source {
    tarball   = input.src
    base      = "tinyconfig"
    fragments = ["common", "tdxx"]
  }
}`, []string{"Unknown fragment", `no shipped fragment "tdxx" (cocobuild ships common, fwcfg, snp, tdx)`}},
		{"duplicate fragment", `kernel "k" {
  source {
    tarball   = input.src
    base      = "tinyconfig"
    fragments = ["snp", "snp"]
  }
}`, []string{"Duplicate fragment", `"snp" is listed twice`}},
		{"fragments not a list", `kernel "k" {
  source {
    tarball   = input.src
    base      = "tinyconfig"
    fragments = "common"
  }
}`, []string{"Invalid fragments", "not string"}},
		{"fragment not a file", `kernel "k" {
  source {
    tarball   = input.src
    base      = "tinyconfig"
    fragments = [42]
  }
}`, []string{"Not an artifact", "not number"}},
		{"no tarball", `kernel "k" {
  source {
    base = "tinyconfig"
  }
}`, []string{"Missing required argument", `"tarball" is required`}},
		{"two sources", `kernel "k" {
  source {
    tarball = input.src
    base    = "tinyconfig"
  }
  source {
    tarball = input.src
    base    = "defconfig"
  }
}`, []string{"Duplicate source block", "the first is at"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range map[string]string{"linux.tar.xz": "tarball", "extra.config": "CONFIG_X=y\n", "r.hcl": sourceInput + tc.block} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := builder.Load(filepath.Join(dir, "r.hcl"), testkinds.LoadOptions(t.TempDir(), input.Options{AllowUnpinned: true}))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("valid block: %v", err)
				}
				return
			}
			var de *builder.DiagError
			if !errors.As(err, &de) {
				t.Fatalf("error %v, want diagnostics", err)
			}
			if len(de.Diags) == 0 || de.Diags[0].Summary != tc.want[0] || !strings.Contains(de.Diags[0].Detail, tc.want[1]) {
				t.Errorf("diagnostics %v, want %q with %q", de.Diags, tc.want[0], tc.want[1])
			}
			if s := de.Diags[0].Subject; s == nil || !strings.HasSuffix(s.Filename, "r.hcl") || s.Start.Line < 8 {
				t.Errorf("diagnostic subject %v, want a range in the kernel block of r.hcl", s)
			}
		})
	}
}
