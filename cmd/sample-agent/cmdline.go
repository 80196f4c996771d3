package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Cmdline is a parsed kernel command line.
type Cmdline struct {
	Raw    string
	Args   []string          // arguments in order, quotes removed
	Params map[string]string // key=value arguments; the last one wins
}

// ParseCmdline splits a kernel command line as the kernel does: arguments
// are separated by white space except inside double quotes, which are
// removed (`dm-mod.create="a b"` is the argument `dm-mod.create=a b`).
func ParseCmdline(s string) Cmdline {
	c := Cmdline{Raw: strings.TrimSpace(s), Params: map[string]string{}}
	var cur strings.Builder
	inQuote, have := false, false
	flush := func() {
		if have {
			a := cur.String()
			c.Args = append(c.Args, a)
			if k, v, ok := strings.Cut(a, "="); ok {
				c.Params[k] = v
			} else {
				c.Params[a] = ""
			}
		}
		cur.Reset()
		have = false
	}
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
			have = true
		case !inQuote && (r == ' ' || r == '\t' || r == '\n'):
			flush()
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	flush()
	return c
}

// Verity describes the dm-verity mapping of the root file system.
type Verity struct {
	Name          string // device-mapper name
	DataDevice    string // e.g. /dev/vda1
	HashDevice    string // e.g. /dev/vda2
	DataBlockSize uint32
	HashBlockSize uint32
	DataBlocks    uint64
	// HashStart is the first block of the hash tree on HashDevice, in
	// hash blocks (after the superblock, when there is one).
	HashStart uint64
	Algorithm string
	RootHash  string // hex
	Salt      string // hex; "-" for none
	Options   []string
	// Superblock says HashDevice holds a verity superblock at
	// SuperblockOffset from which the sizes, salt and algorithm are read
	// (the systemd form without explicit sizes).
	Superblock       bool
	SuperblockOffset uint64
}

// Sectors is the length of the mapping in 512-byte sectors.
func (v *Verity) Sectors() uint64 { return v.DataBlocks * uint64(v.DataBlockSize) / 512 }

// Table is the device-mapper table line of the verity target (after
// "start length verity").
func (v *Verity) Table() string {
	t := fmt.Sprintf("1 %s %s %d %d %d %d %s %s %s", v.DataDevice, v.HashDevice, v.DataBlockSize, v.HashBlockSize,
		v.DataBlocks, v.HashStart, v.Algorithm, v.RootHash, v.Salt)
	if len(v.Options) > 0 {
		t += fmt.Sprintf(" %d %s", len(v.Options), strings.Join(v.Options, " "))
	}
	return t
}

// MatchesTable says whether a verity table the kernel reports for an
// existing device (DM_TABLE_STATUS: "1 MAJ:MIN MAJ:MIN DBS HBS BLOCKS
// HASHSTART ALG ROOTHASH SALT [N OPT…]", devices as numbers) is the one v
// describes: the same version, block sizes, length, hash start, algorithm,
// root hash and salt. The devices are not compared (the kernel names them
// by number); a device set up by the kernel from dm-mod.create= with a
// different root hash is rejected.
func (v *Verity) MatchesTable(table string) error {
	got := strings.Fields(table)
	want := strings.Fields(v.Table())
	if len(got) < 10 {
		return fmt.Errorf("existing device %q: table %q is not a verity table", v.Name, table)
	}
	names := []string{"version", "data device", "hash device", "data block size", "hash block size", "data blocks", "hash start", "algorithm", "root hash", "salt"}
	for i, name := range names {
		if i == 1 || i == 2 {
			continue
		}
		if !strings.EqualFold(got[i], want[i]) {
			return fmt.Errorf("existing device %q: %s is %s, the command line says %s", v.Name, name, got[i], want[i])
		}
	}
	return nil
}

// ErrNoVerity says the command line names no verity root.
var ErrNoVerity = errors.New("no verity root on the kernel command line")

