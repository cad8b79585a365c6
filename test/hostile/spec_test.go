package hostile

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Spec cases: inputs the API server must refuse, on create and on update of
// a Ready object (whose outputs must then stay exactly as they were), and
// inputs only the controller can judge (missing Services, unresolvable
// meshes), on every mesh.

// splitEdit breaks a valid TrafficSplit; want are the refusal's fragments.
type splitEdit struct {
	name string
	edit func(ts *meshv1alpha1.TrafficSplit)
	want []string
}

var splitEdits = []splitEdit{
	{"weights sum to 99", func(ts *meshv1alpha1.TrafficSplit) { ts.Spec.Backends[1].Weight = 9 },
		[]string{"backend weights must add up to 100"}},
	{"duplicate backend", func(ts *meshv1alpha1.TrafficSplit) {
		ts.Spec.Backends = []meshv1alpha1.WeightedBackend{{Name: "web-v1", Weight: 50}, {Name: "web-v1", Weight: 50}}
	}, []string{"backend names must be unique"}},
	{"weight over 100", func(ts *meshv1alpha1.TrafficSplit) {
		ts.Spec.Backends = []meshv1alpha1.WeightedBackend{{Name: "web-v1", Weight: 101}, {Name: "web-v2", Weight: -1}}
	}, []string{"spec.backends[0].weight", "less than or equal to 100"}},
	{"stableBackend not a backend", func(ts *meshv1alpha1.TrafficSplit) { ts.Spec.StableBackend = "web-v3" },
		[]string{"stableBackend must name one of spec.backends"}},
	{"backend port 70000", func(ts *meshv1alpha1.TrafficSplit) { ts.Spec.Backends[0].Port = ptrTo[int32](70000) },
		[]string{"spec.backends[0].port", "65535"}},
	{"backend name uppercase", func(ts *meshv1alpha1.TrafficSplit) { ts.Spec.Backends[0].Name = "Web-V1" },
		[]string{"spec.backends[0].name", "should match"}},
	{"no backends", func(ts *meshv1alpha1.TrafficSplit) { ts.Spec.Backends = nil },
		[]string{"spec.backends"}},
	{"seventeen backends", func(ts *meshv1alpha1.TrafficSplit) {
		ts.Spec.Backends = nil
		for i := range 17 {
			w := int32(0)
			if i == 0 {
				w = 100
			}
			ts.Spec.Backends = append(ts.Spec.Backends, meshv1alpha1.WeightedBackend{Name: fmt.Sprintf("web-%d", i), Weight: w})
		}
	}, []string{"spec.backends", "must have at most 16 items"}},
	{"service name with a slash", func(ts *meshv1alpha1.TrafficSplit) { ts.Spec.Service.Name = "other/web" },
		[]string{"spec.service.name"}},
}

// ptrTo returns a pointer to v.
func ptrTo[T any](v T) *T { return &v }

// readySplit creates Services web, web-v1, web-v2 and a Ready TrafficSplit
// in a fresh namespace of m.
func readySplit(h *H, m Mesh) (*meshv1alpha1.TrafficSplit, string) {
	h.Helper()
	ns := h.Namespace(m)
	for _, s := range []string{"web", "web-v1", "web-v2"} {
		h.Service(ns, s)
	}
	ts := GoodTrafficSplit(ns, "split", m)
	h.Create(ts)
	h.Ready(ts)
	return ts, ns
}

func init() {
	for _, m := range Meshes {
		for _, e := range splitEdits {
			Register(Case{Category: "spec", Kind: "TrafficSplit", Mesh: m, Name: "create " + e.name,
				Run: func(h *H) {
					ns := h.Namespace(m)
					before := h.Inventory(ns)
					ts := GoodTrafficSplit(ns, "bad", m)
					e.edit(ts)
					h.Refused(ts, e.want...)
					h.Same(ns, before)
				}})
		}
		for _, e := range splitEdits[:4] {
			Register(Case{Category: "refused-update", Kind: "TrafficSplit", Mesh: m, Name: "update " + e.name,
				Run: func(h *H) {
					ts, ns := readySplit(h, m)
					before := h.Inventory(ns)
					gen := ts.Generation
					h.Rejected(h.Update(ts, func() { e.edit(ts) }), e.want...)
					h.Same(ns, before)
					h.Must(h.C.Get(h.Ctx, keyOf(ts), ts))
					if ts.Generation != gen {
						h.Fatalf("generation moved from %d to %d on a refused update", gen, ts.Generation)
					}
				}})
		}
		registerRuntimeSplitCases(m)
		registerPolicySpecCases(m)
	}
}

