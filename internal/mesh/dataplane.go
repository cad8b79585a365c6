package mesh

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// DataPlaneMode is how a namespace's workloads are served by the mesh's
// data plane; what a mesh can enforce depends on it.
type DataPlaneMode string

// Data-plane modes.
const (
	// Sidecar: an Envoy sidecar in every pod (Istio sidecar mode), L4 and
	// L7 enforced at the destination's proxy.
	Sidecar DataPlaneMode = "Sidecar"
	// Ambient: Istio's node proxy ztunnel (L4 only), plus a waypoint proxy
	// for L7 where one serves the namespace or Service.
	Ambient DataPlaneMode = "Ambient"
	// LinkerdProxy: Linkerd's proxy in every pod.
	LinkerdProxy DataPlaneMode = "LinkerdProxy"
	// CiliumNode: Cilium's per-node eBPF datapath, with its node Envoy for
	// L7.
	CiliumNode DataPlaneMode = "CiliumNode"
)

// NamespaceFacts is what a namespace's labels say about the data plane
// that serves it.
type NamespaceFacts struct {
	// Name of the namespace.
	Name string
	// Mode is the data-plane mode.
	Mode DataPlaneMode
	// Waypoint names the waypoint proxy that serves the namespace (ambient,
	// its istio.io/use-waypoint label), empty for none.
	Waypoint string
	// WaypointFor maps a Service that names its own waypoint (or opts out
	// with "none") to that waypoint.
	WaypointFor map[string]string
	// Waypoints are the waypoints that exist in the namespace, by name.
	Waypoints map[string]WaypointFacts
	// Previous is the mode the namespace is moving out of while a
	// MeshAdoption moves it (DataPlaneFromAnnotation), empty otherwise: a
	// translator keeps that mode's outputs beside Mode's where both can
	// stand together, for the pods not restarted yet.
	Previous DataPlaneMode
}

// DataPlaneDescriber is implemented by meshes that tell a namespace's
// data-plane mode from its labels and annotations.
type DataPlaneDescriber interface {
	// DataPlane returns the facts of ns.
	DataPlane(ns *corev1.Namespace) NamespaceFacts
}

// WaypointFacts describes one waypoint that exists.
type WaypointFacts struct {
	// For is the traffic the waypoint handles: service, workload, all or
	// none.
	For string
	// Programmed reports the waypoint's Programmed condition.
	Programmed bool
}

// DataPlaneReader is implemented by providers whose outputs depend on a
// namespace's data plane (Istio ambient).
type DataPlaneReader interface {
	Provider
	// DataPlaneKinds are the kinds whose changes change NamespaceFacts
	// (besides Namespaces); the controllers watch those the API server
	// serves.
	DataPlaneKinds() []client.Object
	// DataPlaneObject reports whether o, of one of DataPlaneKinds, can
	// change the facts (a waypoint, a Service with a use-waypoint label);
	// the watches ignore the others.
	DataPlaneObject(o client.Object) bool
	// ReadNamespaceFacts reads the facts of namespace ns through r.
	ReadNamespaceFacts(ctx context.Context, r client.Reader, ns string) (NamespaceFacts, error)
}

// DataPlaneTrafficTranslator translates a TrafficSplit for a namespace's
// data plane. It is pure: no I/O.
type DataPlaneTrafficTranslator interface {
	TrafficTranslator
	// TranslateTrafficSplitIn is TranslateTrafficSplit for a namespace
	// with the given facts.
	TranslateTrafficSplitIn(ts *meshv1alpha1.TrafficSplit, facts NamespaceFacts) ([]client.Object, error)
}

// DataPlanePolicyTranslator translates a ZeroTrustPolicy for a namespace's
// data plane. It is pure: no I/O.
type DataPlanePolicyTranslator interface {
	PolicyTranslator
	// TranslateZeroTrustPolicyIn is TranslateZeroTrustPolicy for a
	// namespace with the given facts.
	TranslateZeroTrustPolicyIn(p *meshv1alpha1.ZeroTrustPolicy, facts NamespaceFacts) ([]client.Object, error)
}

// ReadNamespaceFacts returns the facts of namespace ns as provider p sees
// them; a provider without data-plane variants gets the sidecar default.
func ReadNamespaceFacts(ctx context.Context, r client.Reader, p Provider, ns string) (NamespaceFacts, error) {
	if dr, ok := p.(DataPlaneReader); ok {
		return dr.ReadNamespaceFacts(ctx, r, ns)
	}
	return NamespaceFacts{Name: ns, Mode: Sidecar}, nil
}

// TranslateTrafficSplit translates ts with t for a namespace with facts f.
func TranslateTrafficSplit(t TrafficTranslator, ts *meshv1alpha1.TrafficSplit, f NamespaceFacts) ([]client.Object, error) {
	if dt, ok := t.(DataPlaneTrafficTranslator); ok {
		return dt.TranslateTrafficSplitIn(ts, f)
	}
	return t.TranslateTrafficSplit(ts)
}

// TranslateZeroTrustPolicy translates p with t for a namespace with facts
// f.
func TranslateZeroTrustPolicy(t PolicyTranslator, p *meshv1alpha1.ZeroTrustPolicy, f NamespaceFacts) ([]client.Object, error) {
	if dt, ok := t.(DataPlanePolicyTranslator); ok {
		return dt.TranslateZeroTrustPolicyIn(p, f)
	}
	return t.TranslateZeroTrustPolicy(p)
}

// IsDataPlaneObject reports whether any registered provider's facts depend
// on o.
func (r *Registry) IsDataPlaneObject(o client.Object) bool {
	for _, p := range r.Providers() {
		if dr, ok := p.(DataPlaneReader); ok && dr.DataPlaneObject(o) {
			return true
		}
	}
	return false
}

// DataPlaneKinds returns the data-plane kinds of every registered
// provider, for the controllers' watches.
func (r *Registry) DataPlaneKinds() []client.Object {
	var out []client.Object
	for _, p := range r.Providers() {
		if dr, ok := p.(DataPlaneReader); ok {
			out = append(out, dr.DataPlaneKinds()...)
		}
	}
	return out
}

// TrafficTranslatorIn returns t bound to a namespace's facts: its
// TranslateTrafficSplit translates for that namespace's data plane.
func TrafficTranslatorIn(t TrafficTranslator, f NamespaceFacts) TrafficTranslator {
	return factsTrafficTranslator{TrafficTranslator: t, facts: f}
}

type factsTrafficTranslator struct {
	TrafficTranslator
	facts NamespaceFacts
}

func (t factsTrafficTranslator) TranslateTrafficSplit(ts *meshv1alpha1.TrafficSplit) ([]client.Object, error) {
	return TranslateTrafficSplit(t.TrafficTranslator, ts, t.facts)
}
