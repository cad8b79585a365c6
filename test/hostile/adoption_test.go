package hostile

import (
	"fmt"
	"hash/fnv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/testenv"
)

// Adoption cases (issue 21): MeshAdoption specs the API server refuses
// (namespaces and selector both or neither, wave bounds, durations, names,
// modes), adoptions the controller refuses without touching a namespace,
// and ZeroTrustPolicy spec.enforcement values a mesh cannot honour.

// adoptionDoc is a valid MeshAdoption with NAME and NS (a listed
// namespace) replaced.
const adoptionDoc = "{apiVersion: meshplane.io/v1alpha1, kind: MeshAdoption, metadata: {name: NAME}, spec: {meshInstallRef: {name: istio}, namespaces: [NS]}}"

// adoptionObject is adoptionDoc with the YAML value set at the top-level
// spec field (deleted when value is "null").
func adoptionObject(h *H, name, ns, field, value string) *unstructured.Unstructured {
	h.Helper()
	u := testenv.Parse(h.T, strings.NewReplacer("NAME", name, "NS", ns).Replace(adoptionDoc))
	if field == "" {
		return u
	}
	var v any
	h.Must(yaml.Unmarshal([]byte(value), &v))
	spec := u.Object["spec"].(map[string]any)
	if v == nil {
		delete(spec, field)
	} else {
		spec[field] = v
	}
	return u
}

// adoptionName is a cluster-unique MeshAdoption name for a case.
func adoptionName(h *H) string {
	f := fnv.New32a()
	_, _ = f.Write([]byte(h.Name()))
	return fmt.Sprintf("adopt-%08x", f.Sum32())
}

