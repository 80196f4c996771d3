package debroot

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Mode is how mmdebstrap gets the privileges dpkg needs, and why it was
// chosen.
type Mode struct {
	Name string // "root" or "unshare", mmdebstrap's --mode
	Why  string
}

// Host is what ChooseMode decides from; ReadHost reads this machine's.
type Host struct {
	EUID int
	// MaxUserNamespaces is /proc/sys/user/max_user_namespaces (-1 when it
	// cannot be read).
	MaxUserNamespaces int
	// UnprivilegedUserns is /proc/sys/kernel/unprivileged_userns_clone
	// (Debian's switch; -1 when the kernel has none).
	UnprivilegedUserns int
}

// ReadHost reads the facts ChooseMode decides from.
func ReadHost() Host {
	return Host{EUID: os.Geteuid(), MaxUserNamespaces: readInt("/proc/sys/user/max_user_namespaces"),
		UnprivilegedUserns: readInt("/proc/sys/kernel/unprivileged_userns_clone")}
}

func readInt(p string) int {
	b, err := os.ReadFile(p)
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return n
}

// ChooseMode picks mmdebstrap's mode: root mode as root; unshare mode for
// another user when the kernel lets it make user namespaces; otherwise an
// error that says which setting forbids them and what to do.
func ChooseMode(h Host) (Mode, error) {
	if h.EUID == 0 {
		return Mode{Name: "root", Why: "running as root: mmdebstrap's root mode"}, nil
	}
	switch {
	case h.MaxUserNamespaces == 0:
		return Mode{}, fmt.Errorf("installing Debian packages as uid %d needs user namespaces (mmdebstrap's unshare mode), and /proc/sys/user/max_user_namespaces is 0 on this machine: raise it (sysctl user.max_user_namespaces=10000) or build as root", h.EUID)
	case h.UnprivilegedUserns == 0:
		return Mode{}, fmt.Errorf("installing Debian packages as uid %d needs user namespaces (mmdebstrap's unshare mode), and /proc/sys/kernel/unprivileged_userns_clone is 0 on this machine: set it to 1 (sysctl kernel.unprivileged_userns_clone=1) or build as root", h.EUID)
	}
	return Mode{Name: "unshare", Why: fmt.Sprintf("running as uid %d with user namespaces allowed (max_user_namespaces %d): mmdebstrap's unshare mode", h.EUID, h.MaxUserNamespaces)}, nil
}
