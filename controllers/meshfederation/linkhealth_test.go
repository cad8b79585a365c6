package meshfederation_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/testenv"
)

// mirrorSlice is the EndpointSlice the EndpointSlice mirroring controller
// makes of the Endpoints Linkerd's service mirror writes for a Service
// mirrored from peer: the peer's gateway address (a documentation
// address: the API server refuses loopback ones), ready or not (the
// service mirror sets it not ready while the gateway fails its probe).
func mirrorSlice(ns, svc, peer string, ready bool) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: svc + "-mirror",
		Labels: map[string]string{"mirror.linkerd.io/mirrored-service": "true", "mirror.linkerd.io/cluster-name": peer,
			discoveryv1.LabelServiceName: svc, discoveryv1.LabelManagedBy: "endpointslicemirroring-controller.k8s.io"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"192.0.2.10"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
	}
}

// TestRotationWaitsForLinkHealth: with Links in place, a trust rotation
// leaves a phase only while every member's links report healthy. Local's
// service mirror marks a Service mirrored from east not ready (east's
// gateway fails its probe): the rotation holds in its first phase, naming
// the link and the Service; once the mirror is ready again it completes.
func TestRotationWaitsForLinkHealth(t *testing.T) {
	e := setupLinks(t)
	ctx := context.Background()
	setGatewayIngress(t, e.local, "127.96.2.1")
	setGatewayIngress(t, e.east, "127.96.2.2")
	mustCreate(t, e.local, linksFederation("mesh"))
	testenv.Eventually(t, 30*time.Second, "local linked to east", func() error {
		if p := peer(memberSvc(e.get(t), "local"), "east"); !p.Linked {
			return testenv.Errorf("local -> east %+v", p)
		}
		if f := e.get(t); !apimeta.IsStatusConditionTrue(f.Status.Conditions, meshv1alpha1.RootReadyCondition) {
			return testenv.Errorf("root not ready: %+v", f.Status.Conditions)
		}
		return nil
	})
	mustCreate(t, e.local, ns("shop"), mirrorSlice("shop", "ratings-east", "east", false),
		// A mirror without endpoints (east's Service has none) says nothing.
		&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "empty-east-mirror",
			Labels: map[string]string{"mirror.linkerd.io/mirrored-service": "true", "mirror.linkerd.io/cluster-name": "east", discoveryv1.LabelServiceName: "empty-east"}},
			AddressType: discoveryv1.AddressTypeIPv4})

	f := e.get(t)
	base := f.DeepCopy()
	f.Spec.Rotation.Trigger = "r1"
	if err := e.local.Patch(ctx, f, client.MergeFrom(base)); err != nil { // no optimistic lock: the controller writes status meanwhile
		t.Fatal(err)
	}
	const why = "links between members not healthy: local → east: the service mirror marks the endpoints of shop/ratings-east not ready: east's gateway fails its probe"
	testenv.Eventually(t, 30*time.Second, "rotation holding on the link", func() error {
		r := e.get(t).Status.Rotation
		if r == nil || r.Trigger != "r1" || r.Phase != meshv1alpha1.RotationAddingRoot || !strings.Contains(r.Message, why) {
			return testenv.Errorf("rotation %+v", r)
		}
		return nil
	})
	time.Sleep(2 * time.Second) // several polls (100 ms)
	if r := e.get(t).Status.Rotation; r.Phase != meshv1alpha1.RotationAddingRoot || !strings.Contains(r.Message, why) {
		t.Fatalf("the rotation left its phase with an unhealthy link: %+v", r)
	}

	es := &discoveryv1.EndpointSlice{}
	if err := e.local.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "ratings-east-mirror"}, es); err != nil {
		t.Fatal(err)
	}
	es.Endpoints[0].Conditions.Ready = ptr(true)
	if err := e.local.Update(ctx, es); err != nil {
		t.Fatal(err)
	}
	// The local member is watched only through its own objects: a change
	// in the operator namespace wakes the federation at once.
	mustCreate(t, e.local, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "poke-healthy"}})
	testenv.Eventually(t, 60*time.Second, "rotation completed once the link is healthy", func() error {
		if r := e.get(t).Status.Rotation; r == nil || r.Phase != meshv1alpha1.RotationCompleted {
			return testenv.Errorf("rotation %+v", r)
		}
		return nil
	})
}
