package disk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/internal/derive"
	"github.com/cocobuild/cocobuild/internal/units"
	"github.com/cocobuild/cocobuild/recipes"
)

// Kind implements the `disk "NAME" { … }` block; see docs/recipes.md.
type Kind struct{}

// Type implements recipes.Kind.
func (Kind) Type() string { return "disk" }

// Formats are the image formats a disk is written in.
var Formats = []string{"raw", "qcow2"}

var partitionSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "type"}, {Name: "size"}, {Name: "content"}, {Name: "files"}, {Name: "uuid"}, {Name: "label"},
}}

// Schema implements recipes.Kind.
func (Kind) Schema() *hcl.BodySchema {
	return &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "format"}, {Name: "size"}, {Name: "description"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "partition", LabelNames: []string{"name"}}},
	}
}

var partitionValType = cty.Object(map[string]cty.Type{
	"name": cty.String, "type": cty.String, "uuid": cty.String,
	"first_lba": cty.Number, "last_lba": cty.Number, "size": cty.Number,
})

// OutputType implements recipes.Kind.
func (Kind) OutputType() cty.Type {
	return cty.Object(map[string]cty.Type{
		"artifact":   recipes.ArtifactType, // the image in the first format
		"raw":        recipes.ArtifactType, // null unless raw is a format
		"qcow2":      recipes.ArtifactType, // null unless qcow2 is a format
		"guid":       cty.String,
		"size":       cty.Number,
		"partitions": cty.List(partitionValType),
	})
}

// partSpec is a partition in the raw step's parameters.
type partSpec struct {
	Name          string    `json:"name"`
	Type          string    `json:"type"`
	UUID          string    `json:"uuid"`
	Size          int64     `json:"size,omitempty"`
	Content       int       `json:"content"` // index into Inputs, -1 for none
	ContentSHA256 string    `json:"content_sha256,omitempty"`
	Files         []fatSpec `json:"files,omitempty"`
	Label         string    `json:"label,omitempty"`
	fat           bool
}

type fatSpec struct {
	Path   string `json:"path"`
	Input  int    `json:"input"`
	SHA256 string `json:"sha256"`
}

type rawSpec struct {
	GUID       string     `json:"guid"`
	Size       int64      `json:"size,omitempty"`
	Partitions []partSpec `json:"partitions"`
}

type node struct {
	name    string
	formats []string
	spec    rawSpec
	inputs  []recipes.Artifact
	known   bool // every artifact is built (false while validating)
}

// Decode implements recipes.Kind.
func (k Kind) Decode(b *recipes.Block, ctx *hcl.EvalContext) (recipes.Node, hcl.Diagnostics) {
	content, diags := b.Body.Content(k.Schema())
	if diags.HasErrors() {
		return nil, diags
	}
	n := &node{name: b.Name, formats: []string{"raw"}, known: true}
	if a, ok := content.Attributes["format"]; ok {
		fs, d := decodeFormats(a.Expr, ctx)
		diags = append(diags, d...)
		if fs != nil {
			n.formats = fs
		}
	}
	if a, ok := content.Attributes["size"]; ok {
		var s string
		diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.String, &s)...)
		if s != "" {
			sz, err := units.ParseSize(s)
			if err != nil || sz%units.MiB != 0 {
				if err == nil {
					err = fmt.Errorf("size %s is not a multiple of 1MiB", s)
				}
				diags = append(diags, recipes.Diag("Invalid size", err.Error(), a.Expr.Range()))
			}
			n.spec.Size = sz
		}
	}
	if a, ok := content.Attributes["description"]; ok {
		var s string
		diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.String, &s)...)
	}
	for _, blk := range content.Blocks {
		p, d := n.decodePartition(blk, ctx)
		diags = append(diags, d...)
		if p != nil {
			n.spec.Partitions = append(n.spec.Partitions, *p)
		}
	}
	if len(content.Blocks) == 0 {
		diags = append(diags, recipes.Diag("Disk without partitions", "Give at least one partition \"NAME\" { … } block.", b.DefRange))
	}
	if diags.HasErrors() {
		return nil, diags
	}
	if n.known {
		n.deriveGUIDs()
		// Check the layout now, so that a disk that cannot be made is a
		// recipe error with a place, before anything is built.
		if _, err := Plan(n.planSpec(nil)); err != nil {
			return nil, append(diags, recipes.Diag("Invalid disk layout", err.Error()+".", b.DefRange))
		}
	}
	return n, diags
}

