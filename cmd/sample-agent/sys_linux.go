package main

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/containerd/go-dmverity/pkg/dm"
	"github.com/containerd/go-dmverity/pkg/verity"
	"golang.org/x/sys/unix"
)

// mountBasics mounts what an init needs when the agent runs as /init.
func mountBasics(out io.Writer) {
	for _, m := range []struct{ src, dst, fstype string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
	} {
		os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.src, m.dst, m.fstype, 0, ""); err != nil && err != unix.EBUSY {
			fmt.Fprintf(out, "%serror: mounting %s: %v\n", prefix, m.dst, err)
		}
	}
}

// mountConfigfs mounts configfs, where configfs-tsm offers its report
// directory; it may be mounted already.
func mountConfigfs() {
	if _, err := os.Stat("/sys/kernel/config"); err != nil {
		return
	}
	if _, err := os.Stat("/sys/kernel/config/tsm"); err == nil {
		return
	}
	unix.Mount("configfs", "/sys/kernel/config", "configfs", 0, "")
}

func powerOff() {
	// Let the console transmit everything printed so far: the kernel
	// powers off without draining the serial line.
	unix.IoctlSetInt(int(os.Stdout.Fd()), unix.TCSBRK, 1) // tcdrain
	time.Sleep(100 * time.Millisecond)
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		fmt.Fprintf(os.Stdout, "%serror: power off: %v\n", prefix, err)
	}
}

