package cilium

import "github.com/meshplane/meshplane/internal/mesh"

// RBAC for the kinds only Cilium's chart contains.
//
// +kubebuilder:rbac:groups=cilium.io,resources=ciliumnodeconfigs;ciliumloadbalancerippools,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gatewayclasses,verbs=get;list;watch;create;update;patch;delete

// DataPlaneUpgraded: Cilium's data plane is its agent DaemonSet, whose
// rollout is the control plane's health check.
func (*Provider) DataPlaneUpgraded() string { return "the cilium DaemonSet rolled out" }

var _ mesh.NodeDataPlane = (*Provider)(nil)
