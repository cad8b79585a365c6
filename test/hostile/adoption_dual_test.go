package hostile

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Canary and ResiliencePolicy in a move between meshes (issue 21): while a
// namespace carries the migration annotations both controllers write the
// other mesh's outputs beside their own, so a move whose other mesh cannot
// express the object, or names a mesh Meshplane does not know, is refused
// with the reason and what asked for it, the outputs left exactly as they
// were; and a MeshAdoption checks every route of a Canary's strategy (not
// only its primary route) before a wave starts.

// mirroringCanary makes a Canary mirror traffic (what Linkerd cannot).
func mirroringCanary(cn *meshv1alpha1.Canary) {
	cn.Spec.Strategy = meshv1alpha1.StrategyMirroring
	cn.Spec.Analysis.Iterations = ptrTo[int32](3)
}

// faultyPolicy is goodResiliencePolicy with fault injection (what Linkerd
// cannot).
func faultyPolicy(ns string) *meshv1alpha1.ResiliencePolicy {
	rp := goodResiliencePolicy(ns, "faults", Istio)
	rp.Spec.FaultInjection = &meshv1alpha1.FaultInjection{Abort: &meshv1alpha1.FaultAbort{HTTPStatus: 503, Percent: 5}}
	return rp
}

func init() {
	Register(
		// Isolated, suspended: as "Istio to Linkerd with a mirrored
		// TrafficSplit".
		Case{Category: "capability", Kind: "MeshAdoption", Mesh: Istio, Isolated: true, Name: "Istio to Linkerd with a Mirroring Canary",
			Run: func(h *H) {
				h.StartManager()
				suspendedInstall(h, "linkerd-cn", meshv1alpha1.ProviderLinkerd, "edge-26.1.1", "")
				ns := h.Namespace(Istio)
				cn := readyCanary(h, ns, mirroringCanary)
				before, inv := h.Snapshot(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}), h.Inventory(ns)
				ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: adoptionName(h)},
					Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "linkerd-cn"}, Namespaces: []string{ns}}}
				h.Create(ma)
				h.Stalled(ma, meshv1alpha1.UnsupportedFeatureReason,
					"the next wave cannot start: MeshInstall linkerd-cn (annotation linkerd.io/inject=enabled) cannot express Canary "+ns+
						"/web: strategy Mirroring: feature Mirroring is not supported by Linkerd",
					"nothing was labelled")
				h.Unchanged(before)
				h.Same(ns, inv)
				h.Ready(cn)
			}},
		Case{Category: "foreign", Kind: "Canary", Mesh: Istio, Name: "hand-written migration of a Canary to an unknown mesh",
			Run: func(h *H) {
				ns := h.Namespace(Istio)
				cn := readyCanary(h, ns, nil)
				inv := h.Inventory(ns)
				annotate(h, ns, map[string]string{"meshplane.io/migrating-from": "Istio", "meshplane.io/migrating-to": "Consul"})
				h.Stalled(cn, meshv1alpha1.ProviderUnknownReason,
					"namespace "+ns+" is moving between meshes (annotations meshplane.io/migrating-from=Istio, meshplane.io/migrating-to=Consul), so Consul's outputs are written beside Istio's:",
					"the outputs stay as they were: fix or remove the annotations (a MeshAdoption sets and removes them)")
				sameMeshOutputs(h, ns, inv)
				annotate(h, ns, map[string]string{"meshplane.io/migrating-from": "", "meshplane.io/migrating-to": ""})
				h.Ready(cn)
				sameMeshOutputs(h, ns, inv)
			}},
		Case{Category: "capability", Kind: "Canary", Mesh: Istio, Name: "hand-written move to Linkerd of a Mirroring Canary",
			Run: func(h *H) {
				ns := h.Namespace(Istio)
				cn := readyCanary(h, ns, mirroringCanary)
				inv := h.Inventory(ns)
				annotate(h, ns, map[string]string{"meshplane.io/migrating-from": "Istio", "meshplane.io/migrating-to": "Linkerd"})
				h.Stalled(cn, meshv1alpha1.UnsupportedFeatureReason,
					"namespace "+ns+" is moving between meshes (annotations meshplane.io/migrating-from=Istio, meshplane.io/migrating-to=Linkerd), so Linkerd's outputs are written beside Istio's:",
					"strategy Mirroring", "feature Mirroring is not supported by Linkerd")
				sameMeshOutputs(h, ns, inv)
				annotate(h, ns, map[string]string{"meshplane.io/migrating-from": "", "meshplane.io/migrating-to": ""})
				h.Ready(cn)
				sameMeshOutputs(h, ns, inv)
			}},
		Case{Category: "foreign", Kind: "ResiliencePolicy", Mesh: Istio, Name: "hand-written migration of a policy to an unknown mesh",
			Run: func(h *H) {
				rp, ns := readyResiliencePolicy(h, Istio)
				inv, outs := h.Inventory(ns), resilienceOutputs(h, ns)
				annotate(h, ns, map[string]string{"meshplane.io/migrating-from": "Istio", "meshplane.io/migrating-to": "Consul"})
				h.Stalled(rp, meshv1alpha1.ProviderUnknownReason,
					"namespace "+ns+" is moving between meshes (annotations meshplane.io/migrating-from=Istio, meshplane.io/migrating-to=Consul), so Consul's outputs are written beside Istio's:",
					"the outputs stay as they were: fix or remove the annotations (a MeshAdoption sets and removes them)")
				sameMovedOutputs(h, ns, inv, outs)
				annotate(h, ns, map[string]string{"meshplane.io/migrating-from": "", "meshplane.io/migrating-to": ""})
				h.Ready(rp)
				sameMovedOutputs(h, ns, inv, outs)
			}},
		Case{Category: "capability", Kind: "ResiliencePolicy", Mesh: Istio, Name: "hand-written move to Linkerd of a policy with faults",
			Run: func(h *H) {
				ns := h.Namespace(Istio)
				h.Service(ns, "web")
				rp := faultyPolicy(ns)
				h.Create(rp)
				h.Ready(rp)
				inv, outs := h.Inventory(ns), resilienceOutputs(h, ns)
				svc := h.Snapshot(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}})
				annotate(h, ns, map[string]string{"meshplane.io/migrating-from": "Istio", "meshplane.io/migrating-to": "Linkerd"})
				h.Stalled(rp, meshv1alpha1.UnsupportedFeatureReason,
					"namespace "+ns+" is moving between meshes (annotations meshplane.io/migrating-from=Istio, meshplane.io/migrating-to=Linkerd), so Linkerd's outputs are written beside Istio's:",
					"faultInjection")
				sameMovedOutputs(h, ns, inv, outs)
				// Nothing of Linkerd's was written on the user's Service.
				h.Unchanged(svc)
				annotate(h, ns, map[string]string{"meshplane.io/migrating-from": "", "meshplane.io/migrating-to": ""})
				h.Ready(rp)
				sameMovedOutputs(h, ns, inv, outs)
			}},
	)
}

// sameMovedOutputs asserts the namespace's inventory (but for the
// namespace, which the case annotates) and resilience outputs are as
// before.
func sameMovedOutputs(h *H, ns string, before Inventory, outs map[string]string) {
	h.Helper()
	sameMeshOutputs(h, ns, before)
	if after := resilienceOutputs(h, ns); !equalMaps(after, outs) {
		h.Fatalf("resilience outputs of %s changed: before %v, after %v", ns, outs, after)
	}
}
