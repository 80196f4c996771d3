package tdx

// LoadOptions returns the LoadOptions OVMF hands a directly booted kernel
// for a command line: the cmdline, with " initrd=initrd" when QEMU serves a
// non-empty initrd.
func LoadOptions(cmdline string, initrd bool) string {
	if initrd {
		return cmdline + " initrd=initrd"
	}
	return cmdline
}

// LoadOptionsDigest is the digest of the Linux EFI stub's LoadOptions
// event (RTMR2) for these LoadOptions: SHA-384 of them widened to UTF-16LE
// with a terminating NUL.
func LoadOptionsDigest(loadOptions string) Digest { return sha384(widenASCII(loadOptions)) }
