package rootfs

import (
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/internal/debroot"
	"github.com/cocobuild/cocobuild/internal/units"
	"github.com/cocobuild/cocobuild/recipes"
	"github.com/cocobuild/cocobuild/recipes/entries"
	"github.com/cocobuild/cocobuild/rootfs/verity"
)

// Kind implements the `rootfs "NAME" { … }` block; see docs/recipes.md.
type Kind struct {
	// Debian pins and fetches the packages of packages blocks (the input
	// kind's, connected by internal/registry); nil decodes to validate.
	Debian debroot.Archive
}

// Type implements recipes.Kind.
func (Kind) Type() string { return "rootfs" }

var (
	fromSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "dir"}, {Name: "tar"}, {Name: "oci_layout"}, {Name: "image"},
		{Name: "ref"}, {Name: "platform"}, {Name: "at"},
	}}
	overrideSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "uid"}, {Name: "gid"}, {Name: "mode"}, {Name: "file_mode"}, {Name: "dir_mode"},
	}}
	veritySchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "salt"}, {Name: "hash_algorithm"}, {Name: "data_block_size"}, {Name: "hash_block_size"},
		{Name: "layout"}, {Name: "superblock"}, {Name: "data_device"}, {Name: "hash_device"},
	}}
)

// Schema implements recipes.Kind.
func (Kind) Schema() *hcl.BodySchema {
	return &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "filesystem"}, {Name: "compression"}, {Name: "size"}, {Name: "label"},
			{Name: "architecture"}, {Name: "exclude"}, {Name: "description"},
		},
		Blocks: append([]hcl.BlockHeaderSchema{
			{Type: "from"},
			{Type: "override", LabelNames: []string{"pattern"}},
			{Type: "verity"},
			{Type: "packages"},
		}, entries.Blocks()...),
	}
}

// verityType is what `rootfs.NAME.verity` evaluates to.
var verityType = cty.Object(map[string]cty.Type{
	"artifact":         recipes.ArtifactType, // the hash device's content
	"root_hash":        cty.String,
	"salt":             cty.String,
	"hash_algorithm":   cty.String,
	"data_blocks":      cty.Number,
	"data_block_size":  cty.Number,
	"hash_block_size":  cty.Number,
	"hash_offset":      cty.Number,
	"hash_start_block": cty.Number,
	"superblock":       cty.Bool,
	"layout":           cty.String,
	"uuid":             cty.String,
	"data_device":      cty.String,
	"hash_device":      cty.String,
	"table":            cty.String,
	"cmdline":          cty.List(cty.String),
	"systemd_cmdline":  cty.List(cty.String),
	"partition_type":   cty.String,
	"partition_uuid":   cty.String,
})

// OutputType implements recipes.Kind.
func (Kind) OutputType() cty.Type {
	return cty.Object(map[string]cty.Type{
		"artifact":       recipes.ArtifactType, // the data device's content: the image (with the tree when appended)
		"image":          recipes.ArtifactType, // the same
		"tar":            recipes.ArtifactType, // the tree as a reproducible tar
		"filesystem":     cty.String,
		"uuid":           cty.String,
		"size":           cty.Number,
		"partition_type": cty.String,
		"partition_uuid": cty.String,
		"verity":         verityType, // null without a verity block
	})
}

// Partition type GUIDs of the Discoverable Partitions Specification.
var partitionTypes = map[string][2]string{ // architecture → root, root verity
	"x86-64": {"4f68bce3-e8cd-4db1-96e7-fbcaf984b709", "2c7357ed-ebd2-46d9-aec1-23d437ec2bf5"},
	"arm64":  {"b921b045-1df0-41c3-af44-4c6f280d3fae", "df3300ce-d69f-4c92-978c-9bfb0f38d820"},
}

// source is one `from` block, in the step's parameters.
type source struct {
	Dir       string `json:"dir,omitempty"`        // as written, relative to the recipe
	Tar       int    `json:"tar"`                  // index into Inputs, -1 if not a tar
	OCILayout string `json:"oci_layout,omitempty"` // as written
	Image     string `json:"image,omitempty"`      // registry reference pinned by digest
	Ref       string `json:"ref,omitempty"`
	Platform  string `json:"platform,omitempty"`
	At        string `json:"at,omitempty"`
	abs       string // Dir or OCILayout made absolute
	rng       hcl.Range
}

