package linkerd

import (
	"fmt"
	"slices"
	"strings"

	linkerdserver "github.com/linkerd/linkerd2/controller/gen/apis/server/v1beta3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/gamma"
	"github.com/meshplane/meshplane/internal/outcome"
)

// Retry annotations Linkerd reads on a Gateway API HTTPRoute.
const (
	RetryHTTPAnnotation    = "retry.linkerd.io/http"
	RetryGRPCAnnotation    = "retry.linkerd.io/grpc"
	RetryLimitAnnotation   = "retry.linkerd.io/limit"
	RetryTimeoutAnnotation = "retry.linkerd.io/timeout"
)

var httpRetryOn = map[meshv1alpha1.RetryOn]string{"5xx": "5xx", "GatewayError": "gateway-error", "Retriable4xx": "409"}
var grpcRetryOn = map[meshv1alpha1.RetryOn]string{"Unavailable": "unavailable", "Cancelled": "cancelled", "DeadlineExceeded": "deadline-exceeded"}

// TranslateTrafficSplit returns a GAMMA HTTPRoute (gateway.networking.k8s.io/v1)
// whose parent is the root Service. Retries become Linkerd's retry.linkerd.io
// annotations on the route; Linkerd's proxy has no retry on connection
// resets or refused streams, so those conditions are refused.
func (p *Provider) TranslateTrafficSplit(ts *meshv1alpha1.TrafficSplit) ([]client.Object, error) {
	if err := mesh.ValidateTrafficSplit(ts); err != nil {
		return nil, err
	}
	if err := mesh.Check(p, mesh.TrafficSplitRequirements(&ts.Spec)...); err != nil {
		return nil, err
	}
	objs, err := p.translateTrafficSplit(ts)
	if err != nil {
		return nil, err
	}
	if err := mesh.CheckOutputs("TrafficSplit "+ts.Name, objs); err != nil {
		return nil, err
	}
	return objs, nil
}

func (p *Provider) translateTrafficSplit(ts *meshv1alpha1.TrafficSplit) ([]client.Object, error) {
	route, err := gamma.HTTPRoute(ts, p.Name())
	if err != nil {
		return nil, err
	}
	if r := ts.Spec.Retries; r != nil {
		ann := map[string]string{}
		if err := retryAnnotations(ann, r, ""); err != nil {
			return nil, err
		}
		route.Annotations = ann
	}
	return []client.Object{route}, nil
}

// inboundPolicy is the namespace default-inbound-policy for a mode and a
// default action.
func inboundPolicy(permissive, allow bool) string {
	switch {
	case !allow:
		return "deny"
	case permissive:
		return "all-unauthenticated"
	default:
		return "all-authenticated"
	}
}

// TranslateZeroTrustPolicy returns, for a namespace-wide policy:
//
//   - the namespace's config.linkerd.io/default-inbound-policy annotation
//     (deny, all-authenticated or all-unauthenticated), which Linkerd's
//     proxies read when they are injected;
//   - a Server per port the rules name (pod selector: every pod), whose
//     accessPolicy is the same default;
//   - per rule a MeshTLSAuthentication of its sources (service accounts and
//     namespaces as identityRefs; any meshed identity when the rule has no
//     sources, or a NetworkAuthentication of every address under
//     Permissive), and AuthorizationPolicies targeting the Servers, or
//     policy.linkerd.io HTTPRoutes for rules with methods or paths. A Server
//     that has routes gets a catch-all route for the rules without methods
//     or paths, because Linkerd refuses requests that match no route.
//
// Linkerd authorizes per Server, that is per pod port, and sets a
// per-workload default only through pod annotations, which Meshplane does
// not write: a workload selector, or (with Deny) a rule without ports, is
// refused. Only one namespace-wide policy per namespace may use Linkerd
// (CheckExclusive, which the controller asks, as both would own the
// annotation).
//
// Output names are derived from the policy's name, the rule's name
// (mesh.PolicyRuleName), the destination's index and the port; two outputs
// of one kind never share a name (mesh.CheckOutputs refuses the
// translation otherwise) and a name over 253 characters is refused.
func (p *Provider) TranslateZeroTrustPolicy(pol *meshv1alpha1.ZeroTrustPolicy) ([]client.Object, error) {
	if err := mesh.ValidateZeroTrustPolicy(pol); err != nil {
		return nil, err
	}
	if err := mesh.Check(p, mesh.ZeroTrustPolicyRequirements(&pol.Spec)...); err != nil {
		return nil, err
	}
	objs, err := p.translatePolicy(pol)
	if err != nil {
		return nil, err
	}
	objs = audited(pol, objs)
	if err := mesh.CheckOutputs("ZeroTrustPolicy "+pol.Name, objs); err != nil {
		return nil, err
	}
	return objs, nil
}

