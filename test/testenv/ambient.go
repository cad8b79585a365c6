package testenv

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// AmbientNamespace creates a namespace of the test enrolled in Istio's
// ambient mode (istio.io/dataplane-mode=ambient) with extra labels.
func AmbientNamespace(t testing.TB, c client.Client, labels map[string]string) string {
	t.Helper()
	l := map[string]string{"istio.io/dataplane-mode": "ambient"}
	for k, v := range labels {
		l[k] = v
	}
	return Namespace(t, c, l)
}

// WaypointGateway returns an Istio waypoint as istioctl waypoint generate
// writes it: a Gateway of class istio-waypoint with the HBONE listener on
// 15008, labelled istio.io/waypoint-for=forWhat.
func WaypointGateway(ns, name, forWhat string) *gatewayv1.Gateway {
	return &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"istio.io/waypoint-for": forWhat}},
		Spec: gatewayv1.GatewaySpec{GatewayClassName: "istio-waypoint",
			Listeners: []gatewayv1.Listener{{Name: "mesh", Port: 15008, Protocol: "HBONE"}}},
	}
}

// UseWaypoint creates the waypoint Gateway name (for service traffic) in
// namespace ns and labels the namespace istio.io/use-waypoint=name.
func UseWaypoint(t testing.TB, c client.Client, ns, name string) {
	t.Helper()
	ctx := context.Background()
	if err := c.Create(ctx, WaypointGateway(ns, name, "service")); err != nil {
		t.Fatal(err)
	}
	n := &corev1.Namespace{}
	if err := c.Get(ctx, client.ObjectKey{Name: ns}, n); err != nil {
		t.Fatal(err)
	}
	n.Labels["istio.io/use-waypoint"] = name
	if err := c.Update(ctx, n); err != nil {
		t.Fatal(err)
	}
}
