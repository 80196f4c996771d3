package rootfs

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/internal/debroot"
	"github.com/cocobuild/cocobuild/recipes"
)

var packagesSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "suite", Required: true}, {Name: "packages"}, {Name: "exclude"}, {Name: "essential_only"},
}}

// debArch is dpkg's name of a rootfs architecture.
var debArch = map[string]string{"x86-64": "amd64", "arm64": "arm64", "": "amd64"}

// packagesSpec is the packages block in the tree step's parameters: the
// request, and the set the lock pins for it (nil when unpinned: the probe
// resolves it then).
type packagesSpec struct {
	Request debroot.Request `json:"request"`
	Set     *debroot.Set    `json:"set,omitempty"`
	rng     hcl.Range
}

// InstallsPackages implements debroot.RequesterKind.
func (Kind) InstallsPackages() bool { return true }

func (n *node) addr() string { return "rootfs." + n.name }

// PackageRequest implements debroot.Requester.
func (n *node) PackageRequest() (string, debroot.Request, bool) {
	if n.tree.Packages == nil {
		return "", debroot.Request{}, false
	}
	return n.addr(), n.tree.Packages.Request, true
}

// ResolvePackages implements debroot.Requester.
func (n *node) ResolvePackages(ctx context.Context) (*debroot.Set, error) {
	if n.archive == nil || n.tree.Packages == nil {
		return nil, fmt.Errorf("%s: no Debian archive to resolve packages with", n.addr())
	}
	return n.archive.Resolve(ctx, n.tree.Packages.Request)
}

func (n *node) decodePackages(d *decoder, blk *hcl.Block) {
	if n.tree.Packages != nil {
		d.diags = append(d.diags, recipes.Diag("Duplicate packages block", "A rootfs has at most one packages block: list every package in it.", blk.DefRange))
		return
	}
	c, diags := blk.Body.Content(packagesSchema)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return
	}
	p := &packagesSpec{rng: blk.DefRange}
	at := c.Attributes
	d.str(at, "suite", &p.Request.Suite)
	for _, l := range []struct {
		name string
		dst  *[]string
	}{{"packages", &p.Request.Packages}, {"exclude", &p.Request.Exclude}} {
		if a, ok := at[l.name]; ok {
			d.diags = append(d.diags, recipes.DecodeExpr(a.Expr, d.ctx, cty.List(cty.String), l.dst)...)
		}
	}
	if a, ok := at["essential_only"]; ok {
		d.diags = append(d.diags, recipes.DecodeExpr(a.Expr, d.ctx, cty.Bool, &p.Request.EssentialOnly)...)
	}
	if d.diags.HasErrors() {
		return
	}
	if err := debroot.CheckRequest(p.Request); err != nil {
		d.diags = append(d.diags, recipes.Diag("Invalid packages block", err.Error()+".", blk.DefRange))
		return
	}
	n.tree.Packages = p
}

// pinPackages takes the set the lock pins for the packages block, once the
// architecture is known.
func (n *node) pinPackages(d *decoder) {
	p := n.tree.Packages
	if p == nil {
		return
	}
	p.Request.Arch = debArch[n.arch]
	if n.archive == nil {
		return // decoded to validate only
	}
	set, err := n.archive.Pinned(n.addr(), p.Request)
	switch {
	case err != nil:
		d.diags = append(d.diags, recipes.Diag("Packages not in the lock", err.Error(), p.rng))
	case set == nil && !n.archive.Unpinned():
		d.diags = append(d.diags, recipes.Diag("Packages are not pinned", fmt.Sprintf("%s installs Debian packages and %s pins none for this request: run `cocobuild lock` to record every package's version and sha256 (or build with --allow-unpinned, never for a release).", n.addr(), recipes.LockFileName), p.rng))
	}
	p.Set = set
}

// probePackages is the packages block's part of the tree step's probe:
// mmdebstrap's version, and an unpinned set resolved now.
func (n *node) probePackages(ctx context.Context) (string, error) {
	p := n.tree.Packages
	v, err := mmdebstrapVersion(ctx)
	if err != nil {
		return "", fmt.Errorf("%s: %w", n.addr(), err)
	}
	if p.Set == nil {
		if n.archive == nil {
			return "", fmt.Errorf("%s: no Debian archive to resolve packages with", n.addr())
		}
		set, err := n.archive.Resolve(ctx, p.Request)
		if err != nil {
			return "", fmt.Errorf("%s: %w", n.addr(), err)
		}
		n.resolved = set
		b, _ := json.Marshal(set)
		return v + " unpinned " + string(b), nil
	}
	return v, nil
}

// mmdebstrapVersion is `mmdebstrap --version`, remembered across builds
// while the script is unchanged (it runs apt-config and dpkg: a tenth of a
// second that a no-op rebuild need not pay).
func mmdebstrapVersion(ctx context.Context) (string, error) {
	bin, err := exec.LookPath("mmdebstrap")
	if err != nil {
		return debroot.Version(ctx) // says which package to install
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return "", err
	}
	return recipes.Memoize(ctx, "mmdebstrap-version "+bin, func() (string, []string, error) {
		v, err := debroot.Version(ctx)
		return v, []string{bin}, err
	})
}

// installPackages installs the pinned (or resolved) set into a tar in dir
// and returns its path.
func (n *node) installPackages(ctx context.Context, sc *recipes.StepContext, dir string) (string, error) {
	p := n.tree.Packages
	set := p.Set
	if set == nil {
		set = n.resolved
	}
	if set == nil || n.archive == nil {
		return "", fmt.Errorf("%s: the packages are neither pinned nor resolved", n.addr())
	}
	mode, err := debroot.ChooseMode(debroot.ReadHost(os.Geteuid()))
	if err != nil {
		return "", fmt.Errorf("%s: %w", n.addr(), err)
	}
	fmt.Fprintf(sc.Log, "%s: %d Debian packages of %s; %s\n", n.addr(), len(set.Packages), set.Suite, mode.Why)
	debs, err := n.archive.Debs(ctx, set.Suite, set.Packages)
	if err != nil {
		return "", fmt.Errorf("%s: %w", n.addr(), err)
	}
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "packages.tar")
	r := debroot.Run{Mode: mode, Epoch: sc.Epoch, Work: work, Log: sc.Log}
	if err := r.Install(ctx, p.Request, set, debs, out); err != nil {
		return "", fmt.Errorf("%s: %w", n.addr(), err)
	}
	return out, nil
}

// aptPartialDirs are made by mmdebstrap for apt's downloads, owned by
// root in root mode but by the build host's _apt uid in fakechroot mode:
// root's in the image, whichever mode built it.
var aptPartialDirs = []string{"/var/cache/apt/archives/partial", "/var/lib/apt/lists/partial"}

// devContents are the device nodes and links mmdebstrap puts into /dev
// for its chroot: a guest mounts devtmpfs there, and making device nodes
// needs root, so the tree keeps /dev itself, empty, in every mode.
const devContents = "/dev/*"

func normalisePackageTree(t *Tree) {
	zero := 0
	for _, d := range aptPartialDirs {
		p, _ := ParsePattern(d)
		t.Override(p, Attrs{UID: &zero, GID: &zero})
	}
	p, _ := ParsePattern(devContents)
	t.Exclude(p)
}
