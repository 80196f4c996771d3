package tdx

import (
	"fmt"
	"strconv"

	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/tee"
)

// Title implements tee.Launcher.
func (TEE) Title(string) string { return "TDX" }

// LaunchNames implements tee.Launcher.
func (TEE) LaunchNames() []string { return []string{"tdx"} }

// EmulatedDirectBoot implements tee.Launcher: TDVF (OVMF.inteltdx.fd)
// boots a kernel directly outside a TD too.
func (TEE) EmulatedDirectBoot(string) bool { return true }

// LaunchArgs implements tee.Launcher: the TDX hardware command line
// (QEMU's docs/system/i386/tdx.rst): the tdx-guest object, split irqchip,
// -bios, and the modelled memory size.
func (TEE) LaunchArgs(e *manifest.Measurement, l tee.Launch) ([]string, []string, error) {
	notes := []string{}
	if q := tee.Param(e.Params, "qemu_version"); q != "" {
		notes = append(notes, fmt.Sprintf("RTMR1 was modelled for QEMU %s (qemu_version); run it with that QEMU", q))
	}
	if po := tee.Param(e.Params, "page_order"); po != "" {
		notes = append(notes, fmt.Sprintf("MRTD was modelled with the %s page order (page_order) of the host's KVM", po))
	}
	return []string{"-accel", "kvm", "-machine", "q35,kernel-irqchip=split,confidential-guest-support=tdx0,memory-backend=ram1",
		"-object", "memory-backend-ram,id=ram1,size=" + l.Memory,
		"-object", "tdx-guest,id=tdx0",
		"-cpu", "host", "-smp", strconv.Itoa(l.VCPUs), "-m", l.Memory, "-bios", l.Firmware}, notes, nil
}
