// Package sev computes the launch measurements of AMD SEV, SEV-ES and SEV-SNP
// guests without booting them, bit-exact with virtee/sev-snp-measure 0.0.13,
// and builds SNP ID blocks.
//
// It is pure: firmware, kernel, initrd and parameters come in as bytes and
// values, digests and VMSA pages go out. It reads no files.
//
// The pieces:
//
//   - ParseFirmware reads what the measurement needs from an OVMF image: the
//     SEV metadata sections (SNP_SEC_MEM, SNP_SECRETS, CPUID, SVSM_CAA,
//     SNP_KERNEL_HASHES), the SEV-ES AP reset block and the location of the
//     SEV hashes table, all found through the OVMF footer GUID table.
//   - NewHashTable/HashTable.Bytes build the SEV hashes table QEMU writes for
//     measured direct boot (cmdline with its NUL, initrd, kernel).
//   - Measure computes an SEV (SHA-256), SEV-ES (SHA-256) or SEV-SNP (SHA-384
//     PAGE_INFO chain) launch digest for the QEMU/KVM, EC2 or GCE VMSA model,
//     and says in its Result what the digest covers and which model it used.
//     Errors that are the caller's parameters (not the firmware) are
//     ParamErrors. Prepare parses and hashes a firmware once for measuring a
//     matrix of vCPU counts, CPU types and VMMs; SNPFirmwareHash precomputes
//     the firmware part of an SNP digest (sev-snp-measure's snp:ovmf-hash).
//   - NewIDBlock builds and signs an SNP ID block and its ID authentication
//     information structure.
package sev
