package ingressgateway

import (
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/status"
)

func observed(gen int64, accepted, programmed metav1.ConditionStatus, addrs ...string) *gatewayv1.Gateway {
	gw := &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: gen}}
	gw.Status.Conditions = []metav1.Condition{
		{Type: "Accepted", Status: accepted, Reason: "R", Message: "accepted says", ObservedGeneration: 2},
		{Type: "Programmed", Status: programmed, Reason: "P", Message: "programmed says", ObservedGeneration: 2},
	}
	for _, a := range addrs {
		gw.Status.Addresses = append(gw.Status.Addresses, gatewayv1.GatewayStatusAddress{Value: a})
	}
	return gw
}

func TestSetStatus(t *testing.T) {
	inv := apply.Result{Inventory: []meshv1alpha1.ObjectReference{{APIVersion: "gateway.networking.k8s.io/v1", Kind: "Gateway", Name: "web"}}}
	yes := mesh.MTLSReport{Answer: meshv1alpha1.BackendMTLSYes, Reason: "Y", Message: "why yes"}
	unknown := mesh.MTLSReport{Answer: meshv1alpha1.BackendMTLSUnknown, Reason: "NoGatewayPods", Message: "no pods"}
	for _, tc := range []struct {
		name      string
		out       result
		err       error
		state     status.State
		reason    string
		msg       string
		requeue   bool
		addresses int
	}{
		{"programmed", result{provider: "Istio", class: "istio", applied: inv, observed: observed(2, "True", "True", "127.96.0.9"), mtls: yes},
			nil, status.Ready, "", "Gateway web of class istio is programmed, at 127.96.0.9; backends over mTLS: Yes", false, 1},
		{"not yet in the cache", result{provider: "Istio", class: "istio", applied: inv, mtls: unknown},
			nil, status.Progressing, meshv1alpha1.GatewayNotProgrammedReason, "Programmed Unknown, Pending", false, 0},
		{"stale conditions (older generation)", result{provider: "Istio", class: "istio", applied: inv, observed: observed(3, "True", "True"), mtls: yes},
			nil, status.Progressing, meshv1alpha1.GatewayNotProgrammedReason, "has not reported Programmed on the current generation", false, 0},
		{"refused by the class's controller", result{provider: "Istio", class: "istio", applied: inv, observed: observed(2, "False", "False"), mtls: unknown},
			nil, status.Stalled, meshv1alpha1.GatewayNotAcceptedReason, "refused by its controller (Accepted False, R: accepted says)", false, 0},
		{"linkerd pods not yet injected: re-read", result{provider: "Linkerd", class: "eg", applied: inv, observed: observed(2, "True", "True"), mtls: unknown, readsPods: true},
			nil, status.Ready, "", "backends over mTLS: Unknown", true, 0},
		{"linkerd pods injected: no re-read", result{provider: "Linkerd", class: "eg", applied: inv, observed: observed(2, "True", "True"), mtls: yes, readsPods: true},
			nil, status.Ready, "", "backends over mTLS: Yes", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &meshv1alpha1.IngressGateway{ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: 2}}
			sum := setStatus(g, tc.out, tc.err)
			if sum.State != tc.state || sum.Reason != tc.reason || !strings.Contains(sum.Message+testCond(g), tc.msg) {
				t.Fatalf("summary %+v conditions %s", sum, testCond(g))
			}
			if (sum.RequeueAfter > 0) != tc.requeue || len(g.Status.Addresses) != tc.addresses || g.Status.BackendMTLS != tc.out.mtls.Answer ||
				len(g.Status.Inventory) != 1 || g.Status.GatewayClassName != tc.out.class {
				t.Fatalf("requeue %v status %+v", sum.RequeueAfter, g.Status)
			}
			if c := status.Get(&g.Status.CommonStatus, meshv1alpha1.BackendMTLSCondition); c == nil || c.Message != tc.out.mtls.Message {
				t.Fatalf("BackendMTLS condition %+v", c)
			}
		})
	}
	t.Run("an error keeps the last observation", func(t *testing.T) {
		g := &meshv1alpha1.IngressGateway{ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: 3},
			Status: meshv1alpha1.IngressGatewayStatus{GatewayClassName: "istio", BackendMTLS: meshv1alpha1.BackendMTLSYes, Inventory: inv.Inventory}}
		sum := setStatus(g, result{provider: "Istio"}, errors.New("boom"))
		if sum != (status.Summary{}) || g.Status.GatewayClassName != "istio" || g.Status.BackendMTLS != meshv1alpha1.BackendMTLSYes || len(g.Status.Inventory) != 1 {
			t.Fatalf("summary %+v status %+v", sum, g.Status)
		}
	})
}

func testCond(g *meshv1alpha1.IngressGateway) string {
	var b strings.Builder
	for _, c := range g.Status.Conditions {
		b.WriteString(" " + c.Type + "=" + string(c.Status) + " " + c.Reason + ": " + c.Message)
	}
	return b.String()
}
