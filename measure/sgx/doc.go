// Package sgx computes Intel SGX enclave identities without an SGX CPU:
// MRENCLAVE from an enclave's page list, as ECREATE, EADD and EEXTEND
// extend it (Intel SDM vol. 3D, "Enclave measurement"), and the enclave
// signature structure SIGSTRUCT: parsed, produced and signed with an
// RSA-3072 key of exponent 3, with the MRSIGNER it gives (SHA-256 of the
// modulus, little-endian as the CPU stores it).
//
// The page list comes from a Layout, built by the caller or read from an
// enclave ELF in the layout of the Linux kernel's SGX selftest
// (tools/testing/selftests/sgx): its first PT_LOAD segment holds the
// thread control structures, the others are regular pages with the
// segment's permissions, all measured, and an unmeasured read-write heap
// follows. The enclave layouts of the SGX SDKs and library OSes (Intel's
// SDK metadata section, Occlum, Gramine), which Confidential Containers'
// enclave-cc uses, are not read: their page lists must be given as a
// Layout.
//
// The package is pure: it reads no files and allocates in proportion to
// its inputs (a page list is at most MaxPages pages).
package sgx
