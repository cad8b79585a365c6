package linkerd

import (
	"fmt"
	"slices"
	"strconv"
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
		ann := map[string]string{RetryLimitAnnotation: strconv.Itoa(int(r.Attempts))}
		var httpOn, grpcOn []string
		for _, c := range r.RetryOn {
			switch {
			case httpRetryOn[c] != "":
				httpOn = append(httpOn, httpRetryOn[c])
			case grpcRetryOn[c] != "":
				grpcOn = append(grpcOn, grpcRetryOn[c])
			default:
				return nil, &mesh.UnsupportedFeatureError{Provider: p.Name(), Features: []mesh.Capability{mesh.CapRetryConditions},
					Detail: fmt.Sprintf("retry condition %s: Linkerd retries on HTTP statuses (5xx, GatewayError, Retriable4xx) and gRPC statuses (Unavailable, Cancelled, DeadlineExceeded) only", c)}
			}
		}
		if len(httpOn) == 0 && len(grpcOn) == 0 {
			httpOn = []string{"5xx"}
		}
		if len(httpOn) > 0 {
			ann[RetryHTTPAnnotation] = strings.Join(httpOn, ",")
		}
		if len(grpcOn) > 0 {
			ann[RetryGRPCAnnotation] = strings.Join(grpcOn, ",")
		}
		if r.PerTryTimeout != nil {
			ann[RetryTimeoutAnnotation] = string(gamma.Duration(r.PerTryTimeout.Duration))
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

	// Ports, and which of them carry method/path routes.
	var ports []int32
	routed := map[int32]bool{}
	for _, r := range pol.Spec.Rules {
		for _, t := range r.To {
			for _, port := range t.Ports {
				if !slices.Contains(ports, port) {
					ports = append(ports, port)
				}
				if len(t.Methods) > 0 || len(t.Paths) > 0 {
					routed[port] = true
				}
			}
		}
	}
	slices.Sort(ports)
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
		rn := name + "-" + mesh.PolicyRuleName(i, r)
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
					routeName := fmt.Sprintf("%s-d%d-%d", rn, j, port)
					route, err := policyRoute(routeName, ns, serverName(port), t)
					if err != nil {
						return nil, outcome.Stalled(meshv1alpha1.InvalidSpecReason, "spec.rules[%d].to[%d]: %v", i, j, err)
					}
					out = append(out, route)
					target("HTTPRoute", routeName, routeName)
				case routed[port]:
					target("HTTPRoute", serverName(port)+"-all", fmt.Sprintf("%s-d%d-%d", rn, j, port))
				default:
					target("Server", serverName(port), fmt.Sprintf("%s-d%d-%d", rn, j, port))
				}
			}
		}
	}
	for _, port := range ports {
		if routed[port] {
			all, _ := policyRoute(serverName(port)+"-all", ns, serverName(port), meshv1alpha1.TrafficDestination{})
			out = append(out, all)
		}
	}
	return out, nil
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
// matches t's methods × paths (a trailing "*" makes a path prefix); an
// empty destination gives the catch-all route.
func policyRoute(name, ns, server string, t meshv1alpha1.TrafficDestination) (*HTTPRoute, error) {
	paths := []*HTTPPathMatch{{Type: "PathPrefix", Value: "/"}}
	if len(t.Paths) > 0 {
		paths = nil
		for _, p := range t.Paths {
			pm := &HTTPPathMatch{Type: "Exact", Value: p}
			if v, ok := strings.CutSuffix(p, "*"); ok {
				pm = &HTTPPathMatch{Type: "PathPrefix", Value: v}
			}
			if err := mesh.ValidPath(pm.Value); err != nil {
				return nil, err
			}
			paths = append(paths, pm)
		}
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
