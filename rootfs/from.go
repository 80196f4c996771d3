package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/cocobuild/cocobuild/recipes"
)

// decodeFrom decodes a from block: one source of the tree.
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
		d.diags = append(d.diags, recipes.Diag("from needs exactly one source", detail, blk.DefRange))
		return
	}
	if d.str(c.Attributes, "at", &s.At) {
		if !strings.HasPrefix(s.At, "/") || path.Clean(s.At) != s.At {
			d.diags = append(d.diags, recipes.Diag("Invalid at", fmt.Sprintf("at %q is the clean absolute directory the source is unpacked into, such as \"/opt/app\".", s.At), c.Attributes["at"].Expr.Range()))
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
			d.diags = append(d.diags, recipes.Diag("Image not pinned", err.Error(), c.Attributes["image"].Expr.Range()))
		}
	}
	if d.str(c.Attributes, "ref", &s.Ref) && s.OCILayout == "" {
		d.diags = append(d.diags, recipes.Diag("Unexpected ref", "ref names an image in an oci_layout (its org.opencontainers.image.ref.name).", c.Attributes["ref"].Expr.Range()))
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
			d.diags = append(d.diags, recipes.Diag("Unexpected platform", "platform chooses an image of an oci_layout or image.", c.Attributes["platform"].Expr.Range()))
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
		return recipes.Diag("Directory not found", fmt.Sprintf("%s: %s does not exist%s.", attr, abs, where), rng)
	case err != nil:
		return recipes.Diag("Cannot read directory", fmt.Sprintf("%s: %v.", attr, err), rng)
	case !st.IsDir():
		return recipes.Diag("Not a directory", fmt.Sprintf("%s: %s is not a directory%s.", attr, abs, where), rng)
	}
	return nil
}

// checkLayout reports an oci_layout directory that is not an OCI image
// layout (at oci_layout), or that has no image named ref (at ref).
func checkLayout(rel, abs, ref string, attrs hcl.Attributes) *hcl.Diagnostic {
	names, err := layoutRefNames(abs)
	if err != nil {
		return recipes.Diag("Not an OCI image layout", fmt.Sprintf("oci_layout %q: %v.", rel, err), attrs["oci_layout"].Expr.Range())
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
	return recipes.Diag("No such image in the layout", fmt.Sprintf("oci_layout %q has no image named %q (it has %s).", rel, ref, has), attrs["ref"].Expr.Range())
}
