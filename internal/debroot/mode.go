package debroot

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
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
	// User is the caller's login name ("" when it has none), SubUID and
	// SubGID whether /etc/subuid and /etc/subgid give it a range, and
	// NewUIDMap whether newuidmap and newgidmap (package uidmap) are
	// installed: mmdebstrap's unshare mode maps the namespace with them.
	User           string
	SubUID, SubGID bool
	NewUIDMap      bool
	// Fakechroot says whether fakechroot and fakeroot are installed:
	// mmdebstrap's fakechroot mode needs neither root nor namespaces.
	Fakechroot bool
}

// ReadHost reads the facts ChooseMode decides from, for a process of uid
// euid (os.Geteuid() for this one).
func ReadHost(euid int) Host {
	h := Host{EUID: euid, MaxUserNamespaces: readInt("/proc/sys/user/max_user_namespaces"),
		UnprivilegedUserns: readInt("/proc/sys/kernel/unprivileged_userns_clone")}
	if u, err := user.LookupId(strconv.Itoa(h.EUID)); err == nil {
		h.User = u.Username
	}
	h.SubUID = hasRange("/etc/subuid", h.User, h.EUID)
	h.SubGID = hasRange("/etc/subgid", h.User, h.EUID)
	_, e1 := exec.LookPath("newuidmap")
	_, e2 := exec.LookPath("newgidmap")
	h.NewUIDMap = e1 == nil && e2 == nil
	_, e1 = exec.LookPath("fakechroot")
	_, e2 = exec.LookPath("fakeroot")
	h.Fakechroot = e1 == nil && e2 == nil
	return h
}

// hasRange says whether a subordinate id file has a range for the user
// (by name or uid).
func hasRange(file, name string, uid int) bool {
	b, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) == 3 && (f[0] == name && name != "" || f[0] == strconv.Itoa(uid)) && f[2] != "0" {
			return true
		}
	}
	return false
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
// another user when the kernel lets it make user namespaces (and newuidmap
// and a subordinate id range map them); otherwise fakechroot mode when
// fakechroot and fakeroot are installed (its Why says why not unshare);
// otherwise an error that says which setting forbids namespaces and what
// to do.
func ChooseMode(h Host) (Mode, error) {
	m, err := chooseNamespaces(h)
	if err == nil || !h.Fakechroot {
		return m, err
	}
	// Without namespaces, fakechroot and fakeroot pretend the chroot and
	// root for dpkg: the tree's owners and modes are recorded, not set.
	return Mode{Name: "fakechroot", Why: fmt.Sprintf("%v; fakechroot and fakeroot are installed: mmdebstrap's fakechroot mode instead", err)}, nil
}

// chooseNamespaces is root mode for root, unshare mode for another user
// whose namespaces work, or the reason they do not.
func chooseNamespaces(h Host) (Mode, error) {
	if h.EUID == 0 {
		return Mode{Name: "root", Why: "running as root: mmdebstrap's root mode"}, nil
	}
	switch {
	case h.MaxUserNamespaces == 0:
		return Mode{}, fmt.Errorf("installing Debian packages as uid %d needs user namespaces (mmdebstrap's unshare mode), and /proc/sys/user/max_user_namespaces is 0 on this machine: raise it (sysctl user.max_user_namespaces=10000), install fakechroot and fakeroot, or build as root", h.EUID)
	case h.UnprivilegedUserns == 0:
		return Mode{}, fmt.Errorf("installing Debian packages as uid %d needs user namespaces (mmdebstrap's unshare mode), and /proc/sys/kernel/unprivileged_userns_clone is 0 on this machine: set it to 1 (sysctl kernel.unprivileged_userns_clone=1), install fakechroot and fakeroot, or build as root", h.EUID)
	}
	who := fmt.Sprintf("uid %d", h.EUID)
	if h.User != "" {
		who = fmt.Sprintf("user %s (uid %d)", h.User, h.EUID)
	}
	switch {
	case !h.NewUIDMap:
		return Mode{}, fmt.Errorf("installing Debian packages as %s needs mmdebstrap's unshare mode, which maps the user namespace with newuidmap and newgidmap, and they are not installed: apt-get install uidmap, or install fakechroot and fakeroot, or build as root", who)
	case !h.SubUID || !h.SubGID:
		return Mode{}, fmt.Errorf("installing Debian packages as %s needs mmdebstrap's unshare mode, which needs a range of subordinate ids for the user in /etc/subuid and /etc/subgid, and they have none: add one (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s), or install fakechroot and fakeroot, or build as root", who, h.User)
	}
	return Mode{Name: "unshare", Why: fmt.Sprintf("running as uid %d with user namespaces allowed (max_user_namespaces %d): mmdebstrap's unshare mode", h.EUID, h.MaxUserNamespaces)}, nil
}