// VerityFromCmdline finds the verity root on the command line, in either
// form:
//
// Kata's device-mapper form (the kernel's CONFIG_DM_INIT syntax, one
// device with one verity target):
//
//	dm-mod.create="root,,,ro,0 SECTORS verity 1 DATA HASH DBS HBS BLOCKS HASHSTART ALG ROOTHASH SALT [N OPT…]"
//
// systemd's form:
//
//	roothash=HEX systemd.verity_root_data=DATA systemd.verity_root_hash=HASH
//	[systemd.verity_root_options=salt=HEX,hash-offset=BYTES,data-blocks=N,data-block-size=N,hash-block-size=N,hash=ALG,superblock=false]
//
// In the systemd form the hash device holds a verity superblock at
// hash-offset (default 0) unless superblock=false; its sizes, salt and
// algorithm are then read at boot.
func VerityFromCmdline(c Cmdline) (*Verity, error) {
	if v, ok := c.Params["dm-mod.create"]; ok {
		return parseDMModCreate(v)
	}
	if rh, ok := c.Params["roothash"]; ok {
		return parseSystemd(rh, c.Params)
	}
	return nil, ErrNoVerity
}

func parseDMModCreate(s string) (*Verity, error) {
	if strings.Contains(s, ";") {
		return nil, errors.New("dm-mod.create: only one device is supported")
	}
	f := strings.SplitN(s, ",", 5)
	if len(f) != 5 {
		return nil, fmt.Errorf("dm-mod.create=%q: want name,uuid,minor,flags,table", s)
	}
	name, flags, table := f[0], f[3], f[4]
	if name == "" {
		return nil, errors.New("dm-mod.create: empty device name")
	}
	if flags != "ro" {
		return nil, fmt.Errorf("dm-mod.create: flags %q, want ro for a verity root", flags)
	}
	if strings.Contains(table, ",") {
		return nil, errors.New("dm-mod.create: only one target is supported")
	}
	t := strings.Fields(table)
	if len(t) < 13 {
		return nil, fmt.Errorf("dm-mod.create: table %q has %d fields, want at least 13 (start length verity version data hash dbs hbs blocks hashstart alg roothash salt)", table, len(t))
	}
	if t[0] != "0" || t[2] != "verity" || t[3] != "1" {
		return nil, fmt.Errorf("dm-mod.create: table %q: want \"0 LENGTH verity 1 …\"", table)
	}
	v := &Verity{Name: name, DataDevice: t[4], HashDevice: t[5], Algorithm: t[10], RootHash: t[11], Salt: t[12]}
	var err error
	num := func(s, what string, bits int) uint64 {
		if err != nil {
			return 0
		}
		n, e := strconv.ParseUint(s, 10, bits)
		if e != nil {
			err = fmt.Errorf("dm-mod.create: %s %q is not a number", what, s)
		}
		return n
	}
	length := num(t[1], "length", 64)
	v.DataBlockSize = uint32(num(t[6], "data block size", 32))
	v.HashBlockSize = uint32(num(t[7], "hash block size", 32))
	v.DataBlocks = num(t[8], "data blocks", 64)
	v.HashStart = num(t[9], "hash start", 64)
	if err != nil {
		return nil, err
	}
	if len(t) > 13 {
		n := num(t[13], "optional argument count", 16)
		if err != nil {
			return nil, err
		}
		if uint64(len(t)-14) != n {
			return nil, fmt.Errorf("dm-mod.create: %d optional arguments announced, %d given", n, len(t)-14)
		}
		v.Options = t[14:]
	}
	if err := v.check(); err != nil {
		return nil, fmt.Errorf("dm-mod.create: %w", err)
	}
	if length != v.Sectors() {
		return nil, fmt.Errorf("dm-mod.create: length %d sectors, but %d blocks of %d bytes are %d sectors", length, v.DataBlocks, v.DataBlockSize, v.Sectors())
	}
	return v, nil
}

