// Command collectcrds writes the CustomResourceDefinitions of the meshes
// Meshplane drives into a directory, so that envtest API servers validate every
// object Meshplane generates against the real schemas.
//
// The CRDs are read from the Go module cache, at the versions go.mod pins:
//
//	istio.io/api               kubernetes/customresourcedefinitions.gen.yaml -> <out>/istio
//	sigs.k8s.io/gateway-api    config/crd/standard                          -> <out>/gateway-api/standard
//	                           config/crd/experimental                      -> <out>/gateway-api/experimental
//	github.com/cilium/cilium   pkg/k8s/apis/cilium.io/client/crds/v2        -> <out>/cilium
//	                           pkg/k8s/apis/cilium.io/client/crds/v2alpha1  -> <out>/cilium
//	github.com/linkerd/linkerd2 charts/linkerd-crds, rendered with Helm,
//	  and the multicluster Link CRD                                        -> <out>/linkerd
//	sigs.k8s.io/mcs-api        config/crd (ServiceExport, ServiceImport)    -> <out>/mcs
//
// Every output directory holds one file per CRD, named after the CRD, and
// nothing else: documents of other kinds in the sources (such as Gateway API's
// ValidatingAdmissionPolicy) are left out. The program is idempotent: each
// output directory is replaced as a whole, and <out>/versions.txt records the
// module versions the CRDs came from.
//
// Usage:
//
//	go run ./hack/collectcrds -out .cache/crds
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartv2util "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/engine"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Module paths of the CRD sources.
const (
	istioModule   = "istio.io/api"
	gatewayModule = "sigs.k8s.io/gateway-api"
	ciliumModule  = "github.com/cilium/cilium"
	linkerdModule = "github.com/linkerd/linkerd2"
	mcsModule     = "sigs.k8s.io/mcs-api"
)

// crdKind is the kind every written document has.
const crdKind = "CustomResourceDefinition"

// linkerdRelease is the release name and namespace the Linkerd CRD chart is
// rendered with; they only end up in labels.
const (
	linkerdRelease   = "linkerd-crds"
	linkerdNamespace = "linkerd"
)

// crd is one CustomResourceDefinition document as it appears in its source.
type crd struct {
	name string
	raw  []byte
}

// output is one directory of the result and the CRDs it receives.
type output struct {
	dir    string // relative to -out
	source string // human readable origin, for the summary
	crds   []crd
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("collectcrds: ")
	out := flag.String("out", ".cache/crds", "directory to write the CRDs into")
	flag.Parse()
	if flag.NArg() != 0 {
		log.Fatalf("unexpected arguments %q", flag.Args())
	}
	if err := run(*out); err != nil {
		log.Fatal(err)
	}
}

func run(out string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if !filepath.IsAbs(out) {
		cwd, err := os.Getwd()
		if err != nil {
			return err
		}
		out = filepath.Join(cwd, out)
	}

	mods := map[string]module{}
	for _, path := range []string{istioModule, gatewayModule, ciliumModule, linkerdModule, mcsModule} {
		m, err := resolveModule(root, path)
		if err != nil {
			return err
		}
		mods[path] = m
	}

	var outputs []output
	add := func(dir, source string, collect func() ([]crd, error)) error {
		crds, err := collect()
		if err != nil {
			return fmt.Errorf("%s: %w", source, err)
		}
		if len(crds) == 0 {
			return fmt.Errorf("%s: no CustomResourceDefinitions found", source)
		}
		outputs = append(outputs, output{dir: dir, source: source, crds: crds})
		return nil
	}

	istio := mods[istioModule]
	if err := add("istio", istio.String(), func() ([]crd, error) {
		return crdsFromFiles(filepath.Join(istio.Dir, "kubernetes", "customresourcedefinitions.gen.yaml"))
	}); err != nil {
		return err
	}
	gw := mods[gatewayModule]
	for _, channel := range []string{"standard", "experimental"} {
		if err := add(filepath.Join("gateway-api", channel), gw.String()+" ("+channel+")", func() ([]crd, error) {
			return crdsFromDirs(filepath.Join(gw.Dir, "config", "crd", channel))
		}); err != nil {
			return err
		}
	}
	cilium := mods[ciliumModule]
	crdRoot := filepath.Join(cilium.Dir, "pkg", "k8s", "apis", "cilium.io", "client", "crds")
	if err := add("cilium", cilium.String(), func() ([]crd, error) {
		return crdsFromDirs(filepath.Join(crdRoot, "v2"), filepath.Join(crdRoot, "v2alpha1"))
	}); err != nil {
		return err
	}
	linkerd := mods[linkerdModule]
	if err := add("linkerd", linkerd.String(), func() ([]crd, error) {
		crds, err := renderChartCRDs(filepath.Join(linkerd.Dir, "charts", "linkerd-crds"))
		if err != nil {
			return nil, err
		}
		// The Link CRD of the multicluster extension (service federation
		// writes Links), from its chart template without the two template
		// lines of its metadata.
		link, err := templateCRD(filepath.Join(linkerd.Dir, "multicluster", "charts", "linkerd-multicluster", "templates", "link-crd.yaml"))
		if err != nil {
			return nil, err
		}
		return append(crds, link...), nil
	}); err != nil {
		return err
	}
	mcs := mods[mcsModule]
	if err := add("mcs", mcs.String(), func() ([]crd, error) {
		return crdsFromDirs(filepath.Join(mcs.Dir, "config", "crd"))
	}); err != nil {
		return err
	}

	// Everything is collected before anything is written, so a failure leaves
	// the previous result untouched.
	for _, o := range outputs {
		if err := writeOutput(filepath.Join(out, o.dir), o.crds); err != nil {
			return err
		}
	}
	if err := writeVersions(out, mods); err != nil {
		return err
	}

	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "CRDs written to %s\n", out)
	total := 0
	for _, o := range outputs {
		fmt.Fprintf(w, "  %-26s %3d  %s\n", o.dir, len(o.crds), o.source)
		total += len(o.crds)
	}
	fmt.Fprintf(w, "  %-26s %3d\n", "total", total)
	return w.Flush()
}

