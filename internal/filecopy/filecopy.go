// Package filecopy is cocobuild's one file copy: into a new file, with the
// mode it is given whatever the umask, hashing the bytes as they go.
package filecopy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
)

// Copied says what Copy wrote.
type Copied struct {
	SHA256 string // hex digest of the bytes copied
	Size   int64
}

// Copy copies the regular file src to dst, which must not exist, with mode
// perm (the umask does not apply). It returns the digest and size of the
// bytes it copied; on failure dst is removed.
func Copy(src, dst string, perm os.FileMode) (Copied, error) {
	in, err := os.Open(src)
	if err != nil {
		return Copied{}, err
	}
	defer in.Close()
	if st, err := in.Stat(); err != nil {
		return Copied{}, err
	} else if !st.Mode().IsRegular() {
		return Copied{}, fmt.Errorf("copying %s: not a regular file", src)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return Copied{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), in)
	if err == nil {
		err = out.Chmod(perm) // the umask must not reach outputs
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
		return Copied{}, fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	return Copied{SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}
