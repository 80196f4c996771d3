package tee

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/measure/ovmf"
	"github.com/cocobuild/cocobuild/recipes"
)

// StepFormat is the version of what a measure step itself writes
// (measurements.json, entry names and params, event log file names). Bump
// it when that changes; the models' own changes are their ModelVersions.
//
// 4: firmware.json (the firmware inspection), SEV coverage that depends on
// it, and TDX entries' params.covers. 5: TDX ACPI tables read from QEMU
// (acpi/), vcpus in TDX entry names, params.assumptions. 6: TDX values
// tdvfkernel and tdvfkernelparams.
const StepFormat = "6"

// StepVersion is a measure step's version: StepFormat and the version of
// every model its result depends on (pairs of model name and version), so
// that a model change invalidates cached measurements.
func StepVersion(models ...string) string {
	s := "step=" + StepFormat
	for i := 0; i+1 < len(models); i += 2 {
		s += "," + models[i] + "=" + models[i+1]
	}
	return s
}

// StepID is the ID of the step whose result holds measurements.json and
// firmware.json.
const StepID = "measure"

// StepParams are the parameters every measure step's key covers; a TEE's
// params embed them first.
type StepParams struct {
	TEE     string `json:"tee"`
	Kernel  bool   `json:"kernel"`
	Initrd  bool   `json:"initrd"`
	Cmdline string `json:"cmdline"`
}

// Inputs are the block's artifacts and the step parameters they set:
// firmware, then kernel and initrd when the block boots one directly.
func (b *Block) Inputs() ([]recipes.Artifact, StepParams) {
	var inputs []recipes.Artifact
	if b.FirmwareGiven {
		inputs = append(inputs, b.Firmware)
	}
	p := StepParams{TEE: b.TEE, Cmdline: b.Cmdline}
	if b.Kernel != nil {
		inputs, p.Kernel = append(inputs, *b.Kernel), true
	}
	if b.Initrd != nil {
		inputs, p.Initrd = append(inputs, *b.Initrd), true
	}
	return inputs, p
}

// Entry is one combination's result as the step stores it. Its Name is the
// combination only: the block name is added by Finish, so that two blocks
// with the same parameters share one cached result.
type Entry struct {
	manifest.Measurement
	EventLog string `json:"eventlog,omitempty"` // file name of the event log
	Report   any    `json:"report,omitempty"`   // the full model output
}

// Read are the bytes a measure step measures, and what the firmware can
// vouch for.
type Read struct {
	Firmware, Kernel, Initrd []byte
	FirmwareInfo             *ovmf.Info
	FirmwareErr              error // the firmware could not be inspected
	// Common are the params of every entry: the artifacts' digests and
	// the cmdline.
	Common map[string]any
}

// ReadInputs reads the block's artifacts, inspects the firmware and writes
// the inspection (firmware.json) into dir. Each artifact is read once,
// within b.Limits (limits.Firmware, limits.Kernel, limits.Initrd: the
// build's --limit).
func (b *Block) ReadInputs(dir string) (*Read, error) {
	r := &Read{}
	read := func(a *recipes.Artifact, l limits.Limit) ([]byte, error) {
		data, err := b.Limits.ReadFile(a.Path, l)
		if err != nil {
			return nil, fmt.Errorf("%s of measure block %q (%s): %w", l.Name, b.Name, a.Origin, err)
		}
		return data, nil
	}
	var err error
	if b.FirmwareGiven {
		if r.Firmware, err = read(&b.Firmware, limits.Firmware); err != nil {
			return nil, err
		}
	}
	if b.Kernel != nil {
		if r.Kernel, err = read(b.Kernel, limits.Kernel); err != nil {
			return nil, err
		}
	}
	if b.Initrd != nil {
		if r.Initrd, err = read(b.Initrd, limits.Initrd); err != nil {
			return nil, err
		}
	}
	r.Common = map[string]any{}
	if b.FirmwareGiven {
		r.FirmwareInfo, r.FirmwareErr = ovmf.Inspect(r.Firmware)
		r.Common["firmware_sha256"] = b.Firmware.SHA256
	} else {
		r.FirmwareErr = errors.New("the measure block has no firmware")
	}
	if err := writeFirmwareRecord(dir, r.FirmwareInfo, r.FirmwareErr); err != nil {
		return nil, err
	}
	if b.Kernel != nil {
		r.Common["kernel_sha256"], r.Common["cmdline"] = b.Kernel.SHA256, b.Cmdline
	}
	if b.Initrd != nil {
		r.Common["initrd_sha256"] = b.Initrd.SHA256
	}
	return r, nil
}

// WriteEntries writes the step's entries (measurements.json) into dir.
func WriteEntries(dir string, entries []Entry) error {
	b, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "measurements.json"), append(b, '\n'), 0o644)
}

// firmwareRecord is what the manifest's firmware artifact says the firmware
// can vouch for (from ovmf.Inspect).
type firmwareRecord struct {
	Edk2Version        string       `json:"edk2_version,omitempty"`
	SEVSections        []string     `json:"sev_sections,omitempty"`
	HashesTable        *ovmf.Area   `json:"hashes_table,omitempty"`
	VerifiesDirectBoot bool         `json:"verifies_direct_boot"`
	DirectBootEvidence string       `json:"direct_boot_evidence,omitempty"`
	TDX                bool         `json:"tdx_metadata"`
	MeasuresRTMR       bool         `json:"measures_rtmr"`
	RTMREvidence       string       `json:"rtmr_evidence,omitempty"`
	SecureBoot         bool         `json:"secure_boot"`
	Enrolled           []string     `json:"secure_boot_enrolled,omitempty"`
	Vouches            ovmf.Vouches `json:"vouches"`
	Error              string       `json:"error,omitempty"` // the image could not be inspected
}

