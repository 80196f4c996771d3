package recipes

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-cty-funcs/crypto"
	"github.com/hashicorp/go-cty-funcs/encoding"
	"github.com/hashicorp/go-cty-funcs/filesystem"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// functions returns the functions available in recipes: the HCL standard
// library and the file functions Terraform users expect. The file
// functions read only files inside dir, the recipe's directory (relative
// paths resolve there), and record every file they read in rec.
func functions(dir string, rec *sourceSet) map[string]function.Function {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs // the library functions get absolute paths: no "~" expansion
	}
	fs := map[string]function.Function{
		"abs": stdlib.AbsoluteFunc, "ceil": stdlib.CeilFunc, "floor": stdlib.FloorFunc,
		"log": stdlib.LogFunc, "max": stdlib.MaxFunc, "min": stdlib.MinFunc, "pow": stdlib.PowFunc,
		"parseint": stdlib.ParseIntFunc, "signum": stdlib.SignumFunc,
		"chomp": stdlib.ChompFunc, "format": stdlib.FormatFunc, "formatlist": stdlib.FormatListFunc,
		"indent": stdlib.IndentFunc, "join": stdlib.JoinFunc, "lower": stdlib.LowerFunc,
		"regex": stdlib.RegexFunc, "regexall": stdlib.RegexAllFunc, "replace": stdlib.ReplaceFunc,
		"split": stdlib.SplitFunc, "strrev": stdlib.ReverseFunc, "substr": stdlib.SubstrFunc,
		"title": stdlib.TitleFunc, "trim": stdlib.TrimFunc, "trimprefix": stdlib.TrimPrefixFunc,
		"trimspace": stdlib.TrimSpaceFunc, "trimsuffix": stdlib.TrimSuffixFunc, "upper": stdlib.UpperFunc,
		"chunklist": stdlib.ChunklistFunc, "coalesce": stdlib.CoalesceFunc, "coalescelist": stdlib.CoalesceListFunc,
		"compact": stdlib.CompactFunc, "concat": stdlib.ConcatFunc, "contains": stdlib.ContainsFunc,
		"distinct": stdlib.DistinctFunc, "element": stdlib.ElementFunc, "flatten": stdlib.FlattenFunc,
		"index": stdlib.IndexFunc, "keys": stdlib.KeysFunc, "length": stdlib.LengthFunc,
		"lookup": stdlib.LookupFunc, "merge": stdlib.MergeFunc, "range": stdlib.RangeFunc,
		"reverse": stdlib.ReverseListFunc, "setintersection": stdlib.SetIntersectionFunc,
		"setproduct": stdlib.SetProductFunc, "setunion": stdlib.SetUnionFunc, "slice": stdlib.SliceFunc,
		"sort": stdlib.SortFunc, "values": stdlib.ValuesFunc, "zipmap": stdlib.ZipmapFunc,
		"jsonencode": stdlib.JSONEncodeFunc, "jsondecode": stdlib.JSONDecodeFunc,
		"csvdecode": stdlib.CSVDecodeFunc, "formatdate": stdlib.FormatDateFunc,
		"tostring": stdlib.MakeToFunc(cty.String), "tonumber": stdlib.MakeToFunc(cty.Number),
		"tobool": stdlib.MakeToFunc(cty.Bool), "tolist": stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"toset": stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)), "tomap": stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
		"try": tryfunc.TryFunc, "can": tryfunc.CanFunc,
		"sha256": crypto.Sha256Func, "base64encode": encoding.Base64EncodeFunc,
		// Not encoding.Base64DecodeFunc: it logs what it decoded and
		// repeats its input in errors, and the input may be a secret.
		"base64decode": function.New(&function.Spec{
			Params: []function.Parameter{{Name: "str", Type: cty.String}},
			Type:   function.StaticReturnType(cty.String),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				b, err := base64.StdEncoding.DecodeString(args[0].AsString())
				if err != nil {
					return cty.NilVal, fmt.Errorf("not base64: %w", err)
				}
				return cty.StringVal(string(b)), nil
			},
		}),
	}
	fr := &fileReader{dir: dir, rec: rec}
	fs["file"] = fr.wrap(filesystem.MakeFileFunc(dir, false))
	fs["filebase64"] = fr.wrap(filesystem.MakeFileFunc(dir, true))
	fs["filesha256"] = function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			b, err := fr.read(args[0].AsString())
			if err != nil {
				return cty.NilVal, err
			}
			s := sha256.Sum256(b)
			return cty.StringVal(hex.EncodeToString(s[:])), nil
		},
	})
	// Not filesystem.MakeFileExistsFunc: it fails on a directory where
	// recipes expect false.
	fs["fileexists"] = function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}},
		Type:   function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return fr.exists(args[0].AsString())
		},
	})
	fs["templatefile"] = function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}, {Name: "vars", Type: cty.DynamicPseudoType}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := args[0].AsString()
			src, err := fr.read(p)
			if err != nil {
				return cty.NilVal, err
			}
			tmpl, diags := hclsyntax.ParseTemplate(src, p, hcl.InitialPos)
			if diags.HasErrors() {
				return cty.NilVal, diags
			}
			vars := args[1]
			if !vars.Type().IsObjectType() && !vars.Type().IsMapType() {
				return cty.NilVal, fmt.Errorf("templatefile: vars must be an object or map")
			}
			ctx := &hcl.EvalContext{Variables: map[string]cty.Value{}}
			for it := vars.ElementIterator(); it.Next(); {
				k, v := it.Element()
				ctx.Variables[k.AsString()] = v
			}
			val, diags := tmpl.Value(ctx)
			if diags.HasErrors() {
				return cty.NilVal, diags
			}
			return val, nil
		},
	})
	return fs
}