// module is the part of `go list -m -json` this program uses.
type module struct {
	Path    string
	Version string
	Dir     string
}

// String returns path@version.
func (m module) String() string { return m.Path + "@" + m.Version }

// moduleRoot returns the directory of the main module's go.mod, found by
// walking up from the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod found above the working directory; run from the repository")
		}
		dir = parent
	}
}

// resolveModule returns the version of path that the main module requires
// and its directory in the module cache, downloading it if necessary.
func resolveModule(root, path string) (module, error) {
	var m module
	if err := goJSON(root, &m, "list", "-m", "-json", path); err != nil {
		return m, err
	}
	if m.Version == "" {
		return m, fmt.Errorf("module %s has no version in %s/go.mod", path, root)
	}
	if m.Dir == "" {
		var d module
		if err := goJSON(root, &d, "mod", "download", "-json", m.Path+"@"+m.Version); err != nil {
			return m, err
		}
		m.Dir = d.Dir
	}
	if m.Dir == "" {
		return m, fmt.Errorf("module %s is not in the module cache after go mod download", m)
	}
	return m, nil
}

// goJSON runs the go command in dir and decodes its JSON output into v.
func goJSON(dir string, v any, args ...string) error {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	if err := json.Unmarshal(stdout, v); err != nil {
		return fmt.Errorf("go %s: decoding output: %w", strings.Join(args, " "), err)
	}
	return nil
}

// crdsFromDirs returns the CRDs in the YAML files directly inside dirs.
func crdsFromDirs(dirs ...string) ([]crd, error) {
	var files []string
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if !e.IsDir() && isYAML(e.Name()) {
				files = append(files, filepath.Join(dir, e.Name()))
			}
		}
	}
	return crdsFromFiles(files...)
}

// crdsFromFiles returns the CRDs in the given multi-document YAML files.
func crdsFromFiles(files ...string) ([]crd, error) {
	var all []crd
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		crds, err := crdsFromYAML(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		all = append(all, crds...)
	}
	return all, nil
}

// templateCRD reads a chart template that holds a CRD whose only template
// directives are whole lines of its metadata (labels and annotations
// added by values), and returns the CRD without those lines.
func templateCRD(file string) ([]crd, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var kept []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "{{") {
			continue
		}
		kept = append(kept, line)
	}
	crds, err := crdsFromYAML([]byte(strings.Join(kept, "\n")))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return crds, nil
}

// crdsFromYAML splits a multi-document YAML stream and keeps the
// CustomResourceDefinition documents, byte for byte.
func crdsFromYAML(data []byte) ([]crd, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var crds []crd
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return crds, nil
		}
		if err != nil {
			return nil, err
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			return nil, fmt.Errorf("parsing document: %w", err)
		}
		if head.Kind != crdKind {
			continue
		}
		if !strings.HasPrefix(head.APIVersion, "apiextensions.k8s.io/") || head.Metadata.Name == "" {
			return nil, fmt.Errorf("malformed CustomResourceDefinition %q (apiVersion %q)", head.Metadata.Name, head.APIVersion)
		}
		crds = append(crds, crd{name: head.Metadata.Name, raw: trimDocument(doc)})
	}
}

