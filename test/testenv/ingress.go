package testenv

import (
	"context"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// GatewayClass makes sure the GatewayClass name exists (controller
// example.com/<name>) with Accepted set to accepted, as a Gateway API
// implementation would: Istio's class istio, Cilium's class cilium, or
// the class of the implementation a Linkerd user installed. Classes are
// cluster-scoped and shared by the tests of a package; none is deleted.
func GatewayClass(t testing.TB, c client.Client, name string, accepted bool) {
	t.Helper()
	ctx := context.Background()
	gc := &gatewayv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: gatewayv1.GatewayClassSpec{ControllerName: gatewayv1.GatewayController("example.com/" + name)}}
	if err := c.Create(ctx, gc); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	Eventually(t, DefaultTimeout, "GatewayClass "+name+" status", func() error {
		cur := &gatewayv1.GatewayClass{}
		if err := c.Get(ctx, client.ObjectKey{Name: name}, cur); err != nil {
			return err
		}
		st, reason := metav1.ConditionTrue, "Accepted"
		if !accepted {
			st, reason = metav1.ConditionFalse, "InvalidParameters"
		}
		apimeta.SetStatusCondition(&cur.Status.Conditions, metav1.Condition{Type: "Accepted", Status: st, Reason: reason,
			Message: "set by the test", ObservedGeneration: cur.Generation})
		return c.Status().Update(ctx, cur)
	})
}

// ProgramGateway sets the Gateway's Accepted and Programmed conditions (at
// its generation) and addresses, as its class's controller would once the
// gateway's data plane serves; the simulated clusters run no gateway.
func ProgramGateway(t testing.TB, c client.Client, ns, name string, accepted, programmed bool, addresses ...string) {
	t.Helper()
	ctx := context.Background()
	cond := func(b bool) metav1.ConditionStatus {
		if b {
			return metav1.ConditionTrue
		}
		return metav1.ConditionFalse
	}
	Eventually(t, DefaultTimeout, "Gateway "+ns+"/"+name+" status", func() error {
		gw := &gatewayv1.Gateway{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, gw); err != nil {
			return err
		}
		reason := map[bool]string{true: "Accepted", false: "ListenersNotValid"}[accepted]
		apimeta.SetStatusCondition(&gw.Status.Conditions, metav1.Condition{Type: "Accepted", Status: cond(accepted), Reason: reason,
			Message: "set by the test", ObservedGeneration: gw.Generation})
		preason := map[bool]string{true: "Programmed", false: "AddressNotAssigned"}[programmed]
		apimeta.SetStatusCondition(&gw.Status.Conditions, metav1.Condition{Type: "Programmed", Status: cond(programmed), Reason: preason,
			Message: "set by the test", ObservedGeneration: gw.Generation})
		gw.Status.Addresses = nil
		for _, a := range addresses {
			gw.Status.Addresses = append(gw.Status.Addresses, gatewayv1.GatewayStatusAddress{Type: ptrTo(gatewayv1.IPAddressType), Value: a})
		}
		return c.Status().Update(ctx, gw)
	})
}

func ptrTo[T any](v T) *T { return &v }
