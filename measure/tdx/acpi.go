package tdx

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// ACPITables are the QEMU fw_cfg files OVMF downloads to build the ACPI
// tables; it measures each into RTMR0 before using it. Dump them from a
// guest of the same VM configuration (/sys/firmware/qemu_fw_cfg/by_name/…/raw)
// or from QEMU; they depend on the machine type, devices, vCPUs and memory.
type ACPITables struct {
	TableLoader []byte // etc/table-loader
	RSDP        []byte // etc/acpi/rsdp
	Tables      []byte // etc/acpi/tables
}

// fw_cfg names of the ACPI blobs.
const (
	fwCfgTableLoader = "etc/table-loader"
	fwCfgRSDP        = "etc/acpi/rsdp"
	fwCfgTables      = "etc/acpi/tables"
)

// QEMU linker/loader command layout (hw/acpi/bios-linker-loader.c).
const (
	loaderEntrySize  = 128
	loaderCmdAlloc   = 1
	loaderFileNameSz = 56
)

// acpiBlobOrder returns the files the table-loader allocates, in command
// order: OVMF measures each when it processes its ALLOCATE command.
func acpiBlobOrder(loader []byte) ([]string, error) {
	if len(loader) == 0 || len(loader)%loaderEntrySize != 0 {
		return nil, fmt.Errorf("%s is %d bytes, not a whole number of %d-byte loader commands: give the blob exactly as QEMU serves it", fwCfgTableLoader, len(loader), loaderEntrySize)
	}
	var names []string
	for off := 0; off < len(loader); off += loaderEntrySize {
		cmd := loader[off : off+loaderEntrySize]
		if binary.LittleEndian.Uint32(cmd) != loaderCmdAlloc {
			continue
		}
		name := cmd[4 : 4+loaderFileNameSz]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		names = append(names, string(name))
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s allocates no files: not a QEMU ACPI table-loader", fwCfgTableLoader)
	}
	return names, nil
}

// acpiEvents returns the RTMR0 events of the ACPI blobs in measurement order.
func acpiEvents(t *ACPITables) ([]Event, error) {
	order, err := acpiBlobOrder(t.TableLoader)
	if err != nil {
		return nil, err
	}
	blobs := map[string][]byte{fwCfgRSDP: t.RSDP, fwCfgTables: t.Tables}
	ev := func(name string, b []byte) Event {
		return Event{
			RTMR: 0, Type: EvPlatformConfigFlags,
			Description: fmt.Sprintf("QEMU fw_cfg %s (%d bytes), measured by OVMF before use", name, len(b)),
			Digest:      sha384(b),
			Data:        []byte("ACPI DATA"),
		}
	}
	events := []Event{ev(fwCfgTableLoader, t.TableLoader)}
	for _, name := range order {
		b, ok := blobs[name]
		if !ok || b == nil {
			return nil, fmt.Errorf("%s allocates %q, which was not given: RTMR0 needs every blob the loader downloads", fwCfgTableLoader, name)
		}
		events = append(events, ev(name, b))
	}
	return events, nil
}