// fileReader reads the files that recipe functions name: only inside the
// recipe's directory (through an os.Root, so no symbolic link leads out),
// recording each file read.
type fileReader struct {
	dir string
	rec *sourceSet
}

// clean checks that p is a local path (relative, without a way out) and
// returns it slash-separated and cleaned.
func (fr *fileReader) clean(p string) (string, error) {
	if !filepath.IsLocal(p) {
		return "", fmt.Errorf("%q is not inside the recipe directory: file functions read only files there, named relative to it", p)
	}
	return filepath.ToSlash(filepath.Clean(p)), nil
}

// read returns the content of the file at p (relative to the recipe's
// directory) and records it.
func (fr *fileReader) read(p string) ([]byte, error) {
	rel, err := fr.clean(p)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(fr.dir)
	if err != nil {
		return nil, fmt.Errorf("opening the recipe directory: %w", err)
	}
	defer root.Close()
	b, err := root.ReadFile(filepath.FromSlash(rel))
	if err != nil {
		return nil, fmt.Errorf("reading %s (relative to the recipe directory): %w", p, err)
	}
	fr.rec.addBytes(SourceFile, rel, b)
	return b, nil
}

// exists says whether p names a regular file in the recipe's directory; it
// records the file when it does.
func (fr *fileReader) exists(p string) (cty.Value, error) {
	rel, err := fr.clean(p)
	if err != nil {
		return cty.NilVal, err
	}
	root, err := os.OpenRoot(fr.dir)
	if err != nil {
		return cty.NilVal, fmt.Errorf("opening the recipe directory: %w", err)
	}
	defer root.Close()
	st, err := root.Stat(filepath.FromSlash(rel))
	if err != nil || !st.Mode().IsRegular() {
		return cty.False, nil
	}
	if _, err := fr.read(p); err != nil {
		return cty.NilVal, err
	}
	return cty.True, nil
}

// wrap confines and records a library file function whose first parameter
// is a path: the file is read (and recorded) here first, so a path outside
// the recipe's directory never reaches lib, which then reads it by its
// absolute path (so that lib never expands a leading "~").
func (fr *fileReader) wrap(lib function.Function) function.Function {
	return function.New(&function.Spec{
		Description: lib.Description(),
		Params:      lib.Params(),
		VarParam:    lib.VarParam(),
		Type: func(args []cty.Value) (cty.Type, error) {
			return lib.ReturnTypeForValues(args)
		},
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			rel, err := fr.clean(args[0].AsString())
			if err != nil {
				return cty.NilVal, err
			}
			if _, err := fr.read(rel); err != nil {
				return cty.NilVal, err
			}
			abs := filepath.Join(fr.dir, filepath.FromSlash(rel))
			v, err := lib.Call(append([]cty.Value{cty.StringVal(abs)}, args[1:]...))
			if err != nil {
				// Say it as the recipe does, not with the host path.
				return cty.NilVal, errors.New(strings.ReplaceAll(err.Error(), abs, rel))
			}
			return v, nil
		},
	})
}
