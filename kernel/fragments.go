package kernel

import (
	"embed"
	"fmt"
	"path"
	"sort"
	"strings"
)

// shipped holds the configuration fragments in kernel/fragments: common
// (the confidential-guest set), tdx, snp and fwcfg (QEMU's fw_cfg in sysfs,
// through which the measure step reads ACPI tables).
//
//go:embed fragments/*.config
var shipped embed.FS

// ShippedFragments lists the names of the fragments cocobuild ships.
func ShippedFragments() []string {
	ents, _ := shipped.ReadDir("fragments")
	var names []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".config"); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// ShippedFragment returns a shipped fragment by name ("common", "tdx",
// "snp").
func ShippedFragment(name string) ([]byte, error) {
	if name == "" || strings.ContainsAny(name, "/\\.") {
		return nil, fmt.Errorf("no shipped fragment %q (cocobuild ships %s)", name, strings.Join(ShippedFragments(), ", "))
	}
	b, err := shipped.ReadFile(path.Join("fragments", name+".config"))
	if err != nil {
		return nil, fmt.Errorf("no shipped fragment %q (cocobuild ships %s)", name, strings.Join(ShippedFragments(), ", "))
	}
	return b, nil
}
