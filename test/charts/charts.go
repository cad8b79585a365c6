// Package charts stages Helm charts for Meshplane's tests: the Istio fixture
// charts written in this repository (test/charts/istio), and the real
// Linkerd and Cilium charts read from the Go module cache. Nothing staged is
// committed: Stage writes packaged charts (or unpacked chart directories)
// under the versions a test asks for into a directory the test owns, from
// which test/chartrepo serves them or the engine loads them directly.
//
// The Istio base fixture gets the real Istio CRDs in its crds/ directory at
// staging time, from $MESHPLANE_CRD_DIR/istio (hack/collectcrds) or, when
// that is missing, from istio.io/api in the module cache. crds/ (rather
// than templates) means Helm creates the CRDs when missing and never
// replaces or deletes them, so the chart installs into envtest servers that
// already carry the Istio CRDs.
package charts

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"

	"github.com/meshplane/meshplane/test/cluster"
)

// Chart names, as they appear in chart repositories.
const (
	IstioBase           = "base"
	Istiod              = "istiod"
	IstioCNI            = "cni"
	Ztunnel             = "ztunnel"
	LinkerdCRDs         = "linkerd-crds"
	LinkerdControlPlane = "linkerd-control-plane"
	LinkerdMulticluster = "linkerd-multicluster"
	Cilium              = "cilium"
)

// IstioCharts lists the Istio fixture charts.
var IstioCharts = []string{IstioBase, Istiod, IstioCNI, Ztunnel}

// Module paths of the real charts.
const (
	linkerdModule = "github.com/linkerd/linkerd2"
	ciliumModule  = "github.com/cilium/cilium"
	istioAPI      = "istio.io/api"
)

// Chart says which chart to stage under which version.
type Chart struct {
	// Name is one of the chart name constants.
	Name string
	// Version is the chart version to stage under.
	Version string
	// AppVersion defaults to Version for Istio and Cilium, and to the
	// Linkerd edge name (2026.1.1 -> edge-26.1.1) for Linkerd.
	AppVersion string
	// Unpacked writes a chart directory <dir>/<name>-<version>/ instead of
	// a packaged <dir>/<name>-<version>.tgz.
	Unpacked bool
}

// Stage writes the charts into dir (created if missing) and returns their
// paths, in order. Failures end the test.
func Stage(tb testing.TB, dir string, charts ...Chart) []string {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	paths := make([]string, 0, len(charts))
	for _, c := range charts {
		p, err := stage(dir, c)
		if err != nil {
			tb.Fatalf("staging chart %s %s: %v", c.Name, c.Version, err)
		}
		paths = append(paths, p)
	}
	return paths
}

// StageIstio stages the four Istio fixture charts at each version.
func StageIstio(tb testing.TB, dir string, versions ...string) []string {
	tb.Helper()
	var cs []Chart
	for _, v := range versions {
		for _, n := range IstioCharts {
			cs = append(cs, Chart{Name: n, Version: v})
		}
	}
	return Stage(tb, dir, cs...)
}

// StageLinkerd stages linkerd-crds and linkerd-control-plane at each chart
// version (e.g. 2026.1.1; see LinkerdChartVersion).
func StageLinkerd(tb testing.TB, dir string, versions ...string) []string {
	tb.Helper()
	var cs []Chart
	for _, v := range versions {
		cs = append(cs, Chart{Name: LinkerdCRDs, Version: v}, Chart{Name: LinkerdControlPlane, Version: v})
	}
	return Stage(tb, dir, cs...)
}

// StageCilium stages the cilium chart at each version.
func StageCilium(tb testing.TB, dir string, versions ...string) []string {
	tb.Helper()
	cs := make([]Chart, 0, len(versions))
	for _, v := range versions {
		cs = append(cs, Chart{Name: Cilium, Version: v})
	}
	return Stage(tb, dir, cs...)
}

// LinkerdChartVersion maps a Linkerd edge release name to its chart version:
// edge-YY.M.N -> 20YY.M.N. Other strings are returned unchanged.
func LinkerdChartVersion(edge string) string {
	if rest, ok := strings.CutPrefix(edge, "edge-"); ok {
		return "20" + rest
	}
	return edge
}

// LinkerdEdgeVersion is the inverse of LinkerdChartVersion: 20YY.M.N ->
// edge-YY.M.N.
func LinkerdEdgeVersion(chartVersion string) string {
	if rest, ok := strings.CutPrefix(chartVersion, "20"); ok && strings.Count(chartVersion, ".") == 2 {
		return "edge-" + rest
	}
	return chartVersion
}

func stage(dir string, c Chart) (string, error) {
	ch, err := Load(c.Name)
	if err != nil {
		return "", err
	}
	ch.Metadata.Version = c.Version
	switch {
	case c.AppVersion != "":
		ch.Metadata.AppVersion = c.AppVersion
	case c.Name == LinkerdCRDs || c.Name == LinkerdControlPlane || c.Name == LinkerdMulticluster:
		ch.Metadata.AppVersion = LinkerdEdgeVersion(c.Version)
	default:
		ch.Metadata.AppVersion = c.Version
	}
	if err := ch.Validate(); err != nil {
		return "", err
	}
	if c.Unpacked {
		out := filepath.Join(dir, fmt.Sprintf("%s-%s", c.Name, c.Version))
		if err := os.RemoveAll(out); err != nil {
			return "", err
		}
		tmp, err := os.MkdirTemp(dir, ".stage-")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(tmp)
		if err := chartutil.SaveDir(ch, tmp); err != nil {
			return "", err
		}
		if err := os.Rename(filepath.Join(tmp, c.Name), out); err != nil {
			return "", err
		}
		return out, nil
	}
	return chartutil.Save(ch, dir)
}

