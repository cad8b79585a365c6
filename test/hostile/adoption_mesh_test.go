package hostile

import (
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Moves between meshes (issue 21, deliverable 3: Linkerd → Istio, Istio →
// Linkerd): a wave whose namespace holds an object the target mesh cannot
// express, a move straight into a mode whose outputs differ from those
// written beside the old mesh's, and hand-written migration annotations
// (meshplane.io/migrating-from, meshplane.io/migrating-to) that name a
// mesh Meshplane does not know or only half a move. Each refusal leaves
// the namespace, its objects and their outputs exactly as they were.

func init() {
	Register(
		// Isolated: a Linkerd MeshInstall would decide the install facts of
		// the shared cluster's Linkerd namespaces. Suspended: nothing is
		// installed; the adoption reads its provider.
		Case{Category: "capability", Kind: "MeshAdoption", Mesh: Istio, Isolated: true, Name: "Istio to Linkerd with a mirrored TrafficSplit",
			Run: func(h *H) {
				h.StartManager()
				suspendedInstall(h, "linkerd-to", meshv1alpha1.ProviderLinkerd, "edge-26.1.1", "")
				ns := h.Namespace(Istio)
				for _, s := range []string{"web", "web-v1", "web-v2"} {
					h.Service(ns, s)
				}
				ts := GoodTrafficSplit(ns, "mirrored", Istio)
				ts.Spec.Mirror = &meshv1alpha1.MirrorPolicy{Backend: meshv1alpha1.ServiceReference{Name: "web-v2"}}
				h.Create(ts)
				h.Ready(ts)
				before, inv := h.Snapshot(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}), h.Inventory(ns)
				ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: adoptionName(h)},
					Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "linkerd-to"}, Namespaces: []string{ns}}}
				h.Create(ma)
				h.Stalled(ma, meshv1alpha1.UnsupportedFeatureReason,
					"the next wave cannot start: MeshInstall linkerd-to (annotation linkerd.io/inject=enabled) cannot express TrafficSplit "+ns+
						"/mirrored: feature Mirroring is not supported by Linkerd; remove the feature from the spec or choose another provider",
					"nothing was labelled")
				h.Unchanged(before)
				h.Same(ns, inv)
				h.Ready(ts)
			}},
		Case{Category: "capability", Kind: "MeshAdoption", Mesh: Linkerd, Isolated: true, Name: "Linkerd straight to Istio ambient",
			Run: func(h *H) {
				h.StartManager()
				suspendedAmbient(h, "istio-amb")
				ns := h.Namespace(Linkerd)
				p := GoodZeroTrustPolicy(ns, "l4", Linkerd)
				h.Create(p)
				h.Ready(p)
				before, inv := h.Snapshot(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}), h.Inventory(ns)
				ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: adoptionName(h)},
					Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "istio-amb"},
						Mode: meshv1alpha1.ProfileAmbient, Namespaces: []string{ns}}}
				h.Create(ma)
				h.Stalled(ma, meshv1alpha1.UnsupportedFeatureReason,
					"namespace "+ns+" is in Linkerd's data plane: moving it between meshes straight into Istio (label istio.io/dataplane-mode=ambient) is not supported",
					"move it with spec.mode Sidecar first, then to the other mode in a second adoption")
				h.Unchanged(before)
				h.Same(ns, inv)
				h.Ready(p)
			}},
		Case{Category: "foreign", Kind: "TrafficSplit", Mesh: Istio, Name: "hand-written migration to an unknown mesh",
			Run: func(h *H) {
				ns := h.Namespace(Istio)
				for _, s := range []string{"web", "web-v1", "web-v2"} {
					h.Service(ns, s)
				}
				ts := GoodTrafficSplit(ns, "web", Istio)
				h.Create(ts)
				h.Ready(ts)
				inv := h.Inventory(ns)
				annotate(h, ns, map[string]string{"meshplane.io/migrating-from": "Istio", "meshplane.io/migrating-to": "Consul"})
				h.Stalled(ts, meshv1alpha1.ProviderUnknownReason,
					"namespace "+ns+" is moving between meshes (annotations meshplane.io/migrating-from=Istio, meshplane.io/migrating-to=Consul), so Consul's outputs are written beside Istio's:",
					"the outputs stay as they were: fix or remove the annotations (a MeshAdoption sets and removes them)")
				sameMeshOutputs(h, ns, inv)
				annotate(h, ns, map[string]string{"meshplane.io/migrating-from": "", "meshplane.io/migrating-to": ""})
				h.Ready(ts)
				sameMeshOutputs(h, ns, inv)
			}},
		Case{Category: "foreign", Kind: "ZeroTrustPolicy", Mesh: Linkerd, Name: "half a hand-written migration",
			Run: func(h *H) {
				ns := h.Namespace(Linkerd)
				p := GoodZeroTrustPolicy(ns, "l4", Linkerd)
				h.Create(p)
				h.Ready(p)
				inv := h.Inventory(ns)
				// Only the target: no move, nothing beside Linkerd's outputs.
				annotate(h, ns, map[string]string{"meshplane.io/migrating-to": "Istio"})
				h.Consistently(2e9, "only Linkerd's outputs", func() error { return sameMeshInventory(h, ns, inv) })
				h.Ready(p)
			}},
		Case{Category: "foreign", Kind: "ZeroTrustPolicy", Mesh: Istio, Name: "hand-written migration between two other meshes",
			Run: func(h *H) {
				ns := h.Namespace(Istio)
				p := GoodZeroTrustPolicy(ns, "l4", Istio)
				h.Create(p)
				h.Ready(p)
				inv := h.Inventory(ns)
				// The namespace resolves to Istio, which is neither side.
				annotate(h, ns, map[string]string{"meshplane.io/migrating-from": "Linkerd", "meshplane.io/migrating-to": "Cilium"})
				h.Consistently(2e9, "only Istio's outputs", func() error { return sameMeshInventory(h, ns, inv) })
				h.Ready(p)
			}},
		Case{Category: "foreign", Kind: "ZeroTrustPolicy", Mesh: Istio, Name: "migration annotations on a policy that names its provider",
			Run: func(h *H) {
				ns := h.Namespace(Istio)
				p := GoodZeroTrustPolicy(ns, "pinned", Istio)
				p.Spec.Provider = meshv1alpha1.ProviderIstio
				h.Create(p)
				h.Ready(p)
				inv := h.Inventory(ns)
				// spec.provider pins the policy: it is not moved.
				annotate(h, ns, map[string]string{"meshplane.io/migrating-from": "Istio", "meshplane.io/migrating-to": "Linkerd"})
				h.Consistently(2e9, "only Istio's outputs", func() error { return sameMeshInventory(h, ns, inv) })
				h.Ready(p)
			}},
	)
}