// item is a file, dir, symlink or device block.
type item struct {
	Path    string `json:"path"`
	Type    string `json:"type"`
	Content string `json:"content,omitempty"`
	Input   int    `json:"input"` // index into Inputs for a file's source, else -1
	Mode    uint32 `json:"mode"`
	UID     int    `json:"uid"`
	GID     int    `json:"gid"`
	Target  string `json:"target,omitempty"`
	Major   uint32 `json:"major,omitempty"`
	Minor   uint32 `json:"minor,omitempty"`
}

type override struct {
	Pattern  string  `json:"pattern"`
	UID      *int    `json:"uid,omitempty"`
	GID      *int    `json:"gid,omitempty"`
	Mode     *uint32 `json:"mode,omitempty"`
	FileMode *uint32 `json:"file_mode,omitempty"`
	DirMode  *uint32 `json:"dir_mode,omitempty"`
	rng      hcl.Range
}

// treeSpec is the tree step's parameters.
type treeSpec struct {
	Packages  *packagesSpec `json:"packages,omitempty"`
	Sources   []source      `json:"sources"`
	Items     []item        `json:"items,omitempty"`
	Exclude   []string      `json:"exclude,omitempty"`
	Overrides []override    `json:"overrides,omitempty"`
}

// imageSpec is the image step's parameters.
type imageSpec struct {
	Filesystem  string `json:"filesystem"`
	Compression string `json:"compression,omitempty"`
	Size        int64  `json:"size,omitempty"`
	Label       string `json:"label,omitempty"`
}

// veritySpec is the verity step's parameters.
type veritySpec struct {
	Salt          string `json:"salt"` // hex; "derived" for the content-derived salt
	Algorithm     string `json:"hash_algorithm"`
	DataBlockSize uint32 `json:"data_block_size"`
	HashBlockSize uint32 `json:"hash_block_size"`
	Layout        string `json:"layout"`
	Superblock    bool   `json:"superblock"`
	dataDevice    string // default PARTUUID=…; not in the key (only in the cmdline)
	hashDevice    string
}

type node struct {
	probed map[int]string // source index → digest seen by the probe
	name   string
	dir    string // the recipe's directory
	arch   string
	tree   treeSpec
	image  imageSpec
	verity *veritySpec
	inputs []recipes.Artifact
	// archive pins and fetches Debian packages; resolved is the set an
	// unpinned packages block resolved to in the probe.
	archive  debroot.Archive
	resolved *debroot.Set
}

// decoder collects diagnostics while reading attributes.
type decoder struct {
	ctx   *hcl.EvalContext
	diags hcl.Diagnostics
}

func (d *decoder) str(attrs hcl.Attributes, name string, dst *string) bool {
	a, ok := attrs[name]
	if !ok {
		return false
	}
	d.diags = append(d.diags, recipes.DecodeExpr(a.Expr, d.ctx, cty.String, dst)...)
	return true
}

func (d *decoder) num(attrs hcl.Attributes, name string, dst *int64) bool {
	a, ok := attrs[name]
	if !ok {
		return false
	}
	d.diags = append(d.diags, recipes.DecodeExpr(a.Expr, d.ctx, cty.Number, dst)...)
	return true
}

func (d *decoder) id(attrs hcl.Attributes, name string, dst *int) bool {
	ok, diags := entries.DecodeID(attrs, name, d.ctx, dst)
	d.diags = append(d.diags, diags...)
	return ok
}

func (d *decoder) mode(attrs hcl.Attributes, name string, dst *uint32) bool {
	ok, diags := entries.DecodeMode(attrs, name, d.ctx, dst)
	d.diags = append(d.diags, diags...)
	return ok
}