func (p *Provider) translatePolicy(pol *meshv1alpha1.ZeroTrustPolicy) ([]client.Object, error) {
	ns, name := pol.Namespace, pol.Name
	permissive := pol.Spec.MTLS != nil && pol.Spec.MTLS.Mode == meshv1alpha1.MTLSPermissive
	allow := pol.Spec.DefaultAction == meshv1alpha1.ActionAllow
	def := inboundPolicy(permissive, allow)
	out := []client.Object{&corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: ns, Annotations: map[string]string{DefaultInboundPolicyAnnotation: def}},
	}}

	plan, err := routedPorts(pol)
	if err != nil {
		return nil, err
	}
	ports, routes := plan.ports, plan.routes
	meta := func(n string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: n, Namespace: ns} }
	serverName := func(port int32) string { return fmt.Sprintf("%s-%d", name, port) }
	for _, port := range ports {
		out = append(out, &linkerdserver.Server{
			TypeMeta:   metav1.TypeMeta{APIVersion: "policy.linkerd.io/v1beta3", Kind: "Server"},
			ObjectMeta: meta(serverName(port)),
			Spec: linkerdserver.ServerSpec{PodSelector: &metav1.LabelSelector{}, Port: intstr.FromInt32(port),
				ProxyProtocol: "unknown", AccessPolicy: def},
		})
	}
	for i, r := range pol.Spec.Rules {
		rn := ruleName(name, i, r)
		authn, objs := authentication(rn, ns, r.From, permissive)
		out = append(out, objs...)
		target := func(kind, target, apName string) {
			out = append(out, &AuthorizationPolicy{
				TypeMeta:   metav1.TypeMeta{APIVersion: PolicyV1alpha1.String(), Kind: "AuthorizationPolicy"},
				ObjectMeta: meta(apName),
				Spec: AuthorizationPolicySpec{TargetRef: PolicyReference{Group: PolicyGroup, Kind: kind, Name: target},
					RequiredAuthenticationRefs: []PolicyReference{authn}},
			})
		}
		for j, t := range r.To {
			l7 := len(t.Methods) > 0 || len(t.Paths) > 0
			for _, port := range t.Ports {
				switch {
				case l7:
					routeName := l7RouteName(rn, j, port)
					route, err := policyRoute(routeName, ns, serverName(port), t, plan.exact[port][j]...)
					if err != nil {
						return nil, outcome.Stalled(meshv1alpha1.InvalidSpecReason, "spec.rules[%d].to[%d]: %v", i, j, err)
					}
					out = append(out, route)
					target("HTTPRoute", routeName, routeName)
				case plan.catchAll[port]:
					// Linkerd authorizes a routed request only by the
					// route it matches, and a rule without methods or
					// paths allows every request on the port: it
					// authorizes every route of the port.
					target("HTTPRoute", serverName(port)+"-all", fmt.Sprintf("%s-d%d-%d", rn, j, port))
					for k, route := range routes[port] {
						target("HTTPRoute", route, fmt.Sprintf("%s-d%d-%d-%d", rn, j, port, k))
					}
				default:
					target("Server", serverName(port), fmt.Sprintf("%s-d%d-%d", rn, j, port))
				}
			}
		}
	}
	for _, port := range ports {
		if plan.catchAll[port] {
			all, _ := policyRoute(serverName(port)+"-all", ns, serverName(port), meshv1alpha1.TrafficDestination{}, plan.shadows[port]...)
			out = append(out, all)
		}
	}
	return out, nil
}

// ruleName is the name prefix of rule i's objects.
func ruleName(policy string, i int, r meshv1alpha1.AllowRule) string {
	return policy + "-" + mesh.PolicyRuleName(i, r)
}

// l7RouteName names the policy route of destination j of a rule on port.
func l7RouteName(rule string, j int, port int32) string {
	return fmt.Sprintf("%s-d%d-%d", rule, j, port)
}

// portPlan is which Servers and policy routes a policy needs.
type portPlan struct {
	// ports the rules name, sorted.
	ports []int32
	// routes are the policy routes of each port's method/path
	// destinations.
	routes map[int32][]string
	// catchAll ports need a catch-all route beside their routes: for rules
	// without methods or paths, and for the shadows.
	catchAll map[int32]bool
	// shadows are exact paths the catch-all route takes from a prefix
	// route: a policy prefix "/api/*" is a string prefix, Linkerd's
	// PathPrefix /api/ also matches /api, so /api goes to the catch-all
	// (an exact match outranks every prefix)...
	shadows map[int32][]string
	// exact are, per port and destination index, the shadows that
	// destination allows, which its route matches exactly (with its
	// methods, so it outranks the catch-all's match).
	exact map[int32]map[int][]string
}

