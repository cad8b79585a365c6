package helm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"sort"
	"strings"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/kustomize/kyaml/kio"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
	"sigs.k8s.io/yaml"
)

// KeepPolicyAnnotation and KeepPolicy make Helm leave an object in place
// when the release is uninstalled.
const (
	KeepPolicyAnnotation = "helm.sh/resource-policy"
	KeepPolicy           = "keep"
)

// keepCRDs is a post-renderer that marks every CustomResourceDefinition
// helm.sh/resource-policy: keep.
type keepCRDs struct{}

// Run implements postrenderer.PostRenderer.
func (keepCRDs) Run(in *bytes.Buffer) (*bytes.Buffer, error) {
	out, _, err := keepCRDsIn(in.String())
	if err != nil {
		return nil, err
	}
	return bytes.NewBufferString(out), nil
}

// keepCRDsIn annotates the CRDs of a manifest stream; changed reports
// whether any lacked the annotation.
func keepCRDsIn(manifest string) (string, bool, error) {
	if !strings.Contains(manifest, "CustomResourceDefinition") {
		return manifest, false, nil
	}
	nodes, err := kio.ParseAll(manifest)
	if err != nil {
		return "", false, fmt.Errorf("parsing rendered manifests: %w", err)
	}
	changed := false
	for _, n := range nodes {
		if n.GetKind() != "CustomResourceDefinition" {
			continue
		}
		if n.GetAnnotations()[KeepPolicyAnnotation] == KeepPolicy {
			continue
		}
		if err := n.PipeE(kyaml.SetAnnotation(KeepPolicyAnnotation, KeepPolicy)); err != nil {
			return "", false, err
		}
		changed = true
	}
	if !changed {
		return manifest, false, nil
	}
	out, err := kio.StringAll(nodes)
	if err != nil {
		return "", false, err
	}
	return out, true, nil
}

// capabilities reads the API server's version and API groups, the way Helm
// does, so that a failure is reported before rendering (and is transient).
func capabilities(cfg *action.Configuration) (*common.Capabilities, error) {
	dc, err := cfg.RESTClientGetter.ToDiscoveryClient()
	if err != nil {
		return nil, err
	}
	dc.Invalidate()
	// The shared REST mapper resets only on a miss while discovery is not
	// fresh, which the read below makes it: reset it too, or a kind whose
	// CRD came after the mapper's first use (another chart's, another
	// release's) stays unknown to every later install.
	if m, err := cfg.RESTClientGetter.ToRESTMapper(); err == nil {
		if r, ok := m.(meta.ResettableRESTMapper); ok {
			r.Reset()
		}
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return nil, err
	}
	apis, err := action.GetVersionSet(dc)
	if err != nil && len(apis) == 0 {
		return nil, err
	}
	return &common.Capabilities{
		APIVersions: apis,
		KubeVersion: common.KubeVersion{Version: v.GitVersion, Major: v.Major, Minor: v.Minor},
		HelmVersion: common.DefaultCapabilities.HelmVersion,
	}, nil
}

// releaseDigest is a digest of everything that makes a release: the chart's
// content, the values and the labels. 40 hex digits fit a label value.
func releaseDigest(ch *chartv2.Chart, vals map[string]any, labels map[string]string) string {
	h := sha256.New()
	hashChart(h, ch)
	writeJSON(h, vals)
	writeJSON(h, labels)
	return hex.EncodeToString(h.Sum(nil))[:40]
}

func hashChart(h hash.Hash, ch *chartv2.Chart) {
	writeJSON(h, ch.Metadata)
	for _, group := range [][]*common.File{ch.Templates, ch.Files} {
		files := append([]*common.File(nil), group...)
		sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
		for _, f := range files {
			fmt.Fprintf(h, "%s\x00%d\x00", f.Name, len(f.Data))
			h.Write(f.Data)
		}
	}
	writeJSON(h, ch.Values)
	h.Write(ch.Schema)
	deps := append([]*chartv2.Chart(nil), ch.Dependencies()...)
	sort.Slice(deps, func(i, j int) bool { return deps[i].Name() < deps[j].Name() })
	for _, d := range deps {
		io.WriteString(h, "\x00dep\x00")
		hashChart(h, d)
	}
}

// writeJSON writes v's JSON (maps have sorted keys) to h.
func writeJSON(h hash.Hash, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintf(h, "%#v", v)
		return
	}
	h.Write(b)
	h.Write([]byte{0})
}

// canonicalDocs parses a manifest stream into canonical JSON documents,
// sorted, so that formatting and order do not matter.
func canonicalDocs(manifest string) []string {
	var docs []string
	for _, doc := range releaseutil.SplitManifests(manifest) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var obj any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil || obj == nil {
			docs = append(docs, strings.TrimSpace(doc))
			continue
		}
		b, _ := json.Marshal(obj)
		docs = append(docs, string(b))
	}
	sort.Strings(docs)
	return docs
}

// manifestsEqual reports whether two manifest streams hold the same objects.
func manifestsEqual(a, b string) bool {
	da, db := canonicalDocs(a), canonicalDocs(b)
	if len(da) != len(db) {
		return false
	}
	for i := range da {
		if da[i] != db[i] {
			return false
		}
	}
	return true
}

type objectHead struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

// objectsOf lists the objects of a manifest and of the chart's crds/
// directory. Namespaced objects without a namespace get the release's.
func (e *Engine) objectsOf(manifest, namespace string, ch *chartv2.Chart) []ObjectRef {
	var out []ObjectRef
	add := func(doc string) {
		var h objectHead
		if err := yaml.Unmarshal([]byte(doc), &h); err != nil || h.Kind == "" {
			return
		}
		gv, err := schema.ParseGroupVersion(h.APIVersion)
		if err != nil {
			return
		}
		ns := h.Metadata.Namespace
		if ns == "" && e.namespaced(gv.WithKind(h.Kind)) {
			ns = namespace
		}
		out = append(out, ObjectRef{Group: gv.Group, Version: gv.Version, Kind: h.Kind, Namespace: ns, Name: h.Metadata.Name})
	}
	for _, doc := range splitDocs(manifest) {
		add(doc)
	}
	if ch != nil {
		for _, f := range ch.CRDObjects() {
			for _, doc := range splitDocs(string(f.File.Data)) {
				add(doc)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return out
}

func splitDocs(manifest string) []string {
	m := releaseutil.SplitManifests(manifest)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Sort(releaseutil.BySplitManifestsOrder(keys))
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, m[k])
	}
	return out
}

// clusterScoped lists kinds known to be cluster-scoped, for when the REST
// mapper does not know a kind yet.
var clusterScoped = map[string]bool{
	"Namespace": true, "CustomResourceDefinition": true, "ClusterRole": true, "ClusterRoleBinding": true,
	"MutatingWebhookConfiguration": true, "ValidatingWebhookConfiguration": true, "PriorityClass": true,
	"StorageClass": true, "PersistentVolume": true, "APIService": true, "IngressClass": true,
	"RuntimeClass": true, "GatewayClass": true, "ValidatingAdmissionPolicy": true,
	"ValidatingAdmissionPolicyBinding": true,
}

// namespaced reports whether a kind is namespaced, from the REST mapper or,
// for kinds it does not serve (yet), from clusterScoped.
func (e *Engine) namespaced(gvk schema.GroupVersionKind) bool {
	m, err := e.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return !clusterScoped[gvk.Kind]
	}
	return m.Scope.Name() == meta.RESTScopeNameNamespace
}