func init() {
	long := strings.Repeat("n", 64)
	many := make([]string, 257)
	for i := range many {
		many[i] = fmt.Sprintf("ns-%d", i)
	}
	manyYAML, _ := yaml.Marshal(many)
	specs := []struct {
		name, field, value string
		want               []string
	}{
		{"neither namespaces nor selector", "namespaces", "null", []string{"set exactly one of spec.namespaces (a list, enrolled in list order) and spec.namespaceSelector (enrolled in name order)"}},
		{"both namespaces and selector", "namespaceSelector", "{matchLabels: {team: shop}}", []string{"set exactly one of spec.namespaces"}},
		{"empty namespaces", "namespaces", "[]", []string{"spec.namespaces", "should have at least 1 items"}},
		{"257 namespaces", "namespaces", string(manyYAML), []string{"spec.namespaces", "must have at most 256 items"}},
		{"duplicate namespace", "namespaces", "[shop, shop]", []string{"spec.namespaces[1]", "Duplicate value"}},
		{"namespace with upper case", "namespaces", "[Shop]", []string{"spec.namespaces[0]", "should match"}},
		{"namespace of 64 characters", "namespaces", "[" + long + "]", []string{"spec.namespaces[0]", "may not be more than 63"}},
		{"namespace/name reference", "meshInstallRef", "{name: istio-system/istio}", []string{"spec.meshInstallRef.name", "give the name alone, without a namespace/ prefix"}},
		{"no meshInstallRef", "meshInstallRef", "null", []string{"spec.meshInstallRef", "Required value"}},
		{"mode typo", "mode", "Ambiant", []string{"spec.mode", `supported values: "Sidecar", "Ambient"`}},
		{"wave size 0", "waves", "{size: 0}", []string{"spec.waves.size", "should be greater than or equal to 1"}},
		{"wave size 101", "waves", "{size: 101}", []string{"spec.waves.size", "should be less than or equal to 100"}},
		{"pause banana", "waves", "{pause: banana}", []string{"spec.waves.pause", `pause "banana" is not a duration: write a number and a unit`}},
		{"pause of days", "waves", "{pause: 2d}", []string{"spec.waves.pause", `pause "2d" is not a duration`}},
		{"pause 25h", "waves", "{pause: 25h}", []string{"spec.waves.pause", "pause must be between 0s and 24h; got 25h"}},
		{"healthTimeout 0s", "waves", "{healthTimeout: 0s}", []string{"spec.waves.healthTimeout", "healthTimeout must be between 1s and 24h; got 0s"}},
		{"negative healthTimeout", "waves", "{healthTimeout: -5m}", []string{"spec.waves.healthTimeout", `healthTimeout "-5m" is not a duration`}},
	}
	for _, s := range specs {
		Register(Case{Category: "spec", Kind: "MeshAdoption", Mesh: AnyMesh, Name: s.name, Run: func(h *H) {
			ns := h.Namespace(AnyMesh)
			before := h.Snapshot(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
			u := adoptionObject(h, adoptionName(h), ns, s.field, s.value)
			h.Refused(u, s.want...)
			h.Unchanged(before)
		}})
	}
	Register(
		Case{Category: "reference", Kind: "MeshAdoption", Mesh: AnyMesh, Name: "MeshInstall does not exist", Run: func(h *H) {
			ns := h.Namespace(AnyMesh)
			before := h.Snapshot(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
			ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: adoptionName(h)},
				Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "no-such-mesh"}, Namespaces: []string{ns}}}
			h.Create(ma)
			h.Cleanup(func() { _ = h.C.Delete(h.Ctx, ma) })
			h.Stalled(ma, meshv1alpha1.ReferenceNotFoundReason,
				"spec.meshInstallRef names MeshInstall no-such-mesh, which does not exist; create it or fix the reference")
			h.Unchanged(before)
		}},
		Case{Category: "foreign", Kind: "MeshAdoption", Mesh: AnyMesh, Name: "deleting a refused adoption leaves namespaces alone", Run: func(h *H) {
			ns := h.Namespace(AnyMesh)
			before := h.Snapshot(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
			ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: adoptionName(h)},
				Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "no-such-mesh"}, Namespaces: []string{ns}}}
			h.Create(ma)
			h.Stalled(ma, meshv1alpha1.ReferenceNotFoundReason)
			h.Must(h.C.Delete(h.Ctx, ma))
			h.Eventually("adoption gone", func() error {
				if err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(ma), ma); err == nil {
					return fmt.Errorf("still there, finalizers %v", ma.Finalizers)
				}
				return nil
			})
			h.Unchanged(before)
		}},
	)
	enforcement := []struct{ name, value string }{{"enforcement DryRun", "DryRun"}, {"enforcement lower case audit", "audit"}}
	for _, e := range enforcement {
		Register(Case{Category: "spec", Kind: "ZeroTrustPolicy", Mesh: Istio, Name: e.name, Run: func(h *H) {
			ns := h.Namespace(Istio)
			before := h.Inventory(ns)
			p := GoodZeroTrustPolicy(ns, "bad", Istio)
			p.Spec.Enforcement = meshv1alpha1.PolicyEnforcement(e.value)
			h.Refused(p, "spec.enforcement", `supported values: "Enforce", "Audit"`)
			h.Same(ns, before)
		}})
	}
	ciliumAudit := "feature PolicyAudit is not supported by Cilium"
	Register(
		Case{Category: "unsupported", Kind: "ZeroTrustPolicy", Mesh: Cilium, Name: "Audit on Cilium", Run: func(h *H) {
			ns := h.Namespace(Cilium)
			before := h.Inventory(ns)
			p := GoodZeroTrustPolicy(ns, "audit", Cilium)
			p.Spec.Enforcement = meshv1alpha1.EnforcementAudit
			h.Create(p)
			h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, ciliumAudit, "cilium/cilium#9580", "set spec.enforcement to Enforce")
			h.Same(ns, before)
			control := GoodZeroTrustPolicy(h.Namespace(Cilium), "control", Cilium)
			h.Create(control)
			h.Ready(control)
		}},
		Case{Category: "refused-update", Kind: "ZeroTrustPolicy", Mesh: Cilium, Name: "Ready policy switched to Audit keeps its outputs", Run: func(h *H) {
			ns := h.Namespace(Cilium)
			p := GoodZeroTrustPolicy(ns, "policy", Cilium)
			h.Create(p)
			h.Ready(p)
			before := h.Inventory(ns)
			h.Must(h.Update(p, func() { p.Spec.Enforcement = meshv1alpha1.EnforcementAudit }))
			h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, ciliumAudit, "cilium/cilium#9580")
			h.Same(ns, before)
		}},
		Case{Category: "silent-drop", Kind: "ZeroTrustPolicy", Mesh: Istio, Name: "Audit in an ambient namespace", Run: func(h *H) {
			ns := testenv.AmbientNamespace(h.T, h.C, nil)
			before := h.Inventory(ns)
			p := GoodZeroTrustPolicy(ns, "audit", Istio)
			p.Spec.Enforcement = meshv1alpha1.EnforcementAudit
			h.Create(p)
			h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, "spec.enforcement is Audit but namespace "+ns+" is ambient",
				"run the policy in audit while the namespace is in sidecar mode, or set spec.enforcement to Enforce (nothing was applied)")
			h.Same(ns, before)
		}},
	)
}
