package childenv_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// execSites checks one parsed file of non-test code and returns its
// violations ("file:line: what") and how many exec.Command sites it has.
// The rules: only internal/childenv reads os.Environ (so no child can get
// the environment unfiltered); nothing starts a process but through
// os/exec; every exec.Command/CommandContext result gets its Env set in
// the function that makes it (a nil Env inherits everything); no Env is set
// to nil. procgroup.Command sets Env itself (TestProcgroupEnv).
func execSites(fset *token.FileSet, f *ast.File, allowEnviron bool) (violations []string, sites int) {
	imports := map[string]string{}
	for _, im := range f.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		name := p[strings.LastIndex(p, "/")+1:]
		if im.Name != nil {
			name = im.Name.Name
		}
		imports[name] = p
	}
	pkgFunc := func(e ast.Expr) string {
		sel, ok := e.(*ast.SelectorExpr)
		if !ok {
			return ""
		}
		id, ok := sel.X.(*ast.Ident)
		if !ok || imports[id.Name] == "" {
			return ""
		}
		return imports[id.Name] + "." + sel.Sel.Name
	}
	bad := func(n ast.Node, format string, args ...any) {
		violations = append(violations, fmt.Sprintf("%s: %s", fset.Position(n.Pos()), fmt.Sprintf(format, args...)))
	}
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Body == nil {
			continue
		}
		// The variables exec.Command results are bound to, and the
		// variables whose Env the function sets.
		bound := map[*ast.CallExpr]string{}
		envSet := map[string]bool{}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			as, ok := n.(*ast.AssignStmt)
			if !ok {
				return true
			}
			for i, l := range as.Lhs {
				if sel, ok := l.(*ast.SelectorExpr); ok && sel.Sel.Name == "Env" {
					if id, ok := sel.X.(*ast.Ident); ok {
						envSet[id.Name] = true
					}
					if len(as.Rhs) == len(as.Lhs) {
						if id, ok := as.Rhs[i].(*ast.Ident); ok && id.Name == "nil" {
							bad(as, "Env set to nil: the child inherits every secret; use childenv.Environ(ctx)")
						}
					}
				}
				if len(as.Rhs) == len(as.Lhs) {
					if c, ok := as.Rhs[i].(*ast.CallExpr); ok {
						if id, ok := l.(*ast.Ident); ok {
							bound[c] = id.Name
						}
					}
				}
			}
			return true
		})
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				if pkgFunc(n.Type) == "os/exec.Cmd" {
					bad(n, "exec.Cmd literal: use exec.CommandContext and set Env from childenv.Environ(ctx)")
				}
			case *ast.CallExpr:
				switch fn := pkgFunc(n.Fun); fn {
				case "os.Environ", "syscall.Environ":
					if !allowEnviron {
						bad(n, "%s outside internal/childenv: use childenv.Environ(ctx), which leaves the signing secrets out", fn)
					}
				case "os.StartProcess", "syscall.Exec", "syscall.ForkExec", "syscall.StartProcess":
					bad(n, "%s: start processes with os/exec and childenv.Environ(ctx)", fn)
				case "os/exec.Command", "os/exec.CommandContext":
					sites++
					v, ok := bound[n]
					if !ok {
						bad(n, "%s result used without setting its Env (it would inherit every secret): bind it and set cmd.Env from childenv.Environ(ctx)", fn)
					} else if !envSet[v] {
						bad(n, "%s: %s.Env is never set (it would inherit every secret): set it from childenv.Environ(ctx)", fn, v)
					}
				}
			}
			return true
		})
	}
	return violations, sites
}

// moduleRoot is the directory of cocobuild's go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if d == filepath.Dir(d) {
			t.Fatal("no go.mod above the test's directory")
		}
		d = filepath.Dir(d)
	}
}

// TestEveryExecSiteFiltersSecrets runs execSites on every non-test Go file
// of the module.
func TestEveryExecSiteFiltersSecrets(t *testing.T) {
	root := moduleRoot(t)
	fset := token.NewFileSet()
	total, files := 0, 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(rel, "internal/testenv/") {
			// Test support (the tools and registries tests start), linked
			// only into test binaries, as the check below keeps it.
			return nil
		}
		for _, im := range f.Imports {
			if im.Path.Value == `"github.com/cocobuild/cocobuild/internal/testenv"` {
				t.Errorf("%s imports internal/testenv: only tests may (its processes are not checked here)", rel)
			}
		}
		v, n := execSites(fset, f, rel == "internal/childenv/childenv.go")
		for _, msg := range v {
			t.Error(strings.TrimPrefix(msg, root+string(filepath.Separator)))
		}
		total += n
		files++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The module starts rootfs tools, qemu-img, the kernel toolchain's
	// version probes, apt-cache, cocobuild (repro) and the bench's
	// processes through os/exec: a scan that finds far fewer read nothing.
	if files < 100 || total < 8 {
		t.Errorf("scanned %d files with %d exec.Command sites, want at least 100 and 8", files, total)
	}
}

// TestExecSitesRules: the checker finds each kind of leak.
func TestExecSitesRules(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"env from childenv", `cmd := exec.CommandContext(ctx, "x")
	cmd.Env = append(childenv.Environ(ctx), "A=1")
	cmd.Run()`, nil},
		{"fixed env in a closure", `f := func() { cmd := exec.Command("x"); cmd.Dir, cmd.Env = "/", []string{"PATH=/bin"}; cmd.Run() }
	f()`, nil},
		{"two branches, one assignment", `var cmd *exec.Cmd
	if ctx != nil { cmd = exec.Command("a") } else { cmd = exec.CommandContext(ctx, "b") }
	cmd.Env = childenv.Environ(ctx)`, nil},
		{"env never set", `cmd := exec.Command("x")
	cmd.Run()`, []string{"x.go:3:9: os/exec.Command: cmd.Env is never set"}},
		{"chained", `exec.CommandContext(ctx, "x", "--version").Output()`, []string{"x.go:3:2: os/exec.CommandContext result used without setting its Env"}},
		{"os.Environ", `cmd := exec.Command("x")
	cmd.Env = append(os.Environ(), "A=1")`, []string{"x.go:4:19: os.Environ outside internal/childenv"}},
		{"nil env", `cmd := exec.Command("x")
	cmd.Env = nil`, []string{"x.go:4:2: Env set to nil"}},
		{"literal", `c := &exec.Cmd{Path: "/bin/x"}
	c.Run()`, []string{"x.go:3:8: exec.Cmd literal"}},
		{"StartProcess", `os.StartProcess("/bin/x", nil, nil)`, []string{"x.go:3:2: os.StartProcess"}},
		{"syscall.Exec", `syscall.Exec("/bin/x", nil, nil)`, []string{"x.go:3:2: syscall.Exec"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "package x\nfunc f(ctx context.Context) {\n\t" + tc.src + "\n}\n"
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, "x.go", src, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			f.Imports = nil // the checker reads only the import paths
			for _, p := range []string{"os", "os/exec", "syscall", "context"} {
				f.Imports = append(f.Imports, &ast.ImportSpec{Path: &ast.BasicLit{Kind: token.STRING, Value: strconv.Quote(p)}})
			}
			got, _ := execSites(fset, f, false)
			var prefixes []string
			for i, g := range got {
				if i < len(tc.want) && strings.HasPrefix(g, tc.want[i]) {
					g = tc.want[i]
				}
				prefixes = append(prefixes, g)
			}
			if diff := cmp.Diff(tc.want, prefixes); diff != "" {
				t.Errorf("violations (-want +got):\n%s", diff)
			}
		})
	}
}
