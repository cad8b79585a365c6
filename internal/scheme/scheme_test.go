package scheme_test

import (
	"context"
	"testing"

	ciliumv2 "github.com/cilium/cilium/pkg/k8s/apis/cilium.io/v2"
	ciliumapi "github.com/cilium/cilium/pkg/policy/api"
	linkerdserver "github.com/linkerd/linkerd2/controller/gen/apis/server/v1beta3"
	istioapinetworking "istio.io/api/networking/v1alpha3"
	istioapisecurity "istio.io/api/security/v1beta1"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/test/cluster"
)

// TestTypedObjectsRoundTripThroughRealCRDs writes one typed object of every
// third-party API in the scheme to an API server that has the real CRDs, and
// reads it back, so a scheme registration that does not match the served
// group, version or kind fails here rather than in a controller.
func TestTypedObjectsRoundTripThroughRealCRDs(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an API server")
	}
	cfg := cluster.UseEnvtest(t, cluster.EnvtestOptions{})
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ns := "shop"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: ns} }
	port := gatewayv1.PortNumber(9080)
	objs := []client.Object{
		&istionetworking.VirtualService{ObjectMeta: meta("reviews"), Spec: istioapinetworking.VirtualService{
			Hosts: []string{"reviews"},
			Http: []*istioapinetworking.HTTPRoute{{Route: []*istioapinetworking.HTTPRouteDestination{
				{Destination: &istioapinetworking.Destination{Host: "reviews-v1"}, Weight: 100},
			}}},
		}},
		&istiosecurity.PeerAuthentication{ObjectMeta: meta("default"), Spec: istioapisecurity.PeerAuthentication{
			Mtls: &istioapisecurity.PeerAuthentication_MutualTLS{Mode: istioapisecurity.PeerAuthentication_MutualTLS_STRICT},
		}},
		&gatewayv1.HTTPRoute{ObjectMeta: meta("reviews"), Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
				Group: ptr(gatewayv1.Group("")), Kind: ptr(gatewayv1.Kind("Service")), Name: "reviews", Port: &port,
			}}},
			Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
				BackendObjectReference: gatewayv1.BackendObjectReference{Name: "reviews-v1", Port: &port},
			}}}}},
		}},
		&ciliumv2.CiliumNetworkPolicy{ObjectMeta: meta("reviews"), Spec: &ciliumapi.Rule{
			EndpointSelector: ciliumapi.NewESFromLabels(),
			Ingress: []ciliumapi.IngressRule{{IngressCommonRule: ciliumapi.IngressCommonRule{
				FromEndpoints: []ciliumapi.EndpointSelector{ciliumapi.NewESFromLabels()},
			}}},
		}},
		&linkerdserver.Server{ObjectMeta: meta("reviews"), Spec: linkerdserver.ServerSpec{
			PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "reviews"}},
			Port:        intstr.FromInt32(9080), ProxyProtocol: "HTTP/1",
		}},
		&meshv1alpha1.TrafficSplit{ObjectMeta: meta("reviews"), Spec: meshv1alpha1.TrafficSplitSpec{
			Service:  meshv1alpha1.ServiceReference{Name: "reviews"},
			Backends: []meshv1alpha1.WeightedBackend{{Name: "reviews-v1", Weight: 100}},
		}},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			t.Errorf("%T: create: %v", o, err)
			continue
		}
		if err := c.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
			t.Errorf("%T: get: %v", o, err)
		}
	}
}

func ptr[T any](v T) *T { return &v }
