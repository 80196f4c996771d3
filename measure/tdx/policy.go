package tdx

import "encoding/binary"

// DirectBootDigests returns the digests of the two direct-boot events that
// a verifier can match one by one in a TD's event log, as Trustee's default
// attestation policy does (tdvfkernel, tdvfkernelparams): the kernel image
// TDVF loads from QEMU's fw_cfg (EV_EFI_BOOT_SERVICES_APPLICATION, device
// path File(kernel), in RTMR1: its Authenticode SHA-384) and the LoadOptions
// the EFI stub measures (EV_EVENT_TAG "LOADED_IMAGE::LoadOptions" in RTMR2:
// the SHA-384 of the UTF-16LE command line with its NUL). Each is nil when
// the launch logs no such event (no direct boot, or no command line and no
// initrd; a UKI booted from the disk, whose images have device paths on
// the disk, not File(kernel)).
func (r *Result) DirectBootDigests() (kernel, loadOptions *Digest) {
	if r.KernelAuthenticodeSHA256 == nil {
		return nil, nil // no direct boot
	}
	for _, e := range r.Events {
		switch {
		case e.Type == EvEFIBootServicesApplication && e.RTMR == 1 && kernel == nil:
			d := e.Digest
			kernel = &d
		case e.Type == EvEventTag && e.RTMR == 2 && len(e.Data) >= 4 && binary.LittleEndian.Uint32(e.Data) == loadOptionsTagID:
			d := e.Digest
			loadOptions = &d
		}
	}
	return kernel, loadOptions
}