func parseSystemd(roothash string, p map[string]string) (*Verity, error) {
	v := &Verity{Name: "root", RootHash: roothash, Salt: "-", Algorithm: "sha256",
		DataDevice: p["systemd.verity_root_data"], HashDevice: p["systemd.verity_root_hash"], Superblock: true,
		DataBlockSize: 4096, HashBlockSize: 4096}
	if v.DataDevice == "" || v.HashDevice == "" {
		return nil, errors.New("roothash= needs systemd.verity_root_data= and systemd.verity_root_hash= (the data and hash devices)")
	}
	var hashOffset uint64
	if opts, ok := p["systemd.verity_root_options"]; ok && opts != "" {
		for _, o := range strings.Split(opts, ",") {
			k, val, _ := strings.Cut(o, "=")
			var err error
			var n uint64
			switch k {
			case "hash-offset", "data-blocks", "data-block-size", "hash-block-size":
				n, err = strconv.ParseUint(val, 10, 64)
			}
			if err != nil {
				return nil, fmt.Errorf("systemd.verity_root_options: %s=%q is not a number", k, val)
			}
			switch k {
			case "salt":
				v.Salt = val
			case "hash":
				v.Algorithm = val
			case "hash-offset":
				hashOffset = n
			case "data-blocks":
				v.DataBlocks = n
			case "data-block-size":
				v.DataBlockSize = uint32(n)
			case "hash-block-size":
				v.HashBlockSize = uint32(n)
			case "superblock":
				v.Superblock = val != "false" && val != "0" && val != "no"
			case "panic-on-corruption":
				v.Options = append(v.Options, "panic_on_corruption")
			case "restart-on-corruption":
				v.Options = append(v.Options, "restart_on_corruption")
			case "ignore-zero-blocks":
				v.Options = append(v.Options, "ignore_zero_blocks")
			default:
				return nil, fmt.Errorf("systemd.verity_root_options: unsupported option %q", o)
			}
		}
	}
	if v.Superblock {
		// Sizes come from the superblock at boot; the tree follows it.
		v.SuperblockOffset = hashOffset
		return v, nil
	}
	if v.DataBlocks == 0 {
		return nil, errors.New("systemd.verity_root_options: superblock=false needs data-blocks=")
	}
	if v.HashBlockSize == 0 || hashOffset%uint64(v.HashBlockSize) != 0 {
		return nil, fmt.Errorf("systemd.verity_root_options: hash-offset %d is not a multiple of the hash block size %d", hashOffset, v.HashBlockSize)
	}
	v.HashStart = hashOffset / uint64(v.HashBlockSize)
	if err := v.check(); err != nil {
		return nil, err
	}
	return v, nil
}

// check validates what the kernel would otherwise reject with EINVAL.
func (v *Verity) check() error {
	for _, bs := range []uint32{v.DataBlockSize, v.HashBlockSize} {
		if bs < 512 || bs > 1<<20 || bs&(bs-1) != 0 {
			return fmt.Errorf("block size %d is not a power of two between 512 and 1 MiB", bs)
		}
	}
	if v.DataBlocks == 0 {
		return errors.New("zero data blocks")
	}
	if v.DataBlocks > (1<<63)/uint64(v.DataBlockSize) {
		return fmt.Errorf("%d data blocks of %d bytes overflow", v.DataBlocks, v.DataBlockSize)
	}
	if _, err := hex.DecodeString(v.RootHash); err != nil || v.RootHash == "" {
		return fmt.Errorf("root hash %q is not hexadecimal", v.RootHash)
	}
	if v.Salt != "-" {
		if _, err := hex.DecodeString(v.Salt); err != nil {
			return fmt.Errorf("salt %q is not hexadecimal (or - for none)", v.Salt)
		}
	}
	if v.Algorithm == "" || strings.ContainsAny(v.Algorithm, " \t") {
		return fmt.Errorf("invalid hash algorithm %q", v.Algorithm)
	}
	return nil
}
