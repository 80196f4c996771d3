// Package fsinfo names file types for error messages, so that every place
// that refuses a file that is not a regular one says what it is alike.
package fsinfo

import "os"

// Kind names the type of a file mode that is not a regular file:
// "symbolic link", "directory", "named pipe", "socket", "device" or
// "special file".
func Kind(m os.FileMode) string {
	switch {
	case m&os.ModeSymlink != 0:
		return "symbolic link"
	case m.IsDir():
		return "directory"
	case m&os.ModeNamedPipe != 0:
		return "named pipe"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeDevice != 0:
		return "device"
	}
	return "special file"
}
