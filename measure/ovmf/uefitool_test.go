package ovmf

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// uefiExtractReport runs UEFIExtract (UEFITool's engine, an independent C++
// parser: Debian package uefitool-cli) on fw and returns the UI names of the
// files it lists and the live (Auth) variables of the variable store as
// "GUID/name".
func uefiExtractReport(t *testing.T, tool string, fw []byte) (modules, vars []string) {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, "fw.fd")
	if err := os.WriteFile(img, fw, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(tool, img, "report").CombinedOutput(); err != nil {
		t.Fatalf("UEFIExtract report: %v\n%s", err, out)
	}
	rep, err := os.ReadFile(img + ".report.txt")
	if err != nil {
		t.Fatalf("UEFIExtract wrote no report: %v", err)
	}
	// Columns: Type | Subtype | Base | Size | CRC32 | tree name [| text].
	// A file's text is its UI name when it has a UI section.
	fileName, hasUI := "", false
	flush := func() {
		if hasUI && fileName != "" && !slices.Contains(modules, fileName) {
			modules = append(modules, fileName)
		}
		fileName, hasUI = "", false
	}
	for _, line := range strings.Split(string(rep), "\n") {
		cols := strings.Split(line, "|")
		if len(cols) < 6 {
			continue
		}
		typ, sub := strings.TrimSpace(cols[0]), strings.TrimSpace(cols[1])
		switch {
		case typ == "File":
			flush()
			if len(cols) >= 7 {
				fileName = strings.TrimSpace(cols[6])
			}
		case typ == "Section" && sub == "UI":
			hasUI = true
		case typ == "VSS entry" && sub == "Auth" && len(cols) >= 7:
			g := strings.TrimLeft(strings.TrimSpace(cols[5]), "- ")
			vars = append(vars, strings.ToLower(g)+"/"+strings.TrimSpace(cols[6]))
		}
	}
	flush()
	slices.Sort(modules)
	return modules, vars
}

// TestInspectAgainstUEFIExtract: the modules and variables Inspect finds
// (through fiano) are the ones UEFITool finds, for every whole firmware.
func TestInspectAgainstUEFIExtract(t *testing.T) {
	tool := testenv.Tool(t, "UEFIExtract", "uefitool-cli")
	for _, file := range []string{"debian12_OVMF.fd", "debian12_OVMF_CODE.fd", "debian12_OVMF_CODE_4M.fd",
		"debian-sid_OVMF.amdsev.fd", "debian-sid_OVMF.inteltdx.ms.fd", "debian-sid_OVMF.fd"} {
		t.Run(file, func(t *testing.T) {
			fw := testenv.ReadVector(t, "inputs/"+file)
			wantModules, wantVars := uefiExtractReport(t, tool, fw)
			info, err := Inspect(fw)
			if err != nil {
				t.Fatal(err)
			}
			if len(wantModules) < 50 {
				t.Fatalf("UEFIExtract listed %d named files: the report format is not what this test reads", len(wantModules))
			}
			if diff := cmp.Diff(wantModules, info.Modules); diff != "" {
				t.Errorf("modules (-UEFIExtract +Inspect):\n%s", diff)
			}
			var gotVars []string
			for _, v := range info.Variables {
				gotVars = append(gotVars, v.GUID.String()+"/"+v.Name)
			}
			if diff := cmp.Diff(wantVars, gotVars); diff != "" {
				t.Errorf("live variables (-UEFIExtract +Inspect):\n%s", diff)
			}
		})
	}
}