// Decode implements recipes.Kind.
func (k Kind) Decode(b *recipes.Block, ctx *hcl.EvalContext) (recipes.Node, hcl.Diagnostics) {
	content, diags := b.Body.Content(k.Schema())
	if diags.HasErrors() {
		return nil, diags
	}
	d := &decoder{ctx: ctx, diags: diags}
	n := &node{name: b.Name, dir: filepath.Dir(b.DefRange.Filename), arch: "x86-64", image: imageSpec{Filesystem: EROFS}, archive: k.Debian}
	attrs := content.Attributes
	if d.str(attrs, "filesystem", &n.image.Filesystem) && !isOneOf(n.image.Filesystem, FileSystems) {
		d.diags = append(d.diags, recipes.Diag("Invalid filesystem", fmt.Sprintf("filesystem %q is not one of %s.", n.image.Filesystem, strings.Join(FileSystems, ", ")), attrs["filesystem"].Expr.Range()))
	}
	if d.str(attrs, "compression", &n.image.Compression) {
		if err := checkCompression(n.image.Filesystem, n.image.Compression); err != nil {
			d.diags = append(d.diags, recipes.Diag("Invalid compression", err.Error(), attrs["compression"].Expr.Range()))
		}
	}
	var size string
	if d.str(attrs, "size", &size) && size != "" {
		sz, err := units.ParseSize(size)
		switch {
		case err != nil:
			d.diags = append(d.diags, recipes.Diag("Invalid size", err.Error(), attrs["size"].Expr.Range()))
		case n.image.Filesystem != Ext4:
			d.diags = append(d.diags, recipes.Diag("Unexpected size", "size sets the size of an ext4 image; erofs and squashfs images are as large as their content.", attrs["size"].Expr.Range()))
		case sz%4096 != 0 || sz < units.MiB:
			d.diags = append(d.diags, recipes.Diag("Invalid size", fmt.Sprintf("size %s is not a multiple of 4KiB of at least 1MiB.", size), attrs["size"].Expr.Range()))
		}
		n.image.Size = sz
	}
	d.str(attrs, "label", &n.image.Label)
	if len(n.image.Label) > 16 {
		d.diags = append(d.diags, recipes.Diag("Invalid label", "an ext4 label has at most 16 bytes.", attrs["label"].Expr.Range()))
	}
	if d.str(attrs, "architecture", &n.arch) {
		if _, ok := partitionTypes[n.arch]; !ok && n.arch != "" {
			d.diags = append(d.diags, recipes.Diag("Invalid architecture", fmt.Sprintf("architecture %q is not x86-64 or arm64 (it chooses the partition types).", n.arch), attrs["architecture"].Expr.Range()))
		}
	}
	if a, ok := attrs["exclude"]; ok {
		var ex []string
		d.diags = append(d.diags, recipes.DecodeExpr(a.Expr, ctx, cty.List(cty.String), &ex)...)
		for _, e := range ex {
			if _, err := ParsePattern(e); err != nil {
				d.diags = append(d.diags, recipes.Diag("Invalid exclude pattern", err.Error(), a.Expr.Range()))
			}
		}
		n.tree.Exclude = ex
	}
	d.str(attrs, "description", new(string))

	var verityBlocks []*hcl.Block
	var items entries.List
	for _, blk := range content.Blocks {
		switch blk.Type {
		case "from":
			n.decodeFrom(d, blk)
		case "file", "dir", "symlink", "device":
			had := len(items.Entries)
			d.diags = append(d.diags, items.Decode(blk, ctx)...)
			if len(items.Entries) > had {
				n.addItem(items.Entries[had])
			}
		case "override":
			n.decodeOverride(d, blk)
		case "verity":
			verityBlocks = append(verityBlocks, blk)
		case "packages":
			n.decodePackages(d, blk)
		}
	}
	n.pinPackages(d)
	if len(n.tree.Sources) == 0 && len(n.tree.Items) == 0 && n.tree.Packages == nil {
		d.diags = append(d.diags, recipes.Diag("Empty rootfs", "Give the content: packages { suite = \"…\" }, from { dir = \"…\" } (or tar, oci_layout, image), or file/dir/symlink blocks.", b.DefRange))
	}
	for i, vb := range verityBlocks {
		if i > 0 {
			d.diags = append(d.diags, recipes.Diag("Duplicate verity block", "A rootfs has at most one verity block.", vb.DefRange))
			continue
		}
		n.decodeVerity(d, vb)
	}
	if d.diags.HasErrors() {
		return nil, d.diags
	}
	return n, d.diags
}

func isOneOf(s string, list []string) bool {
	for _, l := range list {
		if s == l {
			return true
		}
	}
	return false
}

func checkCompression(fs, c string) error {
	switch fs {
	case EROFS:
		if c == "" || c == "lz4" || c == "lz4hc" || strings.HasPrefix(c, "lz4hc,") {
			if lv, ok := strings.CutPrefix(c, "lz4hc,"); ok {
				if n, err := strconv.Atoi(lv); err != nil || n < 0 || n > 12 {
					return fmt.Errorf("erofs compression %q: the lz4hc level is 0 to 12", c)
				}
			}
			return nil
		}
		return fmt.Errorf("erofs compression %q is not lz4, lz4hc or lz4hc,LEVEL (erofs-utils 1.5 has no other)", c)
	case SquashFS:
		if isOneOf(c, []string{"", "gzip", "xz", "zstd", "lz4", "lzo"}) {
			return nil
		}
		return fmt.Errorf("squashfs compression %q is not gzip, xz, zstd, lz4 or lzo", c)
	case Ext4:
		if c == "" {
			return nil
		}
		return fmt.Errorf("ext4 has no compression")
	}
	return nil
}