func decodeFormats(expr hcl.Expression, ctx *hcl.EvalContext) ([]string, hcl.Diagnostics) {
	val, diags := expr.Value(ctx)
	if diags.HasErrors() || !val.IsWhollyKnown() {
		return nil, diags
	}
	var fs []string
	if val.Type() == cty.String {
		var s string
		diags = append(diags, recipes.DecodeExpr(expr, ctx, cty.String, &s)...)
		fs = []string{s}
	} else {
		diags = append(diags, recipes.DecodeExpr(expr, ctx, cty.List(cty.String), &fs)...)
	}
	seen := map[string]bool{}
	for _, f := range fs {
		if f != "raw" && f != "qcow2" || seen[f] {
			return nil, append(diags, recipes.Diag("Invalid format", fmt.Sprintf("format is \"raw\", \"qcow2\" or a list of both, each once; not %q.", f), expr.Range()))
		}
		seen[f] = true
	}
	if len(fs) == 0 {
		return nil, append(diags, recipes.Diag("Invalid format", "give at least one format.", expr.Range()))
	}
	return fs, diags
}

// contentAttrs reads partition_type and partition_uuid from a content
// value that has them (rootfs.NAME, rootfs.NAME.verity).
func contentAttrs(val cty.Value) (typ, id string) {
	if !val.Type().IsObjectType() || !val.IsKnown() || val.IsNull() {
		return "", ""
	}
	get := func(k string) string {
		if !val.Type().HasAttribute(k) {
			return ""
		}
		v := val.GetAttr(k)
		if v.Type() != cty.String || !v.IsKnown() || v.IsNull() {
			return ""
		}
		return v.AsString()
	}
	return get("partition_type"), get("partition_uuid")
}

func (n *node) addInput(a recipes.Artifact) int {
	n.inputs = append(n.inputs, a)
	return len(n.inputs) - 1
}

func (n *node) decodePartition(blk *hcl.Block, ctx *hcl.EvalContext) (*partSpec, hcl.Diagnostics) {
	c, diags := blk.Body.Content(partitionSchema)
	if diags.HasErrors() {
		return nil, diags
	}
	p := &partSpec{Name: blk.Labels[0], Content: -1}
	at := c.Attributes
	str := func(name string, dst *string) bool {
		a, ok := at[name]
		if ok {
			diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.String, dst)...)
		}
		return ok
	}
	var contentType, contentUUID string
	_, hasContent := at["content"]
	_, hasFiles := at["files"]
	if hasContent && hasFiles {
		diags = append(diags, recipes.Diag("Partition with content and files", "A partition holds either content (an image) or files (a FAT32 file system), not both.", blk.DefRange))
	}
	if hasContent {
		expr := at["content"].Expr
		val, d := expr.Value(ctx)
		diags = append(diags, d...)
		if !d.HasErrors() {
			if val.Type().IsObjectType() && val.IsKnown() && val.IsNull() {
				diags = append(diags, recipes.Diag("Null content", "This value is null: is its block missing a part (such as a verity block for rootfs.NAME.verity)?", expr.Range()))
			} else {
				art, known, dd := recipes.DecodeArtifact(expr, ctx)
				diags = append(diags, dd...)
				if known {
					p.Content = n.addInput(art)
					p.ContentSHA256 = art.SHA256
					contentType, contentUUID = contentAttrs(val)
				} else {
					n.known = false
				}
			}
		}
	}
	if hasFiles {
		p.fat = true
		expr := at["files"].Expr
		val, d := expr.Value(ctx)
		diags = append(diags, d...)
		if !d.HasErrors() {
			switch {
			case !val.IsWhollyKnown():
				n.known = false
			case !val.Type().IsObjectType() && !val.Type().IsMapType() || val.IsNull():
				diags = append(diags, recipes.Diag("Invalid files", "files is a map from absolute paths in the FAT32 file system to artifacts, such as { \"/EFI/BOOT/BOOTX64.EFI\" = kernel.guest.image }.", expr.Range()))
			default:
				for it := val.ElementIterator(); it.Next(); {
					k, v := it.Element()
					fp := k.AsString()
					if !strings.HasPrefix(fp, "/") || path.Clean(fp) != fp || fp == "/" {
						diags = append(diags, recipes.Diag("Invalid file path", fmt.Sprintf("%q is not a clean absolute path such as \"/EFI/BOOT/BOOTX64.EFI\".", fp), expr.Range()))
						continue
					}
					if v.Type().IsObjectType() && v.Type().HasAttribute("artifact") {
						v = v.GetAttr("artifact")
					} else if v.Type().IsObjectType() && v.Type().HasAttribute("image") {
						v = v.GetAttr("image")
					}
					if v.Type() != recipes.ArtifactType || v.IsNull() {
						diags = append(diags, recipes.Diag("Not an artifact", fmt.Sprintf("files[%q] is %s, not a file made by another block.", fp, v.Type().FriendlyName()), expr.Range()))
						continue
					}
					a := *v.EncapsulatedValue().(*recipes.Artifact)
					p.Files = append(p.Files, fatSpec{Path: fp, Input: n.addInput(a), SHA256: a.SHA256})
				}
				sort.Slice(p.Files, func(i, j int) bool { return p.Files[i].Path < p.Files[j].Path })
			}
		}
	}
	if !hasContent && !hasFiles {
		if _, ok := at["size"]; !ok {
			diags = append(diags, recipes.Diag("Empty partition", "Give content, files or at least a size.", blk.DefRange))
		}
	}
	var typ string
	switch {
	case str("type", &typ):
	case contentType != "":
		typ = contentType
	case hasFiles:
		typ = "esp"
	default:
		typ = "linux"
	}
	if typ != "" {
		g, err := PartitionType(typ)
		if err != nil {
			r := blk.DefRange
			if a, ok := at["type"]; ok {
				r = a.Expr.Range()
			}
			diags = append(diags, recipes.Diag("Invalid partition type", err.Error()+".", r))
		}
		p.Type = g
	}
	var size string
	if str("size", &size) && size != "" {
		sz, err := units.ParseSize(size)
		if err == nil && sz%units.MiB != 0 {
			err = fmt.Errorf("size %s is not a multiple of 1MiB", size)
		}
		if err != nil {
			diags = append(diags, recipes.Diag("Invalid size", err.Error(), at["size"].Expr.Range()))
		}
		p.Size = sz
	}
	if str("uuid", &p.UUID) && p.UUID != "" {
		if u, err := parseGUID(p.UUID); err != nil {
			diags = append(diags, recipes.Diag("Invalid uuid", err.Error(), at["uuid"].Expr.Range()))
		} else {
			p.UUID = u
		}
	} else if contentUUID != "" {
		p.UUID = contentUUID
	}
	if str("label", &p.Label) {
		if !hasFiles {
			diags = append(diags, recipes.Diag("Unexpected label", "label is the volume label of a FAT32 partition (one with files).", at["label"].Expr.Range()))
		} else if len(p.Label) > 11 {
			diags = append(diags, recipes.Diag("Invalid label", "a FAT volume label has at most 11 characters.", at["label"].Expr.Range()))
		}
	}
	return p, diags
}