// routedPorts plans the Servers and routes. Linkerd authorizes a request
// by the one route it matches (Gateway API precedence: exact path, longest
// prefix, method), so two rules narrowing the same port by method or path
// would let the more specific route's sources shadow the other rule's:
// refused. Linkerd's PathPrefix matches whole path segments, so a prefix
// must end in "/*".
func routedPorts(pol *meshv1alpha1.ZeroTrustPolicy) (portPlan, error) {
	plan := portPlan{routes: map[int32][]string{}, catchAll: map[int32]bool{}, shadows: map[int32][]string{},
		exact: map[int32]map[int][]string{}}
	owner, l4 := map[int32]int{}, map[int32]bool{}
	for i, r := range pol.Spec.Rules {
		for j, t := range r.To {
			for _, p := range t.Paths {
				if v, ok := strings.CutSuffix(p, "*"); ok && !strings.HasSuffix(v, "/") {
					return plan, &mesh.UnsupportedFeatureError{Provider: meshv1alpha1.ProviderLinkerd,
						Features: []mesh.Capability{mesh.CapAllowHTTPMethodPath},
						Detail: fmt.Sprintf("spec.rules[%d].to[%d].paths: %q: Linkerd matches path prefixes by whole segments; end the prefix with /* (e.g. %q)",
							i, j, p, v+"/*")}
				}
			}
			for _, port := range t.Ports {
				if !slices.Contains(plan.ports, port) {
					plan.ports = append(plan.ports, port)
				}
				if len(t.Methods) == 0 && len(t.Paths) == 0 {
					l4[port] = true
					continue
				}
				if o, ok := owner[port]; ok && o != i {
					return plan, overlap(fmt.Sprintf("spec.rules[%d] and spec.rules[%d] both narrow port %d by method or path", o, i, port))
				}
				owner[port] = i
				plan.routes[port] = append(plan.routes[port], l7RouteName(ruleName(pol.Name, i, r), j, port))
			}
		}
	}
	slices.Sort(plan.ports)
	for _, port := range plan.ports {
		if o, ok := owner[port]; ok {
			plan.shadow(port, pol.Spec.Rules[o].To)
		}
		plan.catchAll[port] = len(plan.routes[port]) > 0 && (l4[port] || len(plan.shadows[port]) > 0)
	}
	return plan, nil
}

// shadow plans the shadows of port, whose method/path destinations are
// those of to: for each prefix "x/*", the exact path x goes to the
// catch-all, unless a destination without methods allows it; the
// destinations with methods that allow it match it exactly.
func (plan *portPlan) shadow(port int32, to []meshv1alpha1.TrafficDestination) {
	on := func(d meshv1alpha1.TrafficDestination) bool { return slices.Contains(d.Ports, port) }
	for _, d := range to {
		for _, p := range d.Paths {
			v, prefix := strings.CutSuffix(p, "*")
			x := strings.TrimSuffix(v, "/")
			if !prefix || x == "" || !on(d) || slices.Contains(plan.shadows[port], x) {
				continue
			}
			if slices.ContainsFunc(to, func(d2 meshv1alpha1.TrafficDestination) bool {
				return on(d2) && len(d2.Methods) == 0 && allowsPath(d2, x)
			}) {
				continue
			}
			plan.shadows[port] = append(plan.shadows[port], x)
			for j2, d2 := range to {
				if on(d2) && allowsPath(d2, x) {
					if plan.exact[port] == nil {
						plan.exact[port] = map[int][]string{}
					}
					plan.exact[port][j2] = append(plan.exact[port][j2], x)
				}
			}
		}
	}
}

// allowsPath reports whether destination d allows path x (no paths: every
// path; an exact path; a string prefix "y*").
func allowsPath(d meshv1alpha1.TrafficDestination, x string) bool {
	return len(d.Paths) == 0 || slices.ContainsFunc(d.Paths, func(p string) bool {
		if v, ok := strings.CutSuffix(p, "*"); ok {
			return strings.HasPrefix(x, v)
		}
		return p == x
	})
}

func overlap(what string) error {
	return &mesh.UnsupportedFeatureError{Provider: meshv1alpha1.ProviderLinkerd,
		Features: []mesh.Capability{mesh.CapAllowHTTPMethodPath},
		Detail: what + "; Linkerd authorizes a request only by the one route it matches, so one rule's sources would be refused " +
			"on the other's requests: narrow each port by method or path in one rule only, or use different ports"}
}

