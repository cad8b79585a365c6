package hostile

import (
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/charts"
)

// The MeshInstall change cases: values Istio's charts render (they ship
// no values.schema.json) but the API server refuses, alone and with a
// version change. The whole change is dry-run before any release moves:
// the refusal names chart, object, field and the server's message; no
// release revision is added; the running control plane is unchanged.

func init() {
	for _, c := range []struct {
		name, version, values string
		want                  []string
	}{
		{"a quantity the API server refuses moves no release", "1.28.1", `{"pilot":{"resources":{"requests":{"cpu":"lots"}}}}`,
			[]string{`chart istiod 1.28.1 (release mesh-cp/istiod): the API server refuses Deployment mesh-cp/istiod (field spec.template.spec.containers[0].resources.requests.cpu: "lots") in a dry run: `,
				"quantities must match the regular expression", "; fix the values (spec.values or spec.components); no release was changed"}},
		{"a string for a number moves no release", "1.28.1", `{"pilot":{"replicaCount":"one"}}`,
			[]string{"chart istiod 1.28.1 (release mesh-cp/istiod): the API server refuses Deployment mesh-cp/istiod", ".spec.replicas", "; fix the values (spec.values or spec.components); no release was changed"}},
		{"a bad value with a version change moves neither base nor istiod", "1.29.0", `{"pilot":{"resources":{"requests":{"cpu":"lots"}}}}`,
			[]string{`chart istiod 1.29.0 (release mesh-cp/istiod): the API server refuses Deployment mesh-cp/istiod (field spec.template.spec.containers[0].resources.requests.cpu: "lots") in a dry run: `,
				"; fix the values (spec.values or spec.components); no release was changed"}},
	} {
		registerOwn(Case{Category: "refused-update", Kind: "MeshInstall", Mesh: Istio, Name: c.name, Isolated: true,
			Run: func(h *H) { refusedChange(h, c.version, c.values, c.want) }})
	}
}

// refusedChange installs Istio 1.28.1, then asks for version with istiod
// values, and asserts the refusal and that nothing of the running mesh
// moved: release records (Secrets), the istiod Deployment, its webhooks and
// the status.
func refusedChange(h *H, version, values string, want []string) {
	h.Helper()
	h.StartManager()
	ns := foreignNamespace(h, "mesh-cp")
	dir := h.TempDir()
	charts.StageIstio(h.T, dir, "1.28.1", "1.29.0")
	mi := installOf(Istio, "change", ns.Name, &meshv1alpha1.ChartSource{Path: dir})
	h.Create(mi)
	installed(h, mi)
	h.Must(h.C.Get(h.Ctx, keyOf(mi), mi))
	releases, installedVersion := fmt.Sprint(mi.Status.Releases), mi.Status.InstalledVersion
	live := h.Snapshot(nsOf(h, ns.Name),
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "istiod"}},
		&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector-" + ns.Name}},
		&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "istio-validator-" + ns.Name}})
	before := h.Inventory(ns.Name)
	dep := &appsv1.Deployment{}
	h.Must(h.C.Get(h.Ctx, client.ObjectKey{Namespace: ns.Name, Name: "istiod"}, dep))
	h.Must(h.Update(mi, func() {
		mi.Spec.Version = version
		mi.Spec.Components = []meshv1alpha1.ComponentValues{{Chart: "istiod", Values: apiextensionsv1.JSON{Raw: []byte(values)}}}
	}))
	h.Stalled(mi, meshv1alpha1.OutputRejectedReason, want...)
	h.Must(h.C.Get(h.Ctx, keyOf(mi), mi))
	if got := fmt.Sprint(mi.Status.Releases); got != releases || mi.Status.InstalledVersion != installedVersion {
		h.Fatalf("after the refused change: releases %s (before %s), installed %q (before %q)", got, releases, mi.Status.InstalledVersion, installedVersion)
	}
	if u := mi.Status.Upgrade; version == installedVersion && u != nil {
		h.Fatalf("a values change recorded an upgrade: %+v", u)
	}
	// Release records are Secrets: Same fails on a new revision.
	h.Same(ns.Name, before)
	h.Unchanged(live)
	after := &appsv1.Deployment{}
	h.Must(h.C.Get(h.Ctx, client.ObjectKey{Namespace: ns.Name, Name: "istiod"}, after))
	if after.ResourceVersion != dep.ResourceVersion {
		h.Fatalf("istiod Deployment written by a refused change (resourceVersion %s -> %s)", dep.ResourceVersion, after.ResourceVersion)
	}
}
