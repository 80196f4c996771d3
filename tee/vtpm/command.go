package vtpm

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/cocobuild/cocobuild/internal/limits"
	model "github.com/cocobuild/cocobuild/measure/pcr"
	"github.com/cocobuild/cocobuild/tee"
)

// sectionFlag is a flag of `cocobuild measure pcr` that names the file of
// a UKI section, as systemd-measure names it.
type sectionFlag struct {
	flag, section, help string
	limit               limits.Limit
}

var sectionFlags = []sectionFlag{
	{"linux", ".linux", "kernel image (the UKI's .linux section; required)", limits.Kernel},
	{"osrel", ".osrel", "os-release file (.osrel)", limits.File},
	{"cmdline", ".cmdline", "file with the kernel command line (.cmdline)", limits.File},
	{"initrd", ".initrd", "initrd image (.initrd)", limits.Initrd},
	{"splash", ".splash", "splash bitmap (.splash)", limits.File},
	{"dtb", ".dtb", "devicetree (.dtb)", limits.File},
	{"uname", ".uname", "file with the kernel release, `uname -r` (.uname; measured by the stubs of systemd 254 and later)", limits.File},
	{"sbat", ".sbat", "SBAT data (.sbat; measured by the stubs of systemd 254 and later)", limits.File},
	{"pcrpkey", ".pcrpkey", "public key for PCR signatures, PEM (.pcrpkey)", limits.File},
}

// pcrFlags are the flags of `cocobuild measure pcr`.
type pcrFlags struct {
	files  map[string]*string
	phases []string
	banks  []string
	json   string
}

// Command implements tee.TEE: `cocobuild measure pcr`, flag- and
// output-compatible with `systemd-measure calculate`.
func (TEE) Command(cli *tee.CLI) *cobra.Command {
	f := pcrFlags{files: map[string]*string{}}
	c := &cobra.Command{
		Use:   "pcr [calculate] --linux FILE [--osrel FILE] [--cmdline FILE] [--initrd FILE] [flags]",
		Short: "Compute the TPM PCR 11 of a unified kernel image (systemd-measure calculate compatible)",
		Long: `Compute the value of TPM PCR 11 that a guest booting a unified kernel image (UKI) reaches,
without booting it: systemd-stub extends PCR 11 with each UKI section (the digest of its
name, then of its contents, in the order .linux .osrel .cmdline .initrd .splash .dtb .uname
.sbat .pcrpkey, empty sections skipped), then systemd-pcrphase with each word of the boot
phase. This is what Trustee's policy compares as tpm_pcr11 (plain TPM), snp_pcr11
(az-snp-vtpm) and tdx_pcr11 (az-tdx-vtpm).

Flags and output are those of systemd-measure calculate (systemd 252, Debian 12), so the
command can replace it in scripts: a line "11:BANK=HEX" per bank and phase, each phase
announced on stderr; --json=short or --json=pretty (--json alone: short) prints systemd's
JSON, --json=off the text. --phase is repeatable (default: the four phases up to
enter-initrd:leave-initrd:sysinit:ready), phases are sorted and an empty phase is the value
the stub leaves; --bank is repeatable (sha1, sha256, sha384, sha512, any case, OpenSSL's
aliases such as SHA2-256 too; default all four). Unlike systemd-measure, a flag that names one
file is given once, and banks that are no TPM PCR bank (md5, sm3) are refused. The status and
sign verbs need a TPM or a private key: use systemd-measure for them.

Input files must be regular files within the limits in force (--limit, e.g. kernel 512MiB,
initrd 2GiB); /dev/null reads as an empty file, which is not measured.`,
		Example: `  cocobuild measure pcr --linux vmlinuz --osrel os-release --cmdline cmdline.txt --initrd initrd.img
  cocobuild measure pcr calculate --linux vmlinuz --initrd initrd.img --bank sha256 --phase enter-initrd --json=pretty
  cocobuild measure pcr --linux vmlinuz --cmdline cmdline.txt --phase '' --bank sha256   # PCR 11 as the stub leaves it`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 0 || (len(args) == 1 && args[0] == "calculate"):
				return nil
			case args[0] == "status" || args[0] == "sign":
				return cli.Usage(fmt.Errorf("measure pcr %s needs a TPM or a private key: use systemd-measure %s; measure pcr computes what calculate does", args[0], args[0]))
			}
			return cli.Usage(fmt.Errorf("unexpected arguments %q: the one verb measure pcr takes is calculate (and it is the default)", args))
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMeasurePCR(cli, cmd, &f)
		},
	}
	fl := c.Flags()
	for _, s := range sectionFlags {
		f.files[s.flag] = fl.String(s.flag, "", s.help)
	}
	fl.StringArrayVar(&f.phases, "phase", nil, "boot phase to compute PCR 11 for, words joined by ':' (repeatable; '' for none)")
	fl.StringArrayVar(&f.banks, "bank", nil, "PCR bank: sha1, sha256, sha384 or sha512 (repeatable; default all)")
	// --json takes systemd-measure's modes; it shadows the global --json
	// switch for this command.
	fl.StringVarP(&f.json, "json", "j", "off", "output JSON: short or pretty (as systemd-measure prints them), or off")
	fl.Lookup("json").NoOptDefVal = "short"
	return c
}