// authentication returns the reference a rule's AuthorizationPolicies
// require and the objects behind it.
func authentication(name, ns string, from []meshv1alpha1.TrafficSource, permissive bool) (PolicyReference, []client.Object) {
	meta := metav1.ObjectMeta{Name: name, Namespace: ns}
	if len(from) == 0 && permissive {
		return PolicyReference{Group: PolicyGroup, Kind: "NetworkAuthentication", Name: name}, []client.Object{&NetworkAuthentication{
			TypeMeta:   metav1.TypeMeta{APIVersion: PolicyV1alpha1.String(), Kind: "NetworkAuthentication"},
			ObjectMeta: meta,
			Spec:       NetworkAuthenticationSpec{Networks: []Network{{CIDR: "0.0.0.0/0"}, {CIDR: "::/0"}}},
		}}
	}
	m := &MeshTLSAuthentication{
		TypeMeta:   metav1.TypeMeta{APIVersion: PolicyV1alpha1.String(), Kind: "MeshTLSAuthentication"},
		ObjectMeta: meta,
	}
	if len(from) == 0 {
		m.Spec.Identities = []string{"*"}
	}
	for _, f := range from {
		for _, sa := range f.ServiceAccounts {
			saNS, saName := ns, sa
			if i := strings.Index(sa, "/"); i >= 0 {
				saNS, saName = sa[:i], sa[i+1:]
			}
			m.Spec.IdentityRefs = append(m.Spec.IdentityRefs, PolicyReference{Kind: "ServiceAccount", Name: saName, Namespace: saNS})
		}
		for _, n := range f.Namespaces {
			m.Spec.IdentityRefs = append(m.Spec.IdentityRefs, PolicyReference{Kind: "Namespace", Name: n})
		}
	}
	return PolicyReference{Group: PolicyGroup, Kind: "MeshTLSAuthentication", Name: name}, []client.Object{m}
}

// maxMatches is how many matches Meshplane puts in one policy route rule,
// and maxRouteRules how many rules one policy.linkerd.io HTTPRoute holds
// (its schema: rules maxItems 16, matches maxItems 8).
const (
	maxMatches    = 8
	maxRouteRules = 16
)

// policyRoute returns a policy.linkerd.io HTTPRoute on a Server that
// matches t's methods × paths (a trailing "*" makes a path prefix) and the
// exact paths; an empty destination gives the catch-all route.
func policyRoute(name, ns, server string, t meshv1alpha1.TrafficDestination, exact ...string) (*HTTPRoute, error) {
	paths := []*HTTPPathMatch{{Type: "PathPrefix", Value: "/"}}
	if len(t.Paths) > 0 {
		paths = nil
		for _, p := range t.Paths {
			v, prefix := strings.CutSuffix(p, "*")
			if err := mesh.ValidPath(v); err != nil {
				return nil, err
			}
			pm := &HTTPPathMatch{Type: "Exact", Value: v}
			if prefix {
				pm = &HTTPPathMatch{Type: "PathPrefix", Value: v}
			}
			paths = append(paths, pm)
		}
	}
	for _, x := range exact {
		paths = append(paths, &HTTPPathMatch{Type: "Exact", Value: x})
	}
	methods := []string{""}
	if len(t.Methods) > 0 {
		methods = nil
		for _, m := range t.Methods {
			methods = append(methods, string(m))
		}
	}
	var matches []HTTPRouteMatch
	for _, p := range paths {
		for _, m := range methods {
			matches = append(matches, HTTPRouteMatch{Path: p, Method: m})
		}
	}
	if len(matches) > maxMatches*maxRouteRules {
		return nil, fmt.Errorf("%d paths × %d methods make %d matches, and a Linkerd policy HTTPRoute holds at most %d (%d rules of %d); split the destination into several with fewer paths or methods",
			len(paths), len(methods), len(matches), maxMatches*maxRouteRules, maxRouteRules, maxMatches)
	}
	var rules []HTTPRouteRule
	for chunk := range slices.Chunk(matches, maxMatches) {
		rules = append(rules, HTTPRouteRule{Matches: chunk})
	}
	return &HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: PolicyV1beta3.String(), Kind: "HTTPRoute"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: HTTPRouteSpec{ParentRefs: []PolicyReference{{Group: PolicyGroup, Kind: "Server", Name: server}},
			Rules: rules},
	}, nil
}

var (
	_ mesh.TrafficTranslator = (*Provider)(nil)
	_ mesh.PolicyTranslator  = (*Provider)(nil)
)
