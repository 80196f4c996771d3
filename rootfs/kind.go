package rootfs

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/gocty"

	"github.com/cocobuild/cocobuild/disk/units"
	"github.com/cocobuild/cocobuild/recipes"
	"github.com/cocobuild/cocobuild/rootfs/verity"
)

// Kind implements the `rootfs "NAME" { … }` block; see docs/recipes.md.
type Kind struct{}

// Type implements recipes.Kind.
func (Kind) Type() string { return "rootfs" }

var (
	fromSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "dir"}, {Name: "tar"}, {Name: "oci_layout"}, {Name: "image"},
		{Name: "ref"}, {Name: "platform"}, {Name: "at"},
	}}
	fileSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "content"}, {Name: "source"}, {Name: "mode"}, {Name: "uid"}, {Name: "gid"},
	}}
	dirSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "mode"}, {Name: "uid"}, {Name: "gid"},
	}}
	symlinkSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "target", Required: true}, {Name: "uid"}, {Name: "gid"},
	}}
	deviceSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "type", Required: true}, {Name: "major", Required: true}, {Name: "minor", Required: true},
		{Name: "mode"}, {Name: "uid"}, {Name: "gid"},
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
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "from"},
			{Type: "file", LabelNames: []string{"path"}},
			{Type: "dir", LabelNames: []string{"path"}},
			{Type: "symlink", LabelNames: []string{"path"}},
			{Type: "device", LabelNames: []string{"path"}},
			{Type: "override", LabelNames: []string{"pattern"}},
			{Type: "verity"},
		},
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
	Sources   []source   `json:"sources"`
	Items     []item     `json:"items,omitempty"`
	Exclude   []string   `json:"exclude,omitempty"`
	Overrides []override `json:"overrides,omitempty"`
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
}

func diag(summary, detail string, r hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: r.Ptr()}
}

// parseMode reads a mode written as an octal string ("0644", "4755").
func parseMode(s string) (uint32, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o7777 || s == "" {
		return 0, fmt.Errorf("mode %q is not an octal mode such as \"0644\" or \"4755\"", s)
	}
	return uint32(m), nil
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
	var v int64
	if !d.num(attrs, name, &v) {
		return false
	}
	if v < 0 || v > 0xfffffffe {
		d.diags = append(d.diags, diag("Invalid "+name, fmt.Sprintf("%s %d is not between 0 and 4294967294.", name, v), attrs[name].Expr.Range()))
	}
	*dst = int(v)
	return true
}

func (d *decoder) mode(attrs hcl.Attributes, name string, dst *uint32) bool {
	var s string
	if !d.str(attrs, name, &s) {
		return false
	}
	if s == "" && !d.diags.HasErrors() {
		return false // unknown yet
	}
	m, err := parseMode(s)
	if err != nil {
		d.diags = append(d.diags, diag("Invalid "+name, err.Error()+" Write modes as strings: HCL reads 0644 as the decimal number 644.", attrs[name].Expr.Range()))
		return false
	}
	*dst = m
	return true
}

