package istio

import (
	"slices"

	securityv1beta1 "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// JWT request authentication of a ZeroTrustPolicy (spec.jwt, rules'
// requestPrincipals and claims), following
// https://istio.io/latest/docs/reference/config/security/request_authentication/
// and https://istio.io/latest/docs/reference/config/security/conditions/:
//
//   - spec.jwt becomes a RequestAuthentication named like the policy, with
//     the policy's selector: a request with an invalid token (wrong
//     issuer, signature, audience or expiry) is rejected; one without a
//     token passes it.
//   - A rule's requestPrincipals go into every source of the rule (Istio
//     ANDs the fields of a source, so each caller must also carry such a
//     token), or into a source of their own when the rule has no from.
//   - A rule's claims become when conditions on request.auth.claims[name],
//     ANDed with the rest of the rule.
//
// Requiring a token is therefore a rule with requestPrincipals (["*"] for
// any valid token) under defaultAction Deny.

// +kubebuilder:rbac:groups=security.istio.io,resources=requestauthentications,verbs=get;list;watch;create;update;patch;delete

// requestAuthentication returns the RequestAuthentication of pol bound to
// sel, or nil when pol has no spec.jwt.
func requestAuthentication(pol *meshv1alpha1.ZeroTrustPolicy, sel *typev1beta1.WorkloadSelector) *istiosecurity.RequestAuthentication {
	if pol.Spec.JWT == nil {
		return nil
	}
	ra := &istiosecurity.RequestAuthentication{
		TypeMeta:   metav1.TypeMeta{APIVersion: istiosecurity.SchemeGroupVersion.String(), Kind: "RequestAuthentication"},
		ObjectMeta: metav1.ObjectMeta{Name: pol.Name, Namespace: pol.Namespace},
	}
	ra.Spec.Selector = sel
	for _, is := range pol.Spec.JWT.Issuers {
		rule := &securityv1beta1.JWTRule{Issuer: is.Issuer, Audiences: is.Audiences, JwksUri: is.JWKSURI, Jwks: is.JWKS,
			FromParams: is.FromParams, ForwardOriginalToken: is.ForwardOriginalToken}
		for _, h := range is.FromHeaders {
			rule.FromHeaders = append(rule.FromHeaders, &securityv1beta1.JWTHeader{Name: h.Name, Prefix: h.Prefix})
		}
		ra.Spec.JwtRules = append(ra.Spec.JwtRules, rule)
	}
	return ra
}

// jwtOutputs is the RequestAuthentication of pol as a list of outputs
// (empty without spec.jwt).
func jwtOutputs(pol *meshv1alpha1.ZeroTrustPolicy, sel *typev1beta1.WorkloadSelector) []client.Object {
	if ra := requestAuthentication(pol, sel); ra != nil {
		return []client.Object{ra}
	}
	return nil
}

// addJWTConditions adds the requestPrincipals and claims of each rule of
// pol to the AuthorizationPolicy rule translated from it (same index).
func addJWTConditions(pol *meshv1alpha1.ZeroTrustPolicy, ap *istiosecurity.AuthorizationPolicy) {
	for i, r := range pol.Spec.Rules {
		if i >= len(ap.Spec.Rules) || !mesh.HasJWTConditions(r) {
			continue
		}
		rule := ap.Spec.Rules[i]
		if len(r.RequestPrincipals) > 0 {
			if len(rule.From) == 0 {
				rule.From = []*securityv1beta1.Rule_From{{Source: &securityv1beta1.Source{}}}
			}
			for _, f := range rule.From {
				f.Source.RequestPrincipals = slices.Clone(r.RequestPrincipals)
			}
		}
		for _, c := range r.Claims {
			rule.When = append(rule.When, &securityv1beta1.Condition{Key: "request.auth.claims[" + c.Name + "]", Values: slices.Clone(c.Values)})
		}
	}
}

func isRequestAuthentication(o client.Object) bool {
	_, ok := o.(*istiosecurity.RequestAuthentication)
	return ok
}

// TranslateZeroTrustPolicyIn translates pol for a namespace (see
// translateZeroTrustPolicyIn). In an ambient namespace request tokens are
// validated only by a waypoint (ztunnel sees no HTTP): a policy with
// spec.jwt is refused without one, and with a workload selector (a
// waypoint policy binds to the waypoint, not to workload labels); else its
// RequestAuthentication is bound with targetRefs to every waypoint of the
// namespace, and its token rules are enforced there with the other L7
// rules.
func (p *Provider) TranslateZeroTrustPolicyIn(pol *meshv1alpha1.ZeroTrustPolicy, f mesh.NamespaceFacts) ([]client.Object, error) {
	if f.Mode != mesh.Ambient || pol.Spec.JWT == nil {
		return p.translateZeroTrustPolicyIn(pol, f)
	}
	if err := mesh.ValidateZeroTrustPolicy(pol); err != nil {
		return nil, err
	}
	waypoints := serviceWaypoints(f)
	if len(waypoints) == 0 {
		return nil, refuseAmbient("spec.jwt: namespace %s is ambient and no waypoint serves it: request tokens are validated by a waypoint "+
			"(ztunnel sees no HTTP); %s (nothing was applied)", f.Name, EnableWaypointHint(f.Name))
	}
	if s := pol.Spec.Selector; s != nil && (len(s.MatchLabels) > 0 || len(s.MatchExpressions) > 0) {
		return nil, refuseAmbient("spec.selector with spec.jwt: in ambient namespace %s tokens are validated by waypoint %s, where a policy binds "+
			"to the waypoint, not to workload labels; remove spec.selector (nothing was applied)", f.Name, waypoints[0])
	}
	out, err := p.translateZeroTrustPolicyIn(pol, f)
	if err != nil {
		return nil, err
	}
	ra := requestAuthentication(pol, nil)
	for _, name := range waypoints {
		ra.Spec.TargetRefs = append(ra.Spec.TargetRefs, &typev1beta1.PolicyTargetReference{Group: gatewayv1.GroupName, Kind: "Gateway", Name: name})
	}
	if f.Previous == mesh.Sidecar {
		// Moving from sidecar mode: the sidecar form's RequestAuthentication
		// <name> (namespace-wide, which ztunnel does not read) stays, so a
		// pod not yet restarted still validates tokens, and the waypoint's
		// is <name>-waypoint beside it. The passed gate moves the waypoint's
		// to <name> (written before <name>-waypoint is pruned); a failed one
		// prunes <name>-waypoint and keeps <name> as it was.
		ra.Name = pol.Name + WaypointPolicySuffix
		return append(out, ra), nil
	}
	out = slices.DeleteFunc(out, isRequestAuthentication)
	return append(out, ra), nil
}
