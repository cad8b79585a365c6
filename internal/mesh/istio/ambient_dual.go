package istio

import (
	"slices"

	"google.golang.org/protobuf/proto"
	securityv1beta1 "istio.io/api/security/v1beta1"
	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// While a MeshAdoption moves a namespace from sidecar to ambient
// (mesh.DataPlaneFromAnnotation, NamespaceFacts.Previous), some of its
// pods still run a sidecar and others are captured by ztunnel until the
// last one restarted. What each form of a ZeroTrustPolicy does at the
// other kind of pod decides what may be kept side by side:
//
//   - The selector-bound ALLOW AuthorizationPolicy of the sidecar form,
//     with every rule (L4 and L7), at ztunnel: istiod converts an ALLOW
//     policy for ztunnel rule by rule and drops each rule with HTTP
//     attributes ("L7 policies never match for ALLOW": methods, paths,
//     hosts, request principals), keeping the others
//     (https://istio.io/latest/docs/ambient/usage/l4-policy/; istiod's
//     ambient authorization conversion). Its L7 rules therefore allow
//     nothing at ztunnel, and its L4 rules are exactly those of the
//     ambient form's ztunnel policy. ALLOW policies are ORed, so the
//     sidecar rules add nothing to what an ambient pod accepts, and cannot
//     take anything away.
//   - The ambient form's ztunnel policy has the sidecar policy's name (one
//     object): the two are kept as one policy, the sidecar form's rules
//     plus the ambient form's rule allowing the waypoints' identities.
//     At a sidecar pod that rule lets in requests the waypoint forwards
//     (an ambient caller's request reaches a not-yet-restarted pod from
//     the waypoint's identity), which the waypoint has checked against
//     every rule of <name>-waypoint; without it a sidecar pod would deny
//     requests the policy allows. Every other request is checked against
//     every rule, L7 included, by the sidecar as before the move.
//   - The waypoint policy (<name>-waypoint, targetRefs to the waypoint
//     Gateway) is enforced by the waypoint only: a sidecar applies
//     policies bound to its workload by selector or namespace, never one
//     whose targetRefs name a Gateway.
//   - PeerAuthentication is the same object in both forms; the sidecar
//     form's RequestAuthentication (JWT) is selector-bound, which ztunnel
//     does not read.
//
// So the union never makes a pod of either kind allow what the policy
// denies or deny what it allows. TrafficSplit routes are not kept side by
// side: the sidecar form's VirtualService and the ambient form's Gateway
// API HTTPRoute for the same Service is a mix Istio documents as not
// supported, with undefined behaviour
// (https://istio.io/latest/docs/ambient/migrate/migrate-policies/); the
// HTTPRoute alone is honoured by sidecar callers too (Istio implements
// Gateway API mesh routing, GAMMA, for sidecars), so routing stays in force
// for both kinds of pods with the ambient form only.

// besideSidecar returns the ambient form of a policy with its sidecar
// form kept beside it: ambient's objects, the AuthorizationPolicy both
// forms name alike holding the sidecar form's rules plus those only the
// ambient form has, and every sidecar object ambient lacks.
func besideSidecar(sidecar, ambient []client.Object) []client.Object {
	byName := map[string]client.Object{}
	for _, o := range sidecar {
		byName[kindName(o)] = o
	}
	out := make([]client.Object, 0, len(sidecar)+len(ambient))
	seen := map[string]bool{}
	for _, o := range ambient {
		seen[kindName(o)] = true
		sc, ok := byName[kindName(o)]
		ap, isAP := o.(*istiosecurity.AuthorizationPolicy)
		if !ok || !isAP {
			out = append(out, o)
			continue
		}
		merged := sc.(*istiosecurity.AuthorizationPolicy).DeepCopy()
		for _, r := range ap.Spec.Rules {
			if !slices.ContainsFunc(merged.Spec.Rules, func(have *securityv1beta1.Rule) bool { return proto.Equal(have, r) }) {
				merged.Spec.Rules = append(merged.Spec.Rules, r)
			}
		}
		out = append(out, merged)
	}
	for _, o := range sidecar {
		if !seen[kindName(o)] {
			out = append(out, o)
		}
	}
	return out
}

func kindName(o client.Object) string {
	return o.GetObjectKind().GroupVersionKind().Kind + "/" + o.GetName()
}
