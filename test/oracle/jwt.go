package oracle

import (
	"slices"
	"strings"

	securityv1beta1 "istio.io/api/security/v1beta1"
	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// JWT models: Istio's RequestAuthentication rejects a request whose token
// its jwtRules do not validate (here: an issuer none lists) and passes one
// without a token; an AuthorizationPolicy source's requestPrincipals match
// the token's "<iss>/<sub>" (exact, "*" any, "prefix*", "*suffix"), ANDed
// with the source's other fields; a when condition on
// request.auth.claims[name] needs the claim to hold one of the values
// (https://istio.io/latest/docs/reference/config/security/request_authentication/,
// https://istio.io/latest/docs/reference/config/security/conditions/).

// Token is a request's JSON Web Token.
type Token struct {
	Issuer, Subject string
	// Claims hold each claim's values (a list claim: every element).
	Claims map[string][]string
}

// JWTRequest is a Request that may carry a token.
type JWTRequest struct {
	Request
	Token *Token
}

// JWTIntent is the intent of a ZeroTrustPolicy with spec.jwt for r: a
// token of an issuer the policy does not list is rejected; then the
// policy's intent (Allows) with each rule also requiring its
// requestPrincipals and claims.
func JWTIntent(spec *meshv1alpha1.ZeroTrustPolicySpec, ns string, r JWTRequest) bool {
	if strict(spec) && !r.Meshed {
		return false
	}
	if r.Token != nil && spec.JWT != nil && !slices.ContainsFunc(spec.JWT.Issuers, func(i meshv1alpha1.JWTIssuer) bool { return i.Issuer == r.Token.Issuer }) {
		return false
	}
	if spec.DefaultAction == meshv1alpha1.ActionAllow {
		return true
	}
	return slices.ContainsFunc(spec.Rules, func(rule meshv1alpha1.AllowRule) bool {
		if !fromAllows(rule.From, ns, r.Request) || !toAllows(rule.To, r.Request) {
			return false
		}
		if len(rule.RequestPrincipals) > 0 && !principalMatches(rule.RequestPrincipals, r.Token) {
			return false
		}
		return !slices.ContainsFunc(rule.Claims, func(c meshv1alpha1.JWTClaim) bool { return !claimMatches(r.Token, c.Name, c.Values) })
	})
}

func principalMatches(patterns []string, t *Token) bool {
	if t == nil {
		return false
	}
	p := t.Issuer + "/" + t.Subject
	return slices.ContainsFunc(patterns, func(pat string) bool { return pat == "*" || istioPath(pat, p) })
}

func claimMatches(t *Token, name string, values []string) bool {
	if t == nil {
		return false
	}
	return slices.ContainsFunc(t.Claims[name], func(v string) bool { return slices.Contains(values, v) })
}

// IstioJWTAllows evaluates PeerAuthentication, RequestAuthentication and
// ALLOW AuthorizationPolicies with token conditions for r (selectors not
// modelled).
func IstioJWTAllows(objs []client.Object, r JWTRequest) bool {
	var allow []*securityv1beta1.AuthorizationPolicy
	for _, o := range objs {
		switch p := o.(type) {
		case *istiosecurity.PeerAuthentication:
			if p.Spec.GetMtls().GetMode() == securityv1beta1.PeerAuthentication_MutualTLS_STRICT && !r.Meshed {
				return false
			}
		case *istiosecurity.RequestAuthentication:
			if r.Token != nil && !slices.ContainsFunc(p.Spec.GetJwtRules(), func(j *securityv1beta1.JWTRule) bool { return j.GetIssuer() == r.Token.Issuer }) {
				return false
			}
		case *istiosecurity.AuthorizationPolicy:
			if p.Spec.GetAction() == securityv1beta1.AuthorizationPolicy_ALLOW {
				allow = append(allow, &p.Spec)
			}
		}
	}
	if len(allow) == 0 {
		return true
	}
	return slices.ContainsFunc(allow, func(ap *securityv1beta1.AuthorizationPolicy) bool {
		return slices.ContainsFunc(ap.GetRules(), func(rule *securityv1beta1.Rule) bool { return istioJWTRule(rule, r) })
	})
}

func istioJWTRule(rule *securityv1beta1.Rule, r JWTRequest) bool {
	from := len(rule.GetFrom()) == 0 || slices.ContainsFunc(rule.GetFrom(), func(f *securityv1beta1.Rule_From) bool {
		s := f.GetSource()
		return istioSource(s, r.Request) && (len(s.GetRequestPrincipals()) == 0 || principalMatches(s.GetRequestPrincipals(), r.Token))
	})
	to := istioRule(&securityv1beta1.Rule{To: rule.GetTo()}, false, r.Request)
	when := !slices.ContainsFunc(rule.GetWhen(), func(c *securityv1beta1.Condition) bool {
		name, ok := strings.CutPrefix(c.GetKey(), "request.auth.claims[")
		if !ok {
			return true // a condition the model does not know never matches
		}
		return !claimMatches(r.Token, strings.TrimSuffix(name, "]"), c.GetValues())
	})
	return from && to && when
}
