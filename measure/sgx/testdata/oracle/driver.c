// SPDX-License-Identifier: Apache-2.0
//
// driver: cocobuild's SGX oracle. Linked with the kernel selftest's
// load.c, sigstruct.c and sign_key.S (tools/testing/selftests/sgx), it
// runs the selftest's own encl_load and encl_measure on an enclave ELF
// for each heap size given and prints, one line per size:
//
//   HEAP MRENCLAVE MRSIGNER SIGSTRUCT
//
// in lowercase hex: the enclave's MRENCLAVE as encl_measure computes it,
// SHA-256 of the SIGSTRUCT's modulus (little-endian, as SGX hashes it into
// MRSIGNER), and the whole SIGSTRUCT encl_measure signed with the
// selftest's key. Run it with sgxshim preloaded (no /dev/sgx_enclave).
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <openssl/sha.h>
#include "defines.h"
#include "main.h"

static void hex(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s ENCLAVE.elf HEAP_SIZE...\n", argv[0]);
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		struct encl encl;
		unsigned long heap = strtoul(argv[i], NULL, 0);
		uint8_t signer[SHA256_DIGEST_LENGTH];

		if (!encl_load(argv[1], &encl, heap)) {
			fprintf(stderr, "encl_load %s heap %lu failed\n", argv[1], heap);
			return 1;
		}
		if (!encl_measure(&encl)) {
			fprintf(stderr, "encl_measure heap %lu failed\n", heap);
			encl_delete(&encl);
			return 1;
		}
		SHA256(encl.sigstruct.modulus, sizeof(encl.sigstruct.modulus), signer);
		printf("%lu ", heap);
		hex(encl.sigstruct.body.mrenclave, sizeof(encl.sigstruct.body.mrenclave));
		printf(" ");
		hex(signer, sizeof(signer));
		printf(" ");
		hex(&encl.sigstruct, sizeof(encl.sigstruct));
		printf("\n");
		encl_delete(&encl);
	}
	return 0;
}
