// Package cca models the measurements of an Arm CCA realm: the Realm
// Initial Measurement (RIM) that the Realm Management Monitor (RMM)
// computes while the host builds the realm, and the four Realm Extensible
// Measurements (REMs), which are zero at launch.
//
// The RIM follows Arm's RMM specification (DEN0137 1.0): RMI_REALM_CREATE
// hashes the measured fields of the realm parameters (flags, IPA width
// s2sz, SVE vector length, breakpoints, watchpoints, PMU counters, hash
// algorithm); each RMI_RTT_INIT_RIPAS, RMI_DATA_CREATE and RMI_REC_CREATE
// then replaces the RIM with the hash of a measurement descriptor that
// holds the previous RIM. Which calls a VMM makes, at which addresses,
// follows the realm VM layouts of veraison/cca-realm-measurements (its
// "Realm Virtual Machine specification") for QEMU and kvmtool: RIPAS over
// all guest RAM with the largest translation blocks, the firmware, kernel,
// initrd and DTB measured page by page in ascending address order, and
// one runnable REC (the boot vCPU; secondary vCPUs are started by PSCI and
// are not part of the RIM).
//
// The package does no I/O: Measure takes the bytes of the images and the
// VMM's own command line. The DTB is measured as the caller gives it;
// without one, Measure generates the DTB realm-measurements generates for
// the VMM (byte for byte the vectors' DTBs).
package cca

// ModelVersion identifies this package's measurement model. Bump it
// whenever the RIM, a REM or the event list changes for some input: the
// builder's measure step is keyed by it.
const ModelVersion = "1"