func parseGUID(s string) (string, error) {
	t, err := PartitionType(s) // the same syntax check
	if err != nil {
		return "", fmt.Errorf("%q is not a GUID", s)
	}
	return t, nil
}

// deriveGUIDs fills the disk GUID and the partition GUIDs not given, from
// everything the disk is made of.
func (n *node) deriveGUIDs() {
	for i := range n.spec.Partitions {
		p := &n.spec.Partitions[i]
		if p.UUID != "" {
			continue
		}
		what := p.ContentSHA256
		for _, f := range p.Files {
			what += " " + f.Path + "=" + f.SHA256
		}
		p.UUID = derive.UUID(fmt.Sprintf("disk %s partition %s", n.name, p.Name), what).String()
	}
	b, _ := json.Marshal(n.spec)
	sum := sha256.Sum256(b)
	n.spec.GUID = derive.UUID("disk "+n.name, hex.EncodeToString(sum[:])).String()
}

// planSpec turns the parameters into a Spec; files are the inputs' paths
// (nil to plan with sizes only).
func (n *node) planSpec(inputs []recipes.Artifact) *Spec {
	s := &Spec{GUID: n.spec.GUID, Size: n.spec.Size}
	for _, p := range n.spec.Partitions {
		dp := Partition{Name: p.Name, Type: p.Type, GUID: p.UUID, Size: p.Size, FATLabel: p.Label}
		if p.Content >= 0 && n.inputs[p.Content].Size > 0 {
			dp.Content, dp.ContentSize = "planned", n.inputs[p.Content].Size
			if inputs != nil {
				dp.Content = inputs[p.Content].Path
			}
		}
		if p.fat || p.Files != nil {
			dp.FAT = []FATFile{}
			for _, f := range p.Files {
				src := "planned"
				if inputs != nil {
					src = inputs[f.Input].Path
				}
				dp.FAT = append(dp.FAT, FATFile{Path: f.Path, Source: src})
			}
		}
		s.Partitions = append(s.Partitions, dp)
	}
	return s
}

