package oracle

import (
	"regexp"
	"slices"
	"strconv"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	securityv1beta1 "istio.io/api/security/v1beta1"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// IstioAllows evaluates Istio's PeerAuthentications and
// AuthorizationPolicies in objs for r at a workload they select (selectors
// are not modelled: every policy selects the workload). ztunnel is true for
// an ambient workload without a waypoint: L4 only.
func IstioAllows(objs []client.Object, ztunnel bool, r Request) bool {
	var allow []*securityv1beta1.AuthorizationPolicy
	for _, o := range objs {
		switch p := o.(type) {
		case *istiosecurity.PeerAuthentication:
			// STRICT refuses plain text; PERMISSIVE accepts it without an
			// identity.
			if p.Spec.GetMtls().GetMode() == securityv1beta1.PeerAuthentication_MutualTLS_STRICT && !r.Meshed {
				return false
			}
		case *istiosecurity.AuthorizationPolicy:
			switch p.Spec.GetAction() {
			case securityv1beta1.AuthorizationPolicy_DENY:
				if slices.ContainsFunc(p.Spec.GetRules(), func(rule *securityv1beta1.Rule) bool { return istioRule(rule, ztunnel, r) }) {
					return false
				}
			case securityv1beta1.AuthorizationPolicy_ALLOW:
				allow = append(allow, &p.Spec)
			}
		}
	}
	if len(allow) == 0 {
		return true
	}
	return slices.ContainsFunc(allow, func(ap *securityv1beta1.AuthorizationPolicy) bool {
		return slices.ContainsFunc(ap.GetRules(), func(rule *securityv1beta1.Rule) bool { return istioRule(rule, ztunnel, r) })
	})
}

// istioRule: a rule matches when any from and any to match (each absent
// list matches everything); the fields of one source or operation are
// ANDed, the values of one field ORed.
func istioRule(rule *securityv1beta1.Rule, ztunnel bool, r Request) bool {
	from := len(rule.GetFrom()) == 0 || slices.ContainsFunc(rule.GetFrom(), func(f *securityv1beta1.Rule_From) bool {
		return istioSource(f.GetSource(), r)
	})
	to := len(rule.GetTo()) == 0 || slices.ContainsFunc(rule.GetTo(), func(t *securityv1beta1.Rule_To) bool {
		op := t.GetOperation()
		if ztunnel && (len(op.GetMethods()) > 0 || len(op.GetPaths()) > 0) {
			// ztunnel cannot see HTTP: the L7 part of an ALLOW rule
			// never matches.
			return false
		}
		return (len(op.GetPorts()) == 0 || slices.Contains(op.GetPorts(), strconv.Itoa(int(r.Port)))) &&
			(len(op.GetMethods()) == 0 || slices.Contains(op.GetMethods(), r.Method)) &&
			(len(op.GetPaths()) == 0 || slices.ContainsFunc(op.GetPaths(), func(p string) bool { return istioPath(p, r.Path) }))
	})
	return from && to
}

func istioSource(s *securityv1beta1.Source, r Request) bool {
	if len(s.GetServiceAccounts()) > 0 && (!r.Meshed || !slices.Contains(s.GetServiceAccounts(), r.Namespace+"/"+r.ServiceAccount)) {
		return false
	}
	if len(s.GetPrincipals()) > 0 && (!r.Meshed ||
		!slices.Contains(s.GetPrincipals(), "cluster.local/ns/"+r.Namespace+"/sa/"+r.ServiceAccount)) {
		return false
	}
	if len(s.GetNamespaces()) > 0 && (!r.Meshed || !slices.Contains(s.GetNamespaces(), r.Namespace)) {
		return false
	}
	return true
}

// istioPath: exact, "prefix*" or "*suffix".
func istioPath(p, path string) bool {
	switch {
	case strings.HasSuffix(p, "*"):
		return strings.HasPrefix(path, strings.TrimSuffix(p, "*"))
	case strings.HasPrefix(p, "*"):
		return strings.HasSuffix(path, strings.TrimPrefix(p, "*"))
	}
	return p == path
}

// VirtualServiceRoutes returns where the first VirtualService in objs
// sends r: the first http route with a matching match (no match: every
// request), its destinations' weights (one destination without a weight
// takes everything). ok is false when no route matches (404).
func VirtualServiceRoutes(objs []client.Object, r Request) (Route, bool) {
	for _, o := range objs {
		vs, isVS := o.(*istionetworking.VirtualService)
		if !isVS {
			continue
		}
		for _, hr := range vs.Spec.GetHttp() {
			if len(hr.GetMatch()) > 0 && !slices.ContainsFunc(hr.GetMatch(), func(m *networkingv1alpha3.HTTPMatchRequest) bool { return vsMatch(m, r) }) {
				continue
			}
			out := Route{}
			for _, d := range hr.GetRoute() {
				w := d.GetWeight()
				if len(hr.GetRoute()) == 1 && w == 0 {
					w = 100
				}
				out[d.GetDestination().GetHost()] += w
			}
			return out, true
		}
	}
	return nil, false
}

func vsMatch(m *networkingv1alpha3.HTTPMatchRequest, r Request) bool {
	if m.GetPort() != 0 && uint32(r.Port) != m.GetPort() {
		return false
	}
	if m.GetUri() != nil && !stringMatch(m.GetUri(), r.Path) {
		return false
	}
	if m.GetMethod() != nil && !stringMatch(m.GetMethod(), r.Method) {
		return false
	}
	for name, sm := range m.GetHeaders() {
		v, ok := r.Headers[name]
		if !ok || !stringMatch(sm, v) {
			return false
		}
	}
	return true
}

// stringMatch is Istio's StringMatch; regex is RE2, fully anchored.
func stringMatch(sm *networkingv1alpha3.StringMatch, v string) bool {
	switch m := sm.GetMatchType().(type) {
	case *networkingv1alpha3.StringMatch_Exact:
		return v == m.Exact
	case *networkingv1alpha3.StringMatch_Prefix:
		return strings.HasPrefix(v, m.Prefix)
	case *networkingv1alpha3.StringMatch_Regex:
		return regexp.MustCompile("^(?:" + m.Regex + ")$").MatchString(v)
	}
	return false
}