// Decode implements recipes.Kind.
func (k Kind) Decode(b *recipes.Block, ctx *hcl.EvalContext) (recipes.Node, hcl.Diagnostics) {
	content, diags := b.Body.Content(k.Schema())
	if diags.HasErrors() {
		return nil, diags
	}
	d := &decoder{ctx: ctx, diags: diags}
	n := &node{name: b.Name, dir: filepath.Dir(b.DefRange.Filename), arch: "x86-64", image: imageSpec{Filesystem: EROFS}}
	attrs := content.Attributes
	if d.str(attrs, "filesystem", &n.image.Filesystem) && !isOneOf(n.image.Filesystem, FileSystems) {
		d.diags = append(d.diags, diag("Invalid filesystem", fmt.Sprintf("filesystem %q is not one of %s.", n.image.Filesystem, strings.Join(FileSystems, ", ")), attrs["filesystem"].Expr.Range()))
	}
	if d.str(attrs, "compression", &n.image.Compression) {
		if err := checkCompression(n.image.Filesystem, n.image.Compression); err != nil {
			d.diags = append(d.diags, diag("Invalid compression", err.Error(), attrs["compression"].Expr.Range()))
		}
	}
	var size string
	if d.str(attrs, "size", &size) && size != "" {
		sz, err := units.ParseSize(size)
		switch {
		case err != nil:
			d.diags = append(d.diags, diag("Invalid size", err.Error(), attrs["size"].Expr.Range()))
		case n.image.Filesystem != Ext4:
			d.diags = append(d.diags, diag("Unexpected size", "size sets the size of an ext4 image; erofs and squashfs images are as large as their content.", attrs["size"].Expr.Range()))
		case sz%4096 != 0 || sz < units.MiB:
			d.diags = append(d.diags, diag("Invalid size", fmt.Sprintf("size %s is not a multiple of 4KiB of at least 1MiB.", size), attrs["size"].Expr.Range()))
		}
		n.image.Size = sz
	}
	d.str(attrs, "label", &n.image.Label)
	if len(n.image.Label) > 16 {
		d.diags = append(d.diags, diag("Invalid label", "an ext4 label has at most 16 bytes.", attrs["label"].Expr.Range()))
	}
	if d.str(attrs, "architecture", &n.arch) {
		if _, ok := partitionTypes[n.arch]; !ok && n.arch != "" {
			d.diags = append(d.diags, diag("Invalid architecture", fmt.Sprintf("architecture %q is not x86-64 or arm64 (it chooses the partition types).", n.arch), attrs["architecture"].Expr.Range()))
		}
	}
	if a, ok := attrs["exclude"]; ok {
		var ex []string
		d.diags = append(d.diags, recipes.DecodeExpr(a.Expr, ctx, cty.List(cty.String), &ex)...)
		for _, e := range ex {
			if _, err := ParsePattern(e); err != nil {
				d.diags = append(d.diags, diag("Invalid exclude pattern", err.Error(), a.Expr.Range()))
			}
		}
		n.tree.Exclude = ex
	}
	d.str(attrs, "description", new(string))

	var verityBlocks []*hcl.Block
	for _, blk := range content.Blocks {
		switch blk.Type {
		case "from":
			n.decodeFrom(d, blk)
		case "file", "dir", "symlink", "device":
			n.decodeItem(d, blk)
		case "override":
			n.decodeOverride(d, blk)
		case "verity":
			verityBlocks = append(verityBlocks, blk)
		}
	}
	if len(n.tree.Sources) == 0 && len(n.tree.Items) == 0 {
		d.diags = append(d.diags, diag("Empty rootfs", "Give the content: from { dir = \"…\" } (or tar, oci_layout, image), or file/dir/symlink blocks.", b.DefRange))
	}
	for i, vb := range verityBlocks {
		if i > 0 {
			d.diags = append(d.diags, diag("Duplicate verity block", "A rootfs has at most one verity block.", vb.DefRange))
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

func (n *node) decodeFrom(d *decoder, blk *hcl.Block) {
	c, diags := blk.Body.Content(fromSchema)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return
	}
	s := source{Tar: -1, rng: blk.DefRange}
	var kinds []string
	for _, k := range []string{"dir", "tar", "oci_layout", "image"} {
		if _, ok := c.Attributes[k]; ok {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) != 1 {
		detail := "Give one of dir, tar, oci_layout or image."
		if len(kinds) > 1 {
			detail = fmt.Sprintf("This from block has %s; give exactly one source (use several from blocks to layer them).", strings.Join(kinds, " and "))
		}
		d.diags = append(d.diags, diag("from needs exactly one source", detail, blk.DefRange))
		return
	}
	if d.str(c.Attributes, "at", &s.At) {
		if !strings.HasPrefix(s.At, "/") || path.Clean(s.At) != s.At {
			d.diags = append(d.diags, diag("Invalid at", fmt.Sprintf("at %q is the clean absolute directory the source is unpacked into, such as \"/opt/app\".", s.At), c.Attributes["at"].Expr.Range()))
		}
		if s.At == "/" {
			s.At = ""
		}
	}
	if d.str(c.Attributes, "dir", &s.Dir) {
		s.abs = s.Dir
		if !filepath.IsAbs(s.abs) {
			s.abs = filepath.Join(n.dir, s.Dir)
		}
	}
	if a, ok := c.Attributes["tar"]; ok {
		art, known, dd := recipes.DecodeArtifact(a.Expr, d.ctx)
		d.diags = append(d.diags, dd...)
		if known {
			s.Tar = len(n.inputs)
			n.inputs = append(n.inputs, art)
		}
	}
	if d.str(c.Attributes, "oci_layout", &s.OCILayout) {
		s.abs = s.OCILayout
		if !filepath.IsAbs(s.abs) {
			s.abs = filepath.Join(n.dir, s.OCILayout)
		}
	}
	if d.str(c.Attributes, "image", &s.Image) && s.Image != "" {
		if _, err := ParsePinnedRef(s.Image); err != nil {
			d.diags = append(d.diags, diag("Image not pinned", err.Error(), c.Attributes["image"].Expr.Range()))
		}
	}
	if d.str(c.Attributes, "ref", &s.Ref) && s.OCILayout == "" {
		d.diags = append(d.diags, diag("Unexpected ref", "ref names an image in an oci_layout (its org.opencontainers.image.ref.name).", c.Attributes["ref"].Expr.Range()))
	}
	// What is on this machine is checked now, so that validate reports it.
	if s.Dir != "" {
		if dd := checkSourceDir("dir", s.Dir, s.abs, n.dir, c.Attributes["dir"].Expr.Range()); dd != nil {
			d.diags = append(d.diags, dd)
		}
	}
	if s.OCILayout != "" {
		if dd := checkSourceDir("oci_layout", s.OCILayout, s.abs, n.dir, c.Attributes["oci_layout"].Expr.Range()); dd != nil {
			d.diags = append(d.diags, dd)
		} else if dd := checkLayout(s.OCILayout, s.abs, s.Ref, c.Attributes); dd != nil {
			d.diags = append(d.diags, dd)
		}
	}
	if d.str(c.Attributes, "platform", &s.Platform) {
		if s.OCILayout == "" && s.Image == "" {
			d.diags = append(d.diags, diag("Unexpected platform", "platform chooses an image of an oci_layout or image.", c.Attributes["platform"].Expr.Range()))
		}
	} else if s.OCILayout != "" || s.Image != "" {
		s.Platform = DefaultPlatform
	}
	n.tree.Sources = append(n.tree.Sources, s)
}

// checkSourceDir reports a from directory (dir or oci_layout) that does
// not exist or is not a directory, at its attribute.
func checkSourceDir(attr, rel, abs, recipeDir string, rng hcl.Range) *hcl.Diagnostic {
	where := ""
	if !filepath.IsAbs(rel) {
		where = fmt.Sprintf(" (a relative %s is relative to the recipe's directory, %s)", attr, recipeDir)
	}
	st, err := os.Stat(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return diag("Directory not found", fmt.Sprintf("%s: %s does not exist%s.", attr, abs, where), rng)
	case err != nil:
		return diag("Cannot read directory", fmt.Sprintf("%s: %v.", attr, err), rng)
	case !st.IsDir():
		return diag("Not a directory", fmt.Sprintf("%s: %s is not a directory%s.", attr, abs, where), rng)
	}
	return nil
}

// checkLayout reports an oci_layout directory that is not an OCI image
// layout (at oci_layout), or that has no image named ref (at ref).
func checkLayout(rel, abs, ref string, attrs hcl.Attributes) *hcl.Diagnostic {
	names, err := layoutRefNames(abs)
	if err != nil {
		return diag("Not an OCI image layout", fmt.Sprintf("oci_layout %q: %v.", rel, err), attrs["oci_layout"].Expr.Range())
	}
	if ref == "" {
		return nil
	}
	for _, n := range names {
		if n == ref {
			return nil
		}
	}
	has := "no named images"
	if len(names) > 0 {
		has = strings.Join(names, ", ")
	}
	return diag("No such image in the layout", fmt.Sprintf("oci_layout %q has no image named %q (it has %s).", rel, ref, has), attrs["ref"].Expr.Range())
}

func (n *node) decodeItem(d *decoder, blk *hcl.Block) {
	schema := map[string]*hcl.BodySchema{"file": fileSchema, "dir": dirSchema, "symlink": symlinkSchema, "device": deviceSchema}[blk.Type]
	c, diags := blk.Body.Content(schema)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return
	}
	p := blk.Labels[0]
	it := item{Path: p, Type: blk.Type, Input: -1}
	if !strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "/" && blk.Type != "dir" {
		d.diags = append(d.diags, diag("Invalid path", fmt.Sprintf("%q must be a clean absolute path such as \"/etc/hostname\".", p), blk.LabelRanges[0]))
		return
	}
	switch blk.Type {
	case "file":
		it.Mode = 0o644
		_, hasContent := c.Attributes["content"]
		_, hasSource := c.Attributes["source"]
		if hasContent == hasSource {
			d.diags = append(d.diags, diag("file needs content or source", "Give exactly one of content (a string) or source (a file made by another block, such as input.NAME).", blk.DefRange))
			return
		}
		d.str(c.Attributes, "content", &it.Content)
		if hasSource {
			art, known, dd := recipes.DecodeArtifact(c.Attributes["source"].Expr, d.ctx)
			d.diags = append(d.diags, dd...)
			if known {
				it.Input = len(n.inputs)
				n.inputs = append(n.inputs, art)
			}
		}
	case "dir":
		it.Mode = 0o755
	case "symlink":
		d.str(c.Attributes, "target", &it.Target)
		if err := checkSymlink("symlink block", p, strings.TrimPrefix(p, "/"), it.Target); err != nil && it.Target != "" {
			d.diags = append(d.diags, diag("Invalid symlink", err.Error(), c.Attributes["target"].Expr.Range()))
		}
	case "device":
		it.Mode = 0o600
		var typ string
		d.str(c.Attributes, "type", &typ)
		switch typ {
		case "char", "block", "fifo":
			it.Type = typ
		default:
			d.diags = append(d.diags, diag("Invalid device type", fmt.Sprintf("type %q is not char, block or fifo.", typ), c.Attributes["type"].Expr.Range()))
		}
		var major, minor int64
		d.num(c.Attributes, "major", &major)
		d.num(c.Attributes, "minor", &minor)
		if major < 0 || major > 0xfff || minor < 0 || minor > 0xfffff {
			d.diags = append(d.diags, diag("Invalid device number", fmt.Sprintf("%d:%d is outside 0-4095:0-1048575.", major, minor), blk.DefRange))
		}
		it.Major, it.Minor = uint32(major), uint32(minor)
	}
	d.mode(c.Attributes, "mode", &it.Mode)
	d.id(c.Attributes, "uid", &it.UID)
	d.id(c.Attributes, "gid", &it.GID)
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
		d.diags = append(d.diags, diag("Invalid override pattern", err.Error(), blk.LabelRanges[0]))
	}
	if len(c.Attributes) == 0 {
		d.diags = append(d.diags, diag("Empty override", "Give uid, gid, mode, file_mode or dir_mode.", blk.DefRange))
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
			d.diags = append(d.diags, diag("Invalid salt", "salt is up to 256 bytes in hexadecimal (\"\" for none); leave it out for a salt derived from the content.", at["salt"].Expr.Range()))
		}
	}
	d.str(at, "hash_algorithm", &v.Algorithm)
	var dbs, hbs int64 = verity.DefaultBlockSize, verity.DefaultBlockSize
	d.num(at, "data_block_size", &dbs)
	d.num(at, "hash_block_size", &hbs)
	if dbs < 0 || dbs > 1<<20 || hbs < 0 || hbs > 1<<20 {
		d.diags = append(d.diags, diag("Invalid block size", "verity block sizes are powers of two from 512 to 4096 (data) or 524288 (hash).", blk.DefRange))
		return
	}
	v.DataBlockSize, v.HashBlockSize = uint32(dbs), uint32(hbs)
	if err := (verity.Params{Algorithm: v.Algorithm, DataBlockSize: v.DataBlockSize, HashBlockSize: v.HashBlockSize}).Check(); err != nil {
		d.diags = append(d.diags, diag("Invalid verity parameters", err.Error(), blk.DefRange))
	}
	if d.str(at, "layout", &v.Layout) && v.Layout != verity.LayoutSeparate && v.Layout != verity.LayoutAppended {
		d.diags = append(d.diags, diag("Invalid layout", fmt.Sprintf("layout %q is not \"separate\" (the tree in its own artifact) or \"appended\" (after the image).", v.Layout), at["layout"].Expr.Range()))
	}
	if a, ok := at["superblock"]; ok {
		d.diags = append(d.diags, recipes.DecodeExpr(a.Expr, d.ctx, cty.Bool, &v.Superblock)...)
	}
	d.str(at, "data_device", &v.dataDevice)
	d.str(at, "hash_device", &v.hashDevice)
	n.verity = v
}