// Steps implements recipes.Node: the raw image, and its qcow2 conversion
// when asked for.
func (n *node) Steps() []*recipes.Step {
	steps := []*recipes.Step{{
		ID: "raw", Kind: "disk/raw", Version: "1", Params: n.spec, Inputs: n.inputs, Run: n.runRaw,
	}}
	if n.wants("qcow2") {
		steps = append(steps, &recipes.Step{ID: "qcow2", Kind: "disk/qcow2", Version: "1", After: []string{"raw"},
			Probe: func(ctx context.Context) (string, error) { return QemuImgVersion(ctx) }, // in the key: another version may write other bytes
			Run: func(ctx context.Context, sc *recipes.StepContext) error {
				raw, err := sc.After["raw"].File("disk.raw")
				if err != nil {
					return err
				}
				if err := Qcow2(ctx, raw.Path, filepath.Join(sc.OutDir, "disk.qcow2"), sc.Log); err != nil {
					return fmt.Errorf("disk.%s: %w", n.name, err)
				}
				return nil
			}})
	}
	return steps
}

func (n *node) wants(f string) bool {
	for _, x := range n.formats {
		if x == f {
			return true
		}
	}
	return false
}

func (n *node) runRaw(ctx context.Context, sc *recipes.StepContext) error {
	l, err := Plan(n.planSpec(n.inputs))
	if err != nil {
		return fmt.Errorf("disk.%s: %w", n.name, err)
	}
	if err := WriteRaw(ctx, filepath.Join(sc.OutDir, "disk.raw"), l, sc.Epoch); err != nil {
		return fmt.Errorf("disk.%s: %w", n.name, err)
	}
	var parts []map[string]any
	for _, p := range l.Parts {
		parts = append(parts, map[string]any{"name": p.Name, "type": p.Type, "uuid": p.GUID,
			"first_lba": p.Start, "last_lba": p.End, "size": (p.End - p.Start + 1) * SectorSize})
	}
	sc.Meta["partitions"] = parts
	sc.Meta["size"] = l.Size
	return nil
}

// Finish implements recipes.Node.
func (n *node) Finish(results map[string]*recipes.Result) (*recipes.Output, error) {
	addr := "disk." + n.name
	// Meta is as result.json holds it, whether the step ran or not.
	raw, _ := results["raw"].Meta["partitions"].([]any)
	sizeF, _ := results["raw"].Meta["size"].(float64)
	size := int64(sizeF)
	var parts []map[string]any
	var pvals []cty.Value
	for _, pv := range raw {
		p, ok := pv.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: the raw image's result lists a partition that is not an object (%v): remove its cache entry and build again", addr, pv)
		}
		parts = append(parts, p)
		num := func(k string) cty.Value { f, _ := p[k].(float64); return cty.NumberIntVal(int64(f)) }
		pvals = append(pvals, cty.ObjectVal(map[string]cty.Value{
			"name": cty.StringVal(p["name"].(string)), "type": cty.StringVal(p["type"].(string)), "uuid": cty.StringVal(p["uuid"].(string)),
			"first_lba": num("first_lba"), "last_lba": num("last_lba"), "size": num("size"),
		}))
	}
	files := map[string]recipes.Artifact{}
	for _, f := range n.formats {
		a, err := results[f].File("disk." + f)
		if err != nil {
			return nil, err
		}
		a.Origin = addr
		files[f] = a
	}
	val := map[string]cty.Value{
		"artifact": recipes.ArtifactVal(files[n.formats[0]]), "raw": cty.NullVal(recipes.ArtifactType), "qcow2": cty.NullVal(recipes.ArtifactType),
		"guid": cty.StringVal(n.spec.GUID), "size": cty.NumberIntVal(size), "partitions": cty.ListVal(pvals),
	}
	var arts []recipes.OutputArtifact
	for i, f := range n.formats {
		val[f] = recipes.ArtifactVal(files[f])
		name := addr
		if i > 0 {
			name += "." + f
		}
		arts = append(arts, recipes.OutputArtifact{Name: name, Kind: "disk", Path: "disk/" + n.name + "/disk." + f, File: files[f],
			Extra: map[string]any{"format": f, "guid": n.spec.GUID, "virtual_size": size, "partitions": parts}})
	}
	return &recipes.Output{Value: cty.ObjectVal(val), Artifacts: arts}, nil
}