// waitFor waits until path exists (devices appear as their drivers probe).
func waitFor(path string, deadline time.Time) error {
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear (is its driver module loaded?)", path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// setupVerity creates the device-mapper verity device and returns its node.
func setupVerity(v *Verity, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for _, d := range []*string{&v.DataDevice, &v.HashDevice} {
		p, err := resolveDevice(*d, deadline)
		if err != nil {
			return "", err
		}
		*d = p
	}
	if err := waitFor("/dev/mapper/control", deadline); err != nil {
		return "", err
	}
	if v.Superblock {
		if err := readSuperblock(v); err != nil {
			return "", err
		}
	}
	c, err := dm.Open()
	if err != nil {
		return "", fmt.Errorf("opening /dev/mapper/control (is dm-mod loaded?): %w", err)
	}
	defer c.Close()
	// With CONFIG_DM_INIT the kernel has already made the device from
	// dm-mod.create= (the same command line): use it when its table is
	// the one the command line describes.
	if st, err := c.DeviceStatus(v.Name); err == nil {
		table, err := c.TableStatus(v.Name, true)
		if err != nil {
			return "", fmt.Errorf("reading the table of the existing device %q: %w", v.Name, err)
		}
		if err := v.MatchesTable(table); err != nil {
			return "", err
		}
		node := fmt.Sprintf("/dev/dm-%d", st.Minor)
		return node, waitFor(node, deadline)
	}
	devno, err := c.CreateDevice(v.Name)
	if err != nil {
		return "", err
	}
	if err := c.LoadTable(v.Name, []dm.Target{{SectorStart: 0, Length: v.Sectors(), Type: "verity", Params: v.Table()}}); err != nil {
		c.RemoveDevice(v.Name)
		return "", fmt.Errorf("%w (is dm-verity loaded? table: %s)", err, v.Table())
	}
	if err := c.SuspendDevice(v.Name, false); err != nil {
		c.RemoveDevice(v.Name)
		return "", err
	}
	node := fmt.Sprintf("/dev/dm-%d", unix.Minor(devno))
	if err := waitFor(node, deadline); err != nil {
		return "", err
	}
	return node, nil
}

// readSuperblock fills v's sizes, salt and algorithm from the verity
// superblock on the hash device (veritysetup's default layout).
func readSuperblock(v *Verity) error {
	f, err := os.Open(v.HashDevice)
	if err != nil {
		return err
	}
	defer f.Close()
	sb, err := verity.ReadSuperblock(f, v.SuperblockOffset)
	if err != nil {
		return fmt.Errorf("%s: %w (give superblock=false and the sizes in systemd.verity_root_options for a hash device without one)", v.HashDevice, err)
	}
	if sb.HashType != 1 {
		return fmt.Errorf("%s: verity hash type %d, want 1", v.HashDevice, sb.HashType)
	}
	v.DataBlockSize, v.HashBlockSize, v.DataBlocks = sb.DataBlockSize, sb.HashBlockSize, sb.DataBlocks
	if v.HashBlockSize == 0 || v.SuperblockOffset%uint64(v.HashBlockSize) != 0 {
		return fmt.Errorf("hash-offset %d is not a multiple of the hash block size %d", v.SuperblockOffset, v.HashBlockSize)
	}
	// The tree starts in the hash block after the superblock.
	v.HashStart = v.SuperblockOffset/uint64(v.HashBlockSize) + 1
	v.Algorithm = strings.ToLower(strings.TrimRight(string(sb.Algorithm[:]), "\x00"))
	if v.Salt == "-" && sb.SaltSize > 0 {
		if int(sb.SaltSize) > len(sb.Salt) {
			return fmt.Errorf("%s: superblock salt size %d", v.HashDevice, sb.SaltSize)
		}
		v.Salt = hex.EncodeToString(sb.Salt[:sb.SaltSize])
	}
	return v.check()
}

// fsMagic recognises the read-only root file systems cocobuild builds.
func fsMagic(r io.ReaderAt) (string, error) {
	b := make([]byte, 2048)
	if _, err := r.ReadAt(b, 0); err != nil {
		return "", err
	}
	switch {
	case binary.LittleEndian.Uint32(b[1024:]) == 0xE0F5E1E2:
		return "erofs", nil
	case string(b[:4]) == "hsqs":
		return "squashfs", nil
	case binary.LittleEndian.Uint16(b[1024+0x38:]) == 0xEF53:
		return "ext4", nil
	}
	return "", errors.New("no erofs, squashfs or ext4 file system")
}

// mountReadOnly mounts dev on dir read-only and returns the file system type.
func mountReadOnly(dev, dir string) (string, error) {
	f, err := os.Open(dev)
	if err != nil {
		return "", err
	}
	fstype, err := fsMagic(f)
	f.Close()
	if err != nil {
		return "", fmt.Errorf("%s: %w", dev, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := unix.Mount(dev, dir, fstype, unix.MS_RDONLY, ""); err != nil {
		return "", fmt.Errorf("mounting %s (%s) on %s: %w (is the %s module loaded?)", dev, fstype, dir, err, fstype)
	}
	return fstype, nil
}

// resolveDevice turns a device as the command line names it (a path,
// PARTUUID=…, PARTLABEL=… or MAJOR:MINOR) into what the verity table
// takes, waiting for the device to appear.
func resolveDevice(spec string, deadline time.Time) (string, error) {
	key, val, _ := strings.Cut(spec, "=")
	switch strings.ToUpper(key) {
	case "PARTUUID", "PARTLABEL":
		for {
			p, err := findPartition(strings.ToUpper(key), val)
			if err == nil && p != "" {
				return p, waitFor(p, deadline)
			}
			if time.Now().After(deadline) {
				if err == nil {
					err = errors.New("no disk has it; is the disk's driver module loaded?")
				}
				return "", fmt.Errorf("partition %s: %w", spec, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if strings.HasPrefix(spec, "/") {
		return spec, waitFor(spec, deadline)
	}
	return spec, nil // MAJOR:MINOR, for the kernel
}

// findPartition looks through the block devices for the partition with
// the given GPT unique GUID (PARTUUID) or name (PARTLABEL).
func findPartition(key, val string) (string, error) {
	ents, err := os.ReadDir("/sys/class/block")
	if err != nil {
		return "", err
	}
	for _, e := range ents {
		name := e.Name()
		sys := "/sys/class/block/" + name
		_, perr := os.Stat(sys + "/partition")
		isPart := perr == nil
		switch {
		case key == "PARTLABEL" && isPart:
			ue, _ := os.ReadFile(sys + "/uevent")
			for _, l := range strings.Split(string(ue), "\n") {
				if l == "PARTNAME="+val {
					return "/dev/" + name, nil
				}
			}
		case key == "PARTUUID" && !isPart:
			n, err := diskPartition(name, val)
			if err != nil || n == 0 {
				continue
			}
			subs, _ := os.ReadDir(sys)
			for _, sub := range subs {
				if b, err := os.ReadFile(sys + "/" + sub.Name() + "/partition"); err == nil && strings.TrimSpace(string(b)) == fmt.Sprint(n) {
					return "/dev/" + sub.Name(), nil
				}
			}
		}
	}
	return "", nil
}

// diskPartition returns the number of the partition with GUID partUUID
// on the whole disk name, or 0.
func diskPartition(name, partUUID string) (int, error) {
	lbs := int64(512)
	if b, err := os.ReadFile("/sys/class/block/" + name + "/queue/logical_block_size"); err == nil {
		fmt.Sscan(strings.TrimSpace(string(b)), &lbs)
	}
	f, err := os.Open("/dev/" + name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return gptPartition(f, lbs, partUUID)
}