// registerRuntimeSplitCases are inputs the API accepts and only the
// controller can judge.
func registerRuntimeSplitCases(m Mesh) {
	Register(Case{Category: "missing-ref", Kind: "TrafficSplit", Mesh: m, Name: "backend Service missing",
		Run: func(h *H) {
			ns := h.Namespace(m)
			h.Service(ns, "web")
			h.Service(ns, "web-v1")
			ts := GoodTrafficSplit(ns, "split", m)
			h.Create(ts)
			h.Stalled(ts, meshv1alpha1.ReferenceNotFoundReason, "spec.backends[1].name: Service "+ns+"/web-v2 does not exist; create it or fix spec.backends[1].name")
			h.Control("TrafficSplit", m)
		}})
	Register(Case{Category: "missing-ref", Kind: "TrafficSplit", Mesh: m, Name: "backend deleted after Ready",
		Run: func(h *H) {
			ts, ns := readySplit(h, m)
			v2 := h.Service(ns, "web-v3")
			h.Must(h.Update(ts, func() { ts.Spec.Backends[1].Name = "web-v3" }))
			h.Ready(ts)
			h.Must(h.C.Delete(h.Ctx, v2))
			h.Stalled(ts, meshv1alpha1.ReferenceNotFoundReason, "spec.backends[1].name: Service "+ns+"/web-v3 does not exist")
		}})
	Register(Case{Category: "missing-ref", Kind: "TrafficSplit", Mesh: m, Name: "routed Service missing",
		Run: func(h *H) {
			ns := h.Namespace(m)
			h.Service(ns, "web-v1")
			h.Service(ns, "web-v2")
			before := h.Inventory(ns)
			ts := GoodTrafficSplit(ns, "split", m)
			h.Create(ts)
			h.Stalled(ts, meshv1alpha1.ReferenceNotFoundReason, "spec.service.name: Service "+ns+"/web does not exist; create it or fix spec.service.name")
			delete(before, "TrafficSplit/split")
			after := h.Inventory(ns)
			for k := range after {
				if _, ok := before[k]; !ok && !strings.HasPrefix(k, "TrafficSplit/") {
					h.Fatalf("output %s written for a TrafficSplit whose Service is missing", k)
				}
			}
		}})
}

func registerPolicySpecCases(m Mesh) {
	edits := []struct {
		name string
		edit func(p *meshv1alpha1.ZeroTrustPolicy)
		want []string
	}{
		{"source without identities", func(p *meshv1alpha1.ZeroTrustPolicy) {
			p.Spec.Rules[0].From = []meshv1alpha1.TrafficSource{{}}
		}, []string{"a source needs serviceAccounts or namespaces"}},
		{"destination without anything", func(p *meshv1alpha1.ZeroTrustPolicy) {
			p.Spec.Rules[0].To = []meshv1alpha1.TrafficDestination{{}}
		}, []string{"a destination needs ports, methods or paths"}},
		{"rules with defaultAction Allow", func(p *meshv1alpha1.ZeroTrustPolicy) {
			p.Spec.DefaultAction = "Allow"
		}, []string{"rules have no effect with defaultAction Allow"}},
		{"port 0", func(p *meshv1alpha1.ZeroTrustPolicy) {
			p.Spec.Rules[0].To[0].Ports = []int32{0}
		}, []string{"spec.rules[0].to[0].ports[0]"}},
		{"unknown method", func(p *meshv1alpha1.ZeroTrustPolicy) {
			p.Spec.Rules[0].To[0].Methods = []meshv1alpha1.HTTPMethod{"FETCH"}
		}, []string{"spec.rules[0].to[0].methods[0]", "Unsupported value"}},
	}
	for _, e := range edits {
		Register(Case{Category: "spec", Kind: "ZeroTrustPolicy", Mesh: m, Name: "create " + e.name,
			Run: func(h *H) {
				ns := h.Namespace(m)
				before := h.Inventory(ns)
				p := GoodZeroTrustPolicy(ns, "bad", m)
				e.edit(p)
				h.Refused(p, e.want...)
				h.Same(ns, before)
			}})
		Register(Case{Category: "refused-update", Kind: "ZeroTrustPolicy", Mesh: m, Name: "update " + e.name,
			Run: func(h *H) {
				ns := h.Namespace(m)
				p := GoodZeroTrustPolicy(ns, "policy", m)
				h.Create(p)
				h.Ready(p)
				before := h.Inventory(ns)
				h.Rejected(h.Update(p, func() { e.edit(p) }), e.want...)
				h.Same(ns, before)
			}})
	}
	if m == Cilium {
		return // spec.provider chooses Cilium explicitly; a double claim needs namespace marks
	}
	Register(Case{Category: "missing-ref", Kind: "ZeroTrustPolicy", Mesh: m, Name: "namespace claimed by two meshes",
		Run: func(h *H) {
			ns := h.Namespace(m)
			nsObj := nsOf(h, ns)
			h.Must(h.Update(nsObj, func() {
				nsObj.Labels["istio-injection"] = "enabled"
				if nsObj.Annotations == nil {
					nsObj.Annotations = map[string]string{}
				}
				nsObj.Annotations["linkerd.io/inject"] = "enabled"
			}))
			snap := h.Snapshot(nsObj)
			before := h.Inventory(ns)
			p := GoodZeroTrustPolicy(ns, "policy", m)
			h.Create(p)
			h.Stalled(p, meshv1alpha1.ProviderNotResolvedReason, "claimed by more than one mesh", "spec.provider")
			h.Unchanged(snap)
			delete(before, "Namespace/"+ns)
			after := h.Inventory(ns)
			for k := range after {
				if _, ok := before[k]; !ok && !strings.HasPrefix(k, "Namespace/") {
					h.Fatalf("output %s written for a policy whose mesh is ambiguous", k)
				}
			}
			h.Control("ZeroTrustPolicy", m)
		}})
}

// keyOf is obj's key.
func keyOf(obj client.Object) client.ObjectKey { return client.ObjectKeyFromObject(obj) }

// nsOf reads namespace ns.
func nsOf(h *H, ns string) *corev1.Namespace {
	h.Helper()
	o := &corev1.Namespace{}
	h.Must(h.C.Get(h.Ctx, client.ObjectKey{Name: ns}, o))
	if o.Labels == nil {
		o.Labels = map[string]string{}
	}
	return o
}
