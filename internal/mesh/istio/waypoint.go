package istio

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// Waypoints Meshplane deploys for spec.istio.waypoints, as istioctl
// waypoint apply writes them
// (https://istio.io/latest/docs/ambient/usage/waypoint/).
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gateways,verbs=get;list;watch;create;update;patch;delete

var _ mesh.WaypointInstaller = (*Provider)(nil)

// Waypoints reads spec.istio.waypoints.
func (*Provider) Waypoints(mi *meshv1alpha1.MeshInstall) []mesh.Waypoint {
	if mi.Spec.Istio == nil {
		return nil
	}
	out := make([]mesh.Waypoint, 0, len(mi.Spec.Istio.Waypoints))
	for i, w := range mi.Spec.Istio.Waypoints {
		name, forWhat := w.Name, string(w.For)
		if name == "" {
			name = "waypoint"
		}
		if forWhat == "" {
			forWhat = "service"
		}
		out = append(out, mesh.Waypoint{Field: fmt.Sprintf("spec.istio.waypoints[%d]", i),
			Namespace: w.Namespace, Name: name, For: forWhat})
	}
	return out
}

// WaypointObject is the waypoint's Gateway: class istio-waypoint, the
// HBONE listener "mesh" on 15008, labelled istio.io/waypoint-for.
func (*Provider) WaypointObject(w mesh.Waypoint) client.Object {
	return &gatewayv1.Gateway{
		TypeMeta: metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: "Gateway"},
		ObjectMeta: metav1.ObjectMeta{Name: w.Name, Namespace: w.Namespace,
			Labels: map[string]string{WaypointForLabel: w.For}},
		Spec: gatewayv1.GatewaySpec{GatewayClassName: WaypointClass,
			Listeners: []gatewayv1.Listener{{Name: "mesh", Port: WaypointPort, Protocol: "HBONE"}}},
	}
}

// WaypointNamespaceLabel is istio.io/use-waypoint.
func (*Provider) WaypointNamespaceLabel() string { return UseWaypointLabel }

// WaypointProgrammed reads the Gateway's Programmed condition, which
// istiod sets once the waypoint's Deployment serves.
func (*Provider) WaypointProgrammed(ctx context.Context, r client.Reader, w mesh.Waypoint) (bool, string, error) {
	var g gatewayv1.Gateway
	if err := r.Get(ctx, client.ObjectKey{Namespace: w.Namespace, Name: w.Name}, &g); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return false, "the waypoint Gateway does not exist yet", nil
		}
		return false, "", err
	}
	c := meta.FindStatusCondition(g.Status.Conditions, string(gatewayv1.GatewayConditionProgrammed))
	switch {
	case c == nil:
		return false, "waiting for istiod to program the waypoint (Gateway condition Programmed not reported yet)", nil
	case c.Status != metav1.ConditionTrue:
		return false, fmt.Sprintf("waiting for istiod to program the waypoint (Gateway condition Programmed is %s, %s: %s)", c.Status, c.Reason, c.Message), nil
	}
	return true, "", nil
}