// Steps implements recipes.Node: the tree as a tar, the file system image
// made from it, and the dm-verity tree of the image.
func (n *node) Steps() []*recipes.Step {
	steps := []*recipes.Step{{
		ID: "tree", Kind: "rootfs/tree", Version: "1", Params: n.tree, Inputs: n.inputs,
		Probe: n.probe, Run: n.runTree,
	}, {
		ID: "image", Kind: "rootfs/image", Version: "1", Params: n.image, After: []string{"tree"},
		// The mkfs tools' versions join the key: another version may
		// write other bytes.
		Probe: func(ctx context.Context) (string, error) {
			v, err := ToolVersions(ctx, n.image.Filesystem)
			if err != nil {
				return "", fmt.Errorf("rootfs.%s: %w", n.name, err)
			}
			return v, nil
		},
		Run: n.runImage,
	}}
	if n.verity != nil {
		steps = append(steps, &recipes.Step{
			ID: "verity", Kind: "rootfs/verity", Version: "1", Params: n.verity, After: []string{"image"},
			Run: n.runVerity,
		})
	}
	return steps
}

// probe hashes what the tree step reads from outside the cache: source
// directories (names, modes, contents) and OCI layouts (their index, which
// pins every blob by digest).
func (n *node) probe(ctx context.Context) (string, error) {
	var parts []string
	for i, s := range n.tree.Sources {
		switch {
		case s.Dir != "":
			// Remembered while no file or directory below it changes,
			// so a rebuild does not hash the tree again.
			dg, err := recipes.Memoize(ctx, "rootfs-dir "+s.abs, func() (string, []string, error) {
				return dirDigest(fmt.Sprintf("rootfs.%s: from dir %q", n.name, s.Dir), s.abs)
			})
			if err != nil {
				return "", err
			}
			parts = append(parts, fmt.Sprintf("%d dir %s", i, dg))
			if n.probed == nil {
				n.probed = map[int]string{}
			}
			n.probed[i] = dg
		case s.OCILayout != "":
			sum, err := hashFile(filepath.Join(s.abs, "index.json"))
			if err != nil {
				return "", fmt.Errorf("rootfs.%s: from oci_layout %q: %w", n.name, s.OCILayout, err)
			}
			parts = append(parts, fmt.Sprintf("%d oci %x", i, sum))
		}
	}
	return strings.Join(parts, ";"), nil
}