// Load returns a fresh copy of the named chart, unversioned (the fixture
// charts say 0.0.0-fixture; the real charts carry their module's
// placeholder or release version), with the Istio CRDs added to base and the
// partials dependency resolved for the Linkerd charts.
func Load(name string) (*chartv2.Chart, error) {
	switch name {
	case IstioBase, Istiod, IstioCNI, Ztunnel:
		dir, err := IstioChartDir(name)
		if err != nil {
			return nil, err
		}
		ch, err := loader.LoadDir(dir)
		if err != nil {
			return nil, err
		}
		if name == IstioBase {
			crds, err := istioCRDs()
			if err != nil {
				return nil, err
			}
			ch.Files = append(ch.Files, &common.File{Name: "crds/crd-all.gen.yaml", Data: crds})
		}
		return ch, nil
	case LinkerdCRDs, LinkerdControlPlane, LinkerdMulticluster:
		mod, err := moduleDir(linkerdModule)
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(mod, "charts", name)
		if name == LinkerdMulticluster {
			dir = filepath.Join(mod, "multicluster", "charts", name)
		}
		ch, err := loader.LoadDir(dir)
		if err != nil {
			return nil, err
		}
		partials, err := loader.LoadDir(filepath.Join(mod, "charts", "partials"))
		if err != nil {
			return nil, err
		}
		ch.SetDependencies(partials)
		for _, d := range ch.Metadata.Dependencies {
			// The dependency is now vendored in charts/.
			d.Repository = ""
		}
		ch.Lock = nil
		return ch, nil
	case Cilium:
		mod, err := moduleDir(ciliumModule)
		if err != nil {
			return nil, err
		}
		return loader.LoadDir(filepath.Join(mod, "install", "kubernetes", "cilium"))
	default:
		return nil, fmt.Errorf("unknown chart %q", name)
	}
}

// IstioChartDir returns the directory of an Istio fixture chart in this
// repository.
func IstioChartDir(name string) (string, error) {
	root, err := cluster.RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "test", "charts", "istio", name), nil
}

// istioCRDs returns the Istio CRDs as one YAML stream.
func istioCRDs() ([]byte, error) {
	if base, err := cluster.CRDDir(); err == nil {
		dir := filepath.Join(base, "istio")
		if entries, err := os.ReadDir(dir); err == nil {
			var names []string
			for _, e := range entries {
				if !e.IsDir() && (strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
					names = append(names, e.Name())
				}
			}
			sort.Strings(names)
			if len(names) > 0 {
				var buf bytes.Buffer
				for _, n := range names {
					data, err := os.ReadFile(filepath.Join(dir, n))
					if err != nil {
						return nil, err
					}
					buf.WriteString("---\n")
					buf.Write(data)
					if !bytes.HasSuffix(data, []byte("\n")) {
						buf.WriteByte('\n')
					}
				}
				return buf.Bytes(), nil
			}
		}
	}
	mod, err := moduleDir(istioAPI)
	if err != nil {
		return nil, fmt.Errorf("the Istio CRDs are neither in $%s/istio nor readable from the module cache: %w", cluster.EnvCRDDir, err)
	}
	return os.ReadFile(filepath.Join(mod, "kubernetes", "customresourcedefinitions.gen.yaml"))
}

var (
	modMu   sync.Mutex
	modDirs = map[string]string{}
)

// moduleDir returns the module cache directory of a module go.mod requires.
func moduleDir(path string) (string, error) {
	modMu.Lock()
	defer modMu.Unlock()
	if d, ok := modDirs[path]; ok {
		return d, nil
	}
	root, err := cluster.RepoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(goBin(), "list", "-m", "-f", "{{.Dir}}", path)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %v: %s", path, err, strings.TrimSpace(stderr.String()))
	}
	d := strings.TrimSpace(string(out))
	if d == "" {
		return "", fmt.Errorf("module %s is not in the module cache: run `go mod download %s`", path, path)
	}
	modDirs[path] = d
	return d, nil
}

// goBin is the go command of the toolchain on PATH, as `go env GOROOT`
// names it (go test puts its own toolchain first on PATH); "go" when that
// cannot be found.
var goBin = sync.OnceValue(func() string {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return "go"
	}
	p := filepath.Join(strings.TrimSpace(string(out)), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		return "go"
	}
	return p
})

// StageIstioDir is StageIstio for programs without a testing.TB (the demo).
func StageIstioDir(dir string, versions ...string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, v := range versions {
		for _, n := range IstioCharts {
			if _, err := stage(dir, Chart{Name: n, Version: v}); err != nil {
				return fmt.Errorf("staging chart %s %s: %w", n, v, err)
			}
		}
	}
	return nil
}
