package manifest

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCoverageParam(t *testing.T) {
	cases := []struct {
		name      string
		params    map[string]any
		hasInitrd bool
		lacks     []string
		err       string
	}{
		{"whole guest", map[string]any{"covers": map[string]any{"firmware": true, "kernel": true, "initrd": true, "cmdline": true}}, true, nil, ""},
		{"a struct of the same form", map[string]any{"covers": Coverage{Firmware: true, Kernel: true, Cmdline: true}}, false, nil, ""},
		{"no initrd in the guest", map[string]any{"covers": map[string]any{"firmware": true, "kernel": true, "initrd": false, "cmdline": true}}, false, nil, ""},
		{"initrd in the guest", map[string]any{"covers": map[string]any{"firmware": true, "kernel": true, "initrd": false, "cmdline": true}}, true, []string{"initrd"}, ""},
		{"firmware only", map[string]any{"covers": map[string]any{"firmware": true, "kernel": false, "initrd": false, "cmdline": false}}, true, []string{"kernel", "initrd", "cmdline"}, ""},
		{"missing", map[string]any{}, false, nil, "no params.covers"},
		{"a part left out", map[string]any{"covers": map[string]any{"firmware": true, "kernel": true, "cmdline": true}}, false, nil, "whether it covers the initrd"},
		{"not an object", map[string]any{"covers": "all"}, false, nil, "not an object"},
		{"not a bool", map[string]any{"covers": map[string]any{"firmware": "yes", "kernel": true, "initrd": true, "cmdline": true}}, false, nil, "cannot unmarshal"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cov, err := CoverageParam(c.params)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.lacks, cov.Lacks(c.hasInitrd)); diff != "" {
				t.Errorf("lacks (-want +got):\n%s", diff)
			}
		})
	}
}
