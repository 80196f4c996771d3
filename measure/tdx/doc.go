// Package tdx computes Intel TDX launch measurements without booting: MRTD
// from the TDVF (OVMF) firmware and the VMM's page order, RTMR0-3 for a QEMU
// q35 guest with OVMF/TDVF and a directly booted Linux kernel, and the event
// log (CCEL, TCG2 crypto-agile, SHA-384) that explains every extension.
//
// The package is pure: callers pass the bytes of the firmware, kernel,
// initrd and ACPI blobs and the parameters; nothing is read from files. The
// variants that peers disagree on (page order, QEMU's kernel setup-header
// patching before 10.2, the legacy TDVF separator placement) are options with
// defaults, and the result says which one was used.
package tdx
