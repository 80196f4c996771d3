package testenv

import "encoding/binary"

// FakeBzImage returns a minimal image with an EFI-stub "MZ" and a Linux
// setup header (boot protocol 2.15) whose kernel_version string names
// release, followed by filler up to size bytes. It is enough for the
// prebuilt kernel block; it does not boot.
func FakeBzImage(release string, size int) []byte {
	b := make([]byte, size)
	copy(b, "MZ")
	b[0x1f1] = 1
	binary.LittleEndian.PutUint16(b[0x1fe:], 0xaa55)
	copy(b[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(b[0x206:], 0x020f)
	binary.LittleEndian.PutUint16(b[0x20e:], 0x300-0x200)
	copy(b[0x300:], release+" (test@cocobuild) #1 SMP\x00")
	for i := 0x400; i < size; i++ {
		b[i] = byte(i * 7)
	}
	return b
}