func runMeasurePCR(cli *tee.CLI, cmd *cobra.Command, f *pcrFlags) (err error) {
	mode := f.json
	switch mode {
	case "off", "short", "pretty":
	default:
		return cli.Usage(fmt.Errorf("--json=%s: want short, pretty or off", mode))
	}
	// Failures in JSON mode print a result too, as every command does
	// with --json.
	code := 0
	usage := func(err error) error { code = 2; return cli.Usage(err) }
	failure := func(err error) error { code = 1; return cli.Failure(err) }
	defer func() {
		if err != nil && mode != "off" && code != 0 {
			_ = cli.PrintJSON(map[string]any{"ok": false, "error": errors.Unwrap(err).Error(), "exit_code": code})
		}
	}()

	if *f.files["linux"] == "" {
		return usage(errors.New("--linux is required: the kernel image of the UKI (systemd-measure's --current, which reads the running system's PCRs, is not modelled)"))
	}
	var sections []model.Section
	for _, s := range sectionFlags {
		path := *f.files[s.flag]
		if !cmd.Flags().Changed(s.flag) {
			continue
		}
		if path == "" {
			return usage(fmt.Errorf("--%s: empty path", s.flag))
		}
		b, err := tee.ReadInput(cli.Limits, s.flag, path, s.limit)
		if err != nil {
			return usage(err)
		}
		sections = append(sections, model.Section{Name: s.section, Data: b})
	}
	var banks []model.Bank
	for _, n := range f.banks {
		b, err := model.ParseBank(n)
		if err != nil {
			return usage(tee.Escaped(fmt.Errorf("--bank: %w", err)))
		}
		banks = append(banks, b)
	}
	for _, p := range f.phases {
		if !utf8.ValidString(p) {
			return usage(tee.Escaped(fmt.Errorf("--phase %q: not UTF-8", p)))
		}
	}
	phases := f.phases
	if !cmd.Flags().Changed("phase") {
		phases = nil
	}
	vals, err := model.Calculate(sections, banks, phases)
	if err != nil {
		return failure(err)
	}
	if mode == "off" {
		last := "\x00"
		for _, v := range vals {
			if v.Phase != last {
				// systemd-measure announces every phase on stderr, the
				// empty one as ":".
				p := v.Phase
				if p == "" {
					p = ":"
				}
				fmt.Fprintf(cli.Stderr, "# PCR[%d] Phase <%s>\n", v.PCR, p)
				last = v.Phase
			}
			fmt.Fprintf(cli.Stdout, "%d:%s=%s\n", v.PCR, v.Bank, hex.EncodeToString(v.Value))
		}
		return nil
	}
	_, err = cli.Stdout.Write(systemdJSON(vals, mode == "pretty"))
	return err
}

// systemdJSON renders values as systemd-measure's --json does: an object
// of banks (sorted), each an array of {"phase", "pcr", "hash"} in phase
// order, "phase" left out when empty; short is compact, pretty indents
// with tabs and writes " : " between key and value, as systemd's JSON
// formatter does. Both end with a newline.
func systemdJSON(vals []model.Value, pretty bool) []byte {
	var banks []string
	byBank := map[string][]model.Value{}
	for _, v := range vals {
		if _, ok := byBank[v.Bank]; !ok {
			banks = append(banks, v.Bank)
		}
		byBank[v.Bank] = append(byBank[v.Bank], v)
	}
	var b bytes.Buffer
	nl := func(depth int) {
		if pretty {
			b.WriteByte('\n')
			b.WriteString(strings.Repeat("\t", depth))
		}
	}
	key := func(k string) {
		b.WriteString(jsonString(k))
		if pretty {
			b.WriteString(" : ")
		} else {
			b.WriteByte(':')
		}
	}
	b.WriteByte('{')
	for i, bank := range banks {
		if i > 0 {
			b.WriteByte(',')
		}
		nl(1)
		key(bank)
		b.WriteByte('[')
		for j, v := range byBank[bank] {
			if j > 0 {
				b.WriteByte(',')
			}
			nl(2)
			b.WriteByte('{')
			var fields [][2]string
			if v.Phase != "" {
				fields = append(fields, [2]string{"phase", jsonString(v.Phase)})
			}
			fields = append(fields, [2]string{"pcr", strconv.Itoa(v.PCR)}, [2]string{"hash", jsonString(hex.EncodeToString(v.Value))})
			for k, fv := range fields {
				if k > 0 {
					b.WriteByte(',')
				}
				nl(3)
				key(fv[0])
				b.WriteString(fv[1])
			}
			nl(2)
			b.WriteByte('}')
		}
		nl(1)
		b.WriteByte(']')
	}
	nl(0)
	b.WriteString("}\n")
	return b.Bytes()
}

// jsonString quotes s as systemd's JSON formatter does: '"' and '\\'
// escaped, the control characters as \b \f \n \r \t or \u00XX, everything
// else (UTF-8 included) as it is.
func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 {
				fmt.Fprintf(&b, `\u%04x`, c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
