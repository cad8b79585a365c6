package hostile

import (
	"fmt"
	"maps"

	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/testenv"
)

// Moves from Istio sidecar to ambient (issue 21, deliverable 3): the
// namespace annotation meshplane.io/dataplane-from, which a MeshAdoption
// sets to Sidecar while a wave's pods restart so the sidecar form of each
// ZeroTrustPolicy is kept beside the ambient one, written by hand: a value
// that is not a mode a namespace moves out of stops every object of the
// namespace with a message naming the annotation, and writes nothing; a
// valid one where both forms are the same object writes nothing more.

// badModeMessage is the refusal of meshplane.io/dataplane-from=<v>.
func badModeMessage(ns, v string) string {
	return fmt.Sprintf("namespace %s has annotation meshplane.io/dataplane-from=%q, but the only data-plane mode a namespace moves out of is \"Sidecar\" "+
		"(a MeshAdoption with spec.mode Ambient sets and removes it); nothing was applied for the namespace: remove the annotation, "+
		"or set it to \"Sidecar\" while the namespace moves from sidecar to ambient", ns, v)
}

func init() {
	Register(
		Case{Category: "foreign", Kind: "ZeroTrustPolicy", Mesh: Istio, Name: "hand-set data-plane mode with a bogus value",
			Run: func(h *H) {
				ns := testenv.AmbientNamespace(h.T, h.C, nil)
				testenv.UseWaypoint(h.T, h.C, ns, "waypoint")
				foreign := h.Snapshot(waypointOf(ns))
				p := ambientL7Policy(ns, "l7")
				h.Create(p)
				h.Ready(p)
				inv := h.Inventory(ns)
				annotate(h, ns, map[string]string{"meshplane.io/dataplane-from": "Ambient"})
				h.Stalled(p, meshv1alpha1.InvalidSpecReason, badModeMessage(ns, "Ambient"))
				sameMeshOutputs(h, ns, inv)
				h.Unchanged(foreign)
				h.Control("ZeroTrustPolicy", Istio)
				annotate(h, ns, map[string]string{"meshplane.io/dataplane-from": ""})
				h.Ready(p)
				sameMeshOutputs(h, ns, inv)
			}},
		Case{Category: "foreign", Kind: "TrafficSplit", Mesh: Istio, Name: "hand-set data-plane mode on a sidecar namespace",
			Run: func(h *H) {
				ns := h.Namespace(Istio)
				for _, s := range []string{"web", "web-v1", "web-v2"} {
					h.Service(ns, s)
				}
				ts := GoodTrafficSplit(ns, "web", Istio)
				h.Create(ts)
				h.Ready(ts)
				inv := h.Inventory(ns)
				annotate(h, ns, map[string]string{"meshplane.io/dataplane-from": "sidecar"})
				h.Stalled(ts, meshv1alpha1.InvalidSpecReason, badModeMessage(ns, "sidecar"))
				sameMeshOutputs(h, ns, inv)
				h.Control("TrafficSplit", Istio)
			}},
		Case{Category: "foreign", Kind: "ZeroTrustPolicy", Mesh: Istio, Name: "hand-set Sidecar mode where both forms are one",
			Run: func(h *H) {
				// An L4 policy without a waypoint: ztunnel enforces the
				// sidecar form as it is, so keeping it "beside" the
				// ambient one writes nothing.
				ns := testenv.AmbientNamespace(h.T, h.C, nil)
				p := GoodZeroTrustPolicy(ns, "l4", Istio)
				h.Create(p)
				h.Ready(p)
				inv := h.Inventory(ns)
				annotate(h, ns, map[string]string{"meshplane.io/dataplane-from": "Sidecar"})
				h.Consistently(2e9, "the same outputs", func() error { return sameMeshInventory(h, ns, inv) })
				h.Ready(p)
			}},
		Case{Category: "foreign", Kind: "ZeroTrustPolicy", Mesh: Istio, Name: "hand-set Sidecar mode beside an L7 policy, then removed",
			Run: func(h *H) {
				// The annotation keeps the sidecar form's L7 rule in the
				// selector-bound policy (ztunnel drops it); removing it
				// prunes back to the ambient form, and no other output is
				// added or removed at any point.
				ns := testenv.AmbientNamespace(h.T, h.C, nil)
				testenv.UseWaypoint(h.T, h.C, ns, "waypoint")
				p := ambientL7Policy(ns, "l7")
				h.Create(p)
				h.Ready(p)
				inv := h.Inventory(ns)
				annotate(h, ns, map[string]string{"meshplane.io/dataplane-from": "Sidecar"})
				h.Eventually("the sidecar form's L7 rule kept", func() error { return l7Kept(h, ns, true) })
				h.Ready(p)
				sameKeys(h, ns, inv)
				annotate(h, ns, map[string]string{"meshplane.io/dataplane-from": ""})
				h.Eventually("the ambient form only", func() error { return l7Kept(h, ns, false) })
				sameKeys(h, ns, inv)
			}},
	)
}

// l7Kept checks whether AuthorizationPolicy l7 (bound to workloads) keeps
// the L7 rule.
func l7Kept(h *H, ns string, want bool) error {
	ap := &istiosecurity.AuthorizationPolicy{}
	if err := h.C.Get(h.Ctx, client.ObjectKey{Namespace: ns, Name: "l7"}, ap); err != nil {
		return err
	}
	got := false
	for _, r := range ap.Spec.Rules {
		for _, to := range r.To {
			got = got || len(to.Operation.GetMethods()) > 0
		}
	}
	if got != want {
		return fmt.Errorf("AuthorizationPolicy %s/l7 has an L7 rule: %v, want %v (%v)", ns, got, want, ap.Spec.Rules)
	}
	return nil
}

// sameKeys asserts that the outputs of ns are the same objects by kind and
// name as before (their contents may change).
func sameKeys(h *H, ns string, before Inventory) {
	h.Helper()
	now := h.Inventory(ns)
	if !maps.EqualFunc(now, before, func(string, string) bool { return true }) {
		h.Fatalf("outputs of %s changed: %v, was %v", ns, now, before)
	}
}
