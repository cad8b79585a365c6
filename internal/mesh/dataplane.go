package mesh

import corev1 "k8s.io/api/core/v1"

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
	// Waypoint names the waypoint proxy that serves the namespace (ambient),
	// empty for none.
	Waypoint string
}

// DataPlaneDescriber is implemented by meshes that tell a namespace's
// data-plane mode from its labels and annotations.
type DataPlaneDescriber interface {
	// DataPlane returns the facts of ns.
	DataPlane(ns *corev1.Namespace) NamespaceFacts
}
