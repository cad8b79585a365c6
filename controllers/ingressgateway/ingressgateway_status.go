package ingressgateway

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/status"
)

// setStatus records the outcome of a reconcile on g and returns the
// summary status.Finish completes: Ready once the Gateway is programmed,
// Stalled when its controller refused it, Reconciling at the current
// generation while it waits.
func setStatus(g *meshv1alpha1.IngressGateway, out result, err error) status.Summary {
	st := &g.Status
	if out.provider != "" {
		st.Provider = out.provider
	}
	// What a failed apply wrote is recorded too, so pruning stays exact.
	if inv := out.applied.Inventory; err == nil || inv != nil {
		st.Inventory = inv
	}
	if err != nil {
		return status.Summary{}
	}
	st.GatewayClassName = out.class
	setGateway(g, out.observed)
	setMTLS(g, out)
	name := fmt.Sprintf("Gateway %s of class %s", g.Name, out.class)
	accepted := status.Get(&st.CommonStatus, meshv1alpha1.GatewayAcceptedCondition)
	programmed := status.Get(&st.CommonStatus, meshv1alpha1.GatewayProgrammedCondition)
	var requeue = podRecheck
	if !out.readsPods || st.BackendMTLS == meshv1alpha1.BackendMTLSYes {
		requeue = 0
	}
	switch {
	case accepted.Status == metav1.ConditionFalse:
		st.ObservedGeneration = g.Generation
		return status.Summary{State: status.Stalled, Reason: meshv1alpha1.GatewayNotAcceptedReason,
			Message: fmt.Sprintf("%s was refused by its controller (Accepted False, %s: %s); fix the spec (listeners, certificateRefs) or the class",
				name, accepted.Reason, accepted.Message)}
	case programmed.Status != metav1.ConditionTrue:
		return status.Summary{State: status.Progressing, Current: true, Reason: meshv1alpha1.GatewayNotProgrammedReason, RequeueAfter: requeue,
			Message: fmt.Sprintf("%s is applied and waits for its controller to program it (Programmed %s, %s: %s)",
				name, programmed.Status, programmed.Reason, programmed.Message)}
	}
	at := "no address reported"
	if len(st.Addresses) > 0 {
		at = "at " + strings.Join(st.Addresses, ", ")
	}
	return status.Summary{RequeueAfter: requeue,
		Message: fmt.Sprintf("%s is programmed, %s; backends over mTLS: %s", name, at, st.BackendMTLS)}
}

// setGateway copies the Gateway's Accepted and Programmed conditions (at
// its current generation, else Unknown) and addresses.
func setGateway(g *meshv1alpha1.IngressGateway, gw *gatewayv1.Gateway) {
	st := &g.Status
	for typ, of := range map[string]gatewayv1.GatewayConditionType{
		meshv1alpha1.GatewayAcceptedCondition:   gatewayv1.GatewayConditionAccepted,
		meshv1alpha1.GatewayProgrammedCondition: gatewayv1.GatewayConditionProgrammed,
	} {
		c := gatewayCondition(gw, of)
		if c == nil {
			status.Set(&st.CommonStatus, g.Generation, typ, metav1.ConditionUnknown, string(gatewayv1.GatewayReasonPending),
				fmt.Sprintf("the class's controller has not reported %s on the current generation of Gateway %s yet", of, g.Name))
			continue
		}
		status.Set(&st.CommonStatus, g.Generation, typ, c.Status, c.Reason, c.Message)
	}
	st.Addresses = nil
	if gw != nil {
		for _, a := range gw.Status.Addresses {
			if len(st.Addresses) < 16 {
				st.Addresses = append(st.Addresses, a.Value)
			}
		}
	}
}

// setMTLS records the mTLS answer and its condition.
func setMTLS(g *meshv1alpha1.IngressGateway, out result) {
	st := &g.Status
	st.BackendMTLS = out.mtls.Answer
	cs := metav1.ConditionUnknown
	switch out.mtls.Answer {
	case meshv1alpha1.BackendMTLSYes:
		cs = metav1.ConditionTrue
	case meshv1alpha1.BackendMTLSNo:
		cs = metav1.ConditionFalse
	}
	status.Set(&st.CommonStatus, g.Generation, meshv1alpha1.BackendMTLSCondition, cs, out.mtls.Reason, out.mtls.Message)
}