// addItem turns a decoded entry block into an item of the tree step.
func (n *node) addItem(e entries.Entry) {
	it := item{Path: e.Path, Type: e.Type, Content: e.Content, Input: -1, Mode: e.Mode, UID: e.UID, GID: e.GID,
		Target: e.Target, Major: e.Major, Minor: e.Minor}
	if e.Source != nil {
		it.Input = len(n.inputs)
		n.inputs = append(n.inputs, *e.Source)
	}
	n.tree.Items = append(n.tree.Items, it)
}

func (n *node) decodeOverride(d *decoder, blk *hcl.Block) {
	c, diags := blk.Body.Content(overrideSchema)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return
	}
	o := override{Pattern: blk.Labels[0], rng: blk.DefRange}
	if _, err := ParsePattern(o.Pattern); err != nil {
		d.diags = append(d.diags, recipes.Diag("Invalid override pattern", err.Error(), blk.LabelRanges[0]))
	}
	if len(c.Attributes) == 0 {
		d.diags = append(d.diags, recipes.Diag("Empty override", "Give uid, gid, mode, file_mode or dir_mode.", blk.DefRange))
	}
	var uid, gid int
	var mode, fmode, dmode uint32
	if d.id(c.Attributes, "uid", &uid) {
		o.UID = &uid
	}
	if d.id(c.Attributes, "gid", &gid) {
		o.GID = &gid
	}
	if d.mode(c.Attributes, "mode", &mode) {
		o.Mode = &mode
	}
	if d.mode(c.Attributes, "file_mode", &fmode) {
		o.FileMode = &fmode
	}
	if d.mode(c.Attributes, "dir_mode", &dmode) {
		o.DirMode = &dmode
	}
	n.tree.Overrides = append(n.tree.Overrides, o)
}

func (n *node) decodeVerity(d *decoder, blk *hcl.Block) {
	c, diags := blk.Body.Content(veritySchema)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return
	}
	v := &veritySpec{Salt: "derived", Algorithm: verity.DefaultAlgorithm, DataBlockSize: verity.DefaultBlockSize,
		HashBlockSize: verity.DefaultBlockSize, Layout: verity.LayoutSeparate, Superblock: true}
	at := c.Attributes
	if d.str(at, "salt", &v.Salt) {
		if _, err := hex.DecodeString(v.Salt); err != nil || len(v.Salt) > 512 {
			d.diags = append(d.diags, recipes.Diag("Invalid salt", "salt is up to 256 bytes in hexadecimal (\"\" for none); leave it out for a salt derived from the content.", at["salt"].Expr.Range()))
		}
	}
	d.str(at, "hash_algorithm", &v.Algorithm)
	var dbs, hbs int64 = verity.DefaultBlockSize, verity.DefaultBlockSize
	d.num(at, "data_block_size", &dbs)
	d.num(at, "hash_block_size", &hbs)
	if dbs < 0 || dbs > 1<<20 || hbs < 0 || hbs > 1<<20 {
		d.diags = append(d.diags, recipes.Diag("Invalid block size", "verity block sizes are powers of two from 512 to 4096 (data) or 524288 (hash).", blk.DefRange))
		return
	}
	v.DataBlockSize, v.HashBlockSize = uint32(dbs), uint32(hbs)
	if err := (verity.Params{Algorithm: v.Algorithm, DataBlockSize: v.DataBlockSize, HashBlockSize: v.HashBlockSize}).Check(); err != nil {
		d.diags = append(d.diags, recipes.Diag("Invalid verity parameters", err.Error(), blk.DefRange))
	}
	if d.str(at, "layout", &v.Layout) && v.Layout != verity.LayoutSeparate && v.Layout != verity.LayoutAppended {
		d.diags = append(d.diags, recipes.Diag("Invalid layout", fmt.Sprintf("layout %q is not \"separate\" (the tree in its own artifact) or \"appended\" (after the image).", v.Layout), at["layout"].Expr.Range()))
	}
	if a, ok := at["superblock"]; ok {
		d.diags = append(d.diags, recipes.DecodeExpr(a.Expr, d.ctx, cty.Bool, &v.Superblock)...)
	}
	d.str(at, "data_device", &v.dataDevice)
	d.str(at, "hash_device", &v.hashDevice)
	n.verity = v
}