// suspendedInstall creates a suspended MeshInstall (nothing is installed;
// the adoption reads its provider and profile).
func suspendedInstall(h *H, name string, p meshv1alpha1.Provider, version string, profile meshv1alpha1.Profile) {
	h.Helper()
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: p, Version: version, Profile: profile, Suspend: true}}
	h.Create(mi)
	h.Cleanup(func() { _ = h.C.Delete(h.Ctx, mi) })
}

// annotate sets (or, with "", removes) annotations of namespace ns.
func annotate(h *H, ns string, set map[string]string) {
	h.Helper()
	n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	h.Must(h.Update(n, func() {
		if n.Annotations == nil {
			n.Annotations = map[string]string{}
		}
		for k, v := range set {
			if v == "" {
				delete(n.Annotations, k)
			} else {
				n.Annotations[k] = v
			}
		}
	}))
}

// sameMeshInventory is Same as an error, for Consistently, leaving out the
// namespace itself (the case annotates it).
func sameMeshInventory(h *H, ns string, before Inventory) error {
	now := h.Inventory(ns)
	delete(now, "Namespace/"+ns)
	want := maps.Clone(before)
	delete(want, "Namespace/"+ns)
	if !maps.Equal(now, want) {
		return fmt.Errorf("outputs of %s changed: %v, was %v", ns, now, want)
	}
	return nil
}

// sameMeshOutputs asserts sameMeshInventory.
func sameMeshOutputs(h *H, ns string, before Inventory) {
	h.Helper()
	if err := sameMeshInventory(h, ns, before); err != nil {
		h.Fatalf("%v", err)
	}
}