// trimDocument removes a leading document separator and surrounding blank
// lines, so each written file is one clean document.
func trimDocument(doc []byte) []byte {
	s := strings.TrimSpace(string(doc))
	s = strings.TrimPrefix(s, "---")
	return []byte(strings.TrimSpace(s) + "\n")
}

// renderChartCRDs renders the chart in dir the way `helm install` would with
// default values and returns the CRDs among the rendered documents, including
// those in the chart's crds/ directory.
//
// Dependencies declared with a file:// repository that are not vendored in
// the chart's charts/ directory are loaded from that path: Linkerd's charts
// share the `partials` library this way, and the module cache is read-only,
// so `helm dependency build` cannot be used.
func renderChartCRDs(dir string) ([]crd, error) {
	c, err := loadChart(dir)
	if err != nil {
		return nil, err
	}
	// Same order as action.Install: dependencies first, on the user values
	// (none), then the values the templates see.
	if err := chartv2util.ProcessDependencies(c, common.Values{}); err != nil {
		return nil, fmt.Errorf("dependencies of chart %s: %w", c.Name(), err)
	}
	vals, err := chartutil.ToRenderValues(c, map[string]any{}, common.ReleaseOptions{
		Name:      linkerdRelease,
		Namespace: linkerdNamespace,
		Revision:  1,
		IsInstall: true,
	}, common.DefaultCapabilities.Copy())
	if err != nil {
		return nil, fmt.Errorf("values of chart %s: %w", c.Name(), err)
	}
	rendered, err := engine.Render(c, vals)
	if err != nil {
		return nil, fmt.Errorf("rendering chart %s: %w", c.Name(), err)
	}

	var crds []crd
	for _, obj := range c.CRDObjects() {
		found, err := crdsFromYAML(obj.File.Data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", obj.Filename, err)
		}
		crds = append(crds, found...)
	}
	names := make([]string, 0, len(rendered))
	for name := range rendered {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !isYAML(name) {
			continue // NOTES.txt and the like
		}
		found, err := crdsFromYAML([]byte(rendered[name]))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		crds = append(crds, found...)
	}
	return crds, nil
}

// loadChart loads the chart in dir and, recursively, its file:// dependencies
// that are missing from its charts/ directory.
func loadChart(dir string) (*chart.Chart, error) {
	c, err := loader.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("loading chart %s: %w", dir, err)
	}
	present := map[string]bool{}
	for _, d := range c.Dependencies() {
		present[d.Name()] = true
	}
	for _, dep := range c.Metadata.Dependencies {
		if present[dep.Name] {
			continue
		}
		rel, ok := strings.CutPrefix(dep.Repository, "file://")
		if !ok {
			return nil, fmt.Errorf("chart %s: dependency %s from %q is not vendored and not a file:// dependency", c.Name(), dep.Name, dep.Repository)
		}
		depDir := rel
		if !filepath.IsAbs(depDir) {
			depDir = filepath.Join(dir, rel)
		}
		sub, err := loadChart(depDir)
		if err != nil {
			return nil, fmt.Errorf("chart %s: dependency %s: %w", c.Name(), dep.Name, err)
		}
		if sub.Name() != dep.Name {
			return nil, fmt.Errorf("chart %s: dependency %s: %s holds chart %s", c.Name(), dep.Name, depDir, sub.Name())
		}
		c.AddDependency(sub)
		present[dep.Name] = true
	}
	return c, nil
}

// writeOutput replaces dir with one file per CRD.
func writeOutput(dir string, crds []crd) error {
	seen := map[string]bool{}
	for _, c := range crds {
		if seen[c.name] {
			return fmt.Errorf("%s: CustomResourceDefinition %s appears twice", dir, c.name)
		}
		seen[c.name] = true
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, c := range crds {
		if err := os.WriteFile(filepath.Join(dir, c.name+".yaml"), c.raw, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeVersions records the module versions the CRDs were read from.
func writeVersions(out string, mods map[string]module) error {
	paths := make([]string, 0, len(mods))
	for p := range mods {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var b strings.Builder
	b.WriteString("# Written by hack/collectcrds; module versions the CRDs come from.\n")
	for _, p := range paths {
		b.WriteString(mods[p].String() + "\n")
	}
	return os.WriteFile(filepath.Join(out, "versions.txt"), []byte(b.String()), 0o644)
}

// isYAML reports whether name has a YAML extension.
func isYAML(name string) bool {
	switch filepath.Ext(name) {
	case ".yaml", ".yml":
		return true
	}
	return false
}