func (n *node) runTree(ctx context.Context, sc *recipes.StepContext) error {
	spool, err := os.MkdirTemp("", "cocobuild-rootfs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(spool)
	t := NewTree(spool, sc.Epoch)
	name := "rootfs." + n.name
	for i, s := range n.tree.Sources {
		if err := ctx.Err(); err != nil {
			return err
		}
		switch {
		case s.Dir != "":
			src := fmt.Sprintf("%s: from dir %q", name, s.Dir)
			dg, err := t.AddDir(src, s.abs, s.At)
			if err != nil {
				return err
			}
			if want, ok := n.probed[i]; ok && want != dg {
				return fmt.Errorf("%s: the directory changed while the build read it; build again", src)
			}
			fmt.Fprintf(sc.Log, "%s: %s\n", src, dg)
		case s.Tar >= 0:
			a := n.inputs[s.Tar]
			f, err := os.Open(a.Path)
			if err != nil {
				return err
			}
			err = t.AddTar(fmt.Sprintf("%s: from tar %s", name, a.Origin), f, s.At)
			f.Close()
			if err != nil {
				return err
			}
		case s.OCILayout != "":
			src := fmt.Sprintf("%s: from oci_layout %q", name, s.OCILayout)
			img, dg, err := OpenLayoutImage(s.abs, s.Ref, s.Platform)
			if err != nil {
				return fmt.Errorf("%s: %w", src, err)
			}
			fmt.Fprintf(sc.Log, "%s: image %s\n", src, dg)
			if err := t.AddImage(ctx, src, img); err != nil {
				return err
			}
		case s.Image != "":
			src := fmt.Sprintf("%s: from image %q", name, s.Image)
			img, err := PullImage(ctx, s.Image, s.Platform)
			if err != nil {
				return fmt.Errorf("%s: %w", src, err)
			}
			if err := t.AddImage(ctx, src, img); err != nil {
				return err
			}
		}
	}
	for _, it := range n.tree.Items {
		src := fmt.Sprintf("%s: %s %q", name, it.Type, it.Path)
		var err error
		switch it.Type {
		case "file":
			if it.Input >= 0 {
				var f *os.File
				if f, err = os.Open(n.inputs[it.Input].Path); err == nil {
					err = t.AddFile(src, it.Path, f, it.Mode, it.UID, it.GID, sc.Epoch)
					f.Close()
				}
			} else {
				err = t.AddFile(src, it.Path, strings.NewReader(it.Content), it.Mode, it.UID, it.GID, sc.Epoch)
			}
		case "dir":
			err = t.AddEntry(src, it.Path, Entry{Type: TypeDir, Mode: it.Mode, UID: it.UID, GID: it.GID, MTime: sc.Epoch})
		case "symlink":
			err = t.AddEntry(src, it.Path, Entry{Type: TypeSymlink, Link: it.Target, UID: it.UID, GID: it.GID, MTime: sc.Epoch})
		case "char", "block", "fifo":
			typ := map[string]Type{"char": TypeChar, "block": TypeBlock, "fifo": TypeFIFO}[it.Type]
			err = t.AddEntry(src, it.Path, Entry{Type: typ, Mode: it.Mode, UID: it.UID, GID: it.GID, MTime: sc.Epoch, Major: it.Major, Minor: it.Minor})
		}
		if err != nil {
			return err
		}
	}
	for _, e := range n.tree.Exclude {
		p, _ := ParsePattern(e)
		fmt.Fprintf(sc.Log, "exclude %s: %d entries\n", e, t.Exclude(p))
	}
	for _, o := range n.tree.Overrides {
		p, _ := ParsePattern(o.Pattern)
		if t.Override(p, Attrs{UID: o.UID, GID: o.GID, Mode: o.Mode, FileMode: o.FileMode, DirMode: o.DirMode}) == 0 {
			return fmt.Errorf("%s: override %q matches no entry of the tree (patterns are absolute; ** matches any depth)", name, o.Pattern)
		}
	}
	out, err := os.Create(filepath.Join(sc.OutDir, "tree.tar"))
	if err != nil {
		return err
	}
	entries, err := t.WriteTar(out)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	sc.Meta["entries"] = entries
	return nil
}

func (n *node) imageName() string { return "rootfs." + n.image.Filesystem }

func (n *node) runImage(ctx context.Context, sc *recipes.StepContext) error {
	tarArt, err := sc.After["tree"].File("tree.tar")
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "cocobuild-mkfs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	id := verity.DeriveUUID("rootfs "+n.image.Filesystem, tarArt.SHA256)
	info, err := BuildImage(ctx, tarArt.Path, filepath.Join(sc.OutDir, n.imageName()), work, ImageOptions{
		Type: n.image.Filesystem, UUID: id, Epoch: sc.Epoch, Label: n.image.Label,
		Compression: n.image.Compression, Size: n.image.Size, Chown: os.Geteuid() == 0, Log: sc.Log,
	})
	if err != nil {
		return fmt.Errorf("rootfs.%s: %w", n.name, err)
	}
	sc.Meta["uuid"] = id.String()
	sc.Meta["entries"] = info.Entries
	if v, err := ToolVersions(ctx, n.image.Filesystem); err == nil {
		sc.Meta["mkfs"] = v
	}
	return nil
}

func (n *node) runVerity(ctx context.Context, sc *recipes.StepContext) error {
	img, err := sc.After["image"].File(n.imageName())
	if err != nil {
		return err
	}
	v := n.verity
	p := verity.Params{Algorithm: v.Algorithm, DataBlockSize: v.DataBlockSize, HashBlockSize: v.HashBlockSize, Superblock: v.Superblock}
	if v.Salt == "derived" {
		p.Salt = verity.DeriveSalt(img.SHA256)
	} else {
		p.Salt, _ = hex.DecodeString(v.Salt)
	}
	if v.Superblock {
		p.UUID = verity.DeriveUUID("verity superblock", img.SHA256)
	}
	var r *verity.Result
	if v.Layout == verity.LayoutAppended {
		out := filepath.Join(sc.OutDir, n.imageName())
		if err := copyFile(img.Path, out); err != nil {
			return err
		}
		r, err = verity.Append(ctx, out, p)
	} else {
		r, err = verity.Format(ctx, img.Path, filepath.Join(sc.OutDir, "verity"), p)
	}
	if err != nil {
		return fmt.Errorf("rootfs.%s: %w", n.name, err)
	}
	sc.Meta["verity"] = r
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := out.ReadFrom(in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// metaResult reads the verity result back from a step's metadata (which
// went through JSON in the cache).
func metaResult(meta map[string]any) (*verity.Result, error) {
	raw, ok := meta["verity"]
	if !ok {
		return nil, fmt.Errorf("verity step result has no parameters")
	}
	var r verity.Result
	if err := remarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("verity step result: %w", err)
	}
	return &r, nil
}

// Finish implements recipes.Node.
func (n *node) Finish(results map[string]*recipes.Result) (*recipes.Output, error) {
	addr := "rootfs." + n.name
	imgRes := results["image"]
	img, err := imgRes.File(n.imageName())
	if err != nil {
		return nil, err
	}
	img.Origin = addr
	tarArt, err := results["tree"].File("tree.tar")
	if err != nil {
		return nil, err
	}
	tarArt.Origin = addr
	fsUUID, _ := imgRes.Meta["uuid"].(string)
	entries, _ := imgRes.Meta["entries"].(float64)
	types := partitionTypes[n.arch]
	dir := "rootfs/" + n.name + "/"
	extra := map[string]any{"filesystem": n.image.Filesystem, "uuid": fsUUID, "entries": int64(entries), "tree_sha256": tarArt.SHA256}
	if v, ok := imgRes.Meta["mkfs"].(string); ok {
		extra["mkfs"] = v
	}
	data := img
	partUUID := verity.DeriveUUID("partition", img.SHA256).String()
	verityVal := cty.NullVal(verityType)
	var arts []recipes.OutputArtifact
	if n.verity != nil {
		r, err := metaResult(results["verity"].Meta)
		if err != nil {
			return nil, err
		}
		dataUUID, hashUUID, err := r.PartitionUUIDs()
		if err != nil {
			return nil, err
		}
		partUUID = dataUUID.String()
		hashPart := hashUUID.String()
		dataDev, hashDev := n.verity.dataDevice, n.verity.hashDevice
		if dataDev == "" {
			dataDev = "PARTUUID=" + partUUID
		}
		if hashDev == "" {
			hashDev = "PARTUUID=" + hashPart
			if r.Layout == verity.LayoutAppended {
				hashDev = dataDev
			}
		}
		hash := data
		if r.Layout == verity.LayoutAppended {
			data, err = results["verity"].File(n.imageName())
			hash = data
			hashPart = partUUID
		} else {
			hash, err = results["verity"].File("verity")
		}
		if err != nil {
			return nil, err
		}
		data.Origin, hash.Origin = addr, addr+".verity"
		kata := r.KataCmdline(dataDev, hashDev, n.image.Filesystem)
		systemd := r.SystemdCmdline(dataDev, hashDev, n.image.Filesystem)
		vals := map[string]any{
			"root_hash": r.RootHash, "salt": r.Salt, "hash_algorithm": r.Algorithm,
			"data_blocks": r.DataBlocks, "data_block_size": r.DataBlockSize, "hash_block_size": r.HashBlockSize,
			"hash_offset": r.HashOffset, "hash_start_block": r.HashStartBlock, "superblock": r.Superblock,
			"layout": r.Layout, "uuid": r.UUID, "data_device": dataDev, "hash_device": hashDev,
			"table": r.Table(dataDev, hashDev), "partition_type": types[1], "partition_uuid": hashPart,
		}
		obj := map[string]cty.Value{"artifact": recipes.ArtifactVal(hash),
			"cmdline": stringList(kata), "systemd_cmdline": stringList(systemd)}
		for k, v := range vals {
			ty, _ := gocty.ImpliedType(v)
			cv, err := gocty.ToCtyValue(v, ty)
			if err != nil {
				return nil, err
			}
			obj[k] = cv
		}
		verityVal = cty.ObjectVal(obj)
		vextra := map[string]any{}
		for k, v := range vals {
			vextra[k] = v
		}
		vextra["cmdline"] = strings.Join(kata, " ")
		vextra["systemd_cmdline"] = strings.Join(systemd, " ")
		if r.Layout == verity.LayoutSeparate {
			extra["verity_root_hash"] = r.RootHash
			arts = append(arts, recipes.OutputArtifact{Name: addr + ".verity", Kind: "verity", Path: dir + n.imageName() + ".verity", File: hash, Extra: vextra})
		} else {
			// One file holds the image and its tree: its entry carries
			// the verity fields.
			delete(vextra, "partition_uuid")
			delete(vextra, "partition_type")
			for k, v := range vextra {
				extra[k] = v
			}
		}
	}
	extra["partition_uuid"] = partUUID
	extra["partition_type"] = types[0]
	arts = append([]recipes.OutputArtifact{{Name: addr, Kind: "rootfs", Path: dir + n.imageName(), File: data, Extra: extra}}, arts...)
	return &recipes.Output{
		Value: cty.ObjectVal(map[string]cty.Value{
			"artifact": recipes.ArtifactVal(data), "image": recipes.ArtifactVal(data), "tar": recipes.ArtifactVal(tarArt),
			"filesystem": cty.StringVal(n.image.Filesystem), "uuid": cty.StringVal(fsUUID),
			"size": cty.NumberIntVal(data.Size), "partition_type": cty.StringVal(types[0]),
			"partition_uuid": cty.StringVal(partUUID), "verity": verityVal,
		}),
		Artifacts: arts,
	}, nil
}

// remarshal converts v (a struct, or what JSON made of one) into dst.
func remarshal(v, dst any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, dst)
}

func stringList(ss []string) cty.Value {
	vs := make([]cty.Value, len(ss))
	for i, s := range ss {
		vs[i] = cty.StringVal(s)
	}
	return cty.ListVal(vs)
}