const firmwareRecordFile = "firmware.json"

func writeFirmwareRecord(dir string, info *ovmf.Info, err error) error {
	var rec firmwareRecord
	if err != nil {
		rec.Error = err.Error()
	} else {
		rec = firmwareRecord{Edk2Version: info.Edk2Version, HashesTable: info.HashesTable,
			VerifiesDirectBoot: info.VerifiesDirectBoot, DirectBootEvidence: info.DirectBootEvidence,
			TDX: info.TDX != nil, MeasuresRTMR: info.MeasuresRTMR, RTMREvidence: info.RTMREvidence,
			SecureBoot: info.SecureBoot.Enabled, Enrolled: info.SecureBoot.Enrolled, Vouches: info.Vouches}
		for _, s := range info.SEVSections {
			rec.SEVSections = append(rec.SEVSections, s.Type)
		}
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, firmwareRecordFile), append(b, '\n'), 0o644)
}

// FinishOptions are what a TEE adds when its block finishes.
type FinishOptions struct {
	// Entry adjusts an entry as the manifest lists it (e.g. adds the
	// declared launch policy), before its name gets the block's.
	Entry func(m *manifest.Measurement)
	// Artifacts are the step result's files of its own to export (after
	// the measurements and the inputs).
	Artifacts func(res *recipes.Result) ([]recipes.OutputArtifact, error)
	// EventLogFormat is the format of the entries' event logs.
	EventLogFormat string
}

// Finish turns the measure step's result into the block's output: the
// entries go into the manifest, the full reports and event logs into
// OUT/measure/NAME/.
func (b *Block) Finish(results map[string]*recipes.Result, o FinishOptions) (*recipes.Output, error) {
	if b.ReadVerified == nil {
		return nil, errors.New("tee: MeasureKind.ReadVerified is not set: the measurements cannot be read from the cache")
	}
	res := results[StepID]
	f, err := res.File("measurements.json")
	if err != nil {
		return nil, err
	}
	// The measurements are read from the cache: their bytes must be what
	// the step's record states, or tampered values would be signed.
	data, err := b.ReadVerified(f)
	if err != nil {
		return nil, err
	}
	var entries []Entry
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("reading cached measurements: %w", err)
	}
	var fwRec firmwareRecord
	if rf, err := res.File(firmwareRecordFile); err != nil {
		return nil, err
	} else if data, err := b.ReadVerified(rf); err != nil {
		return nil, err
	} else if err := json.Unmarshal(data, &fwRec); err != nil {
		return nil, fmt.Errorf("reading the cached firmware inspection: %w", err)
	}
	out := &recipes.Output{
		Value: cty.ObjectVal(map[string]cty.Value{"tee": cty.StringVal(b.TEE), "count": cty.NumberIntVal(int64(len(entries)))}),
		Artifacts: []recipes.OutputArtifact{{Name: "measure." + b.Name, Kind: "measurements", Path: "measure/" + b.Name + "/measurements.json", File: f,
			Extra: map[string]any{"tee": b.TEE, "entries": len(entries)}}},
	}
	// What the firmware can vouch for goes on its artifact, or on the
	// measurements when the firmware is another block's output.
	fw := &b.Firmware
	if !b.FirmwareGiven {
		fw = nil
	} else if !strings.HasPrefix(b.Firmware.Origin, "input.") {
		out.Artifacts[0].Extra["firmware"] = fwRec
	}
	// Firmware, kernel and initrd that come straight from inputs are not in
	// the output directory otherwise; a launch needs them (cocobuild run
	// finds every file an entry names by its sha256).
	for _, f := range []struct {
		a    *recipes.Artifact
		name string
	}{{fw, "firmware"}, {b.Kernel, "kernel"}, {b.Initrd, "initrd"}} {
		if f.a != nil && strings.HasPrefix(f.a.Origin, "input.") {
			extra := map[string]any{"from": f.a.Origin}
			if f.name == "firmware" {
				extra["firmware"] = fwRec
			}
			out.Artifacts = append(out.Artifacts, recipes.OutputArtifact{Name: "measure." + b.Name + "/" + f.name, Kind: f.name,
				Path: "measure/" + b.Name + "/" + f.name, File: *f.a, Extra: extra})
		}
	}
	if o.Artifacts != nil {
		extra, err := o.Artifacts(res)
		if err != nil {
			return nil, err
		}
		out.Artifacts = append(out.Artifacts, extra...)
	}
	for _, e := range entries {
		m := e.Measurement
		if o.Entry != nil {
			o.Entry(&m)
		}
		if m.Name == "" {
			m.Name = b.Name
		} else {
			m.Name = b.Name + "/" + m.Name
		}
		if e.EventLog != "" {
			log, err := res.File(e.EventLog)
			if err != nil {
				return nil, err
			}
			path := "measure/" + b.Name + "/" + e.EventLog
			out.Artifacts = append(out.Artifacts, recipes.OutputArtifact{Name: "measure." + b.Name + "/" + strings.TrimSuffix(e.EventLog, ".ccel"),
				Kind: "eventlog", Path: path, File: log, Extra: map[string]any{"format": o.EventLogFormat, "measurement": m.Name}})
			m.Params = With(m.Params, "eventlog", path)
		}
		out.Measurements = append(out.Measurements, m)
	}
	return out, nil
}
