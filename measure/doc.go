// Package measure holds the launch-measurement models of cocobuild. Its
// subpackages are pure functions: bytes and parameters in, digests and event
// logs out. They do no file I/O and know nothing of recipes:
//
//   - ovmf: the OVMF/edk2 firmware footer GUID table that the TEE models share
//   - sev:  AMD SEV, SEV-ES and SEV-SNP launch digests and SNP ID blocks
//   - tdx:  Intel TDX MRTD, RTMR0-3 and the expected event log
//   - pe:   PE/COFF parsing and Authenticode digests
//   - pcr:  TPM PCR 11 of a unified kernel image (systemd-stub's section
//     measurements and systemd-pcrphase's phases), systemd-measure compatible
//   - se:   IBM Z Secure Execution headers and images: PLD, ALD and TLD
//     recomputed from an image's encrypted components, as genprotimg does
package measure
