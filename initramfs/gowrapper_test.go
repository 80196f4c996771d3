package initramfs

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWithoutForceRebuild(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args, out []string
	}{
		{"gobusybox's build", []string{"build", "-o", "/tmp/bb", "-a", "-gcflags=all=-l", "-ldflags", "-s -w -buildid=", "-trimpath", "."},
			[]string{"build", "-o", "/tmp/bb", "-gcflags=all=-l", "-ldflags", "-s -w -buildid=", "-trimpath", "."}},
		{"-a as a value", []string{"build", "-o", "-a", "-a", "./cmd"}, []string{"build", "-o", "-a", "./cmd"}},
		{"a package named -a after --", []string{"build", "-a", "--", "-a"}, []string{"build", "--", "-a"}},
		{"packages keep their names", []string{"build", "-a", "pkg", "-a"}, []string{"build", "pkg", "-a"}},
		{"not a build", []string{"version"}, []string{"version"}},
		{"list keeps -a", []string{"list", "-a"}, []string{"list", "-a"}},
		{"nothing", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.out, withoutForceRebuild(tc.args)); diff != "" {
				t.Errorf("withoutForceRebuild(%q) (-want +got):\n%s", tc.args, diff)
			}
		})
	}
}
