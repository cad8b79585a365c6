package istio

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/types/known/durationpb"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	securityv1beta1 "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/gamma"
)

// TranslateTrafficSplit returns a VirtualService (output Native, the
// default) or a GAMMA HTTPRoute (output GatewayAPI). Backends are Services,
// so no DestinationRule subsets are needed. Gateway API's standard channel
// has no retries, so retries with output GatewayAPI are refused.
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
	if ts.Spec.Output == meshv1alpha1.OutputGatewayAPI {
		if req := mesh.RetryRequirements(ts.Spec.Retries); len(req) > 0 {
			return nil, &mesh.UnsupportedFeatureError{Provider: p.Name(), Features: req,
				Detail: "with output GatewayAPI: HTTPRoute retries are not in Gateway API's standard channel; use output Native"}
		}
		route, err := gamma.HTTPRoute(ts, p.Name())
		if err != nil {
			return nil, err
		}
		return []client.Object{route}, nil
	}
	return []client.Object{virtualService(ts)}, nil
}

func virtualService(ts *meshv1alpha1.TrafficSplit) *istionetworking.VirtualService {
	spec := &ts.Spec
	var routes []*networkingv1alpha3.HTTPRoute
	for _, r := range spec.Rules {
		hr := httpRoute(spec, r.Name, r.Backends)
		for _, m := range r.Matches {
			hr.Match = append(hr.Match, matchRequests(m)...)
		}
		routes = append(routes, hr)
	}
	routes = append(routes, httpRoute(spec, gamma.DefaultRuleName, spec.Backends))
	return &istionetworking.VirtualService{
		TypeMeta:   metav1.TypeMeta{APIVersion: istionetworking.SchemeGroupVersion.String(), Kind: "VirtualService"},
		ObjectMeta: metav1.ObjectMeta{Name: ts.Name, Namespace: ts.Namespace},
		Spec:       networkingv1alpha3.VirtualService{Hosts: []string{spec.Service.Name}, Http: routes},
	}
}

func destination(name string, port *int32, root *int32) *networkingv1alpha3.Destination {
	d := &networkingv1alpha3.Destination{Host: name}
	if port == nil {
		port = root
	}
	if port != nil {
		d.Port = &networkingv1alpha3.PortSelector{Number: uint32(*port)}
	}
	return d
}

func httpRoute(spec *meshv1alpha1.TrafficSplitSpec, name string, backends []meshv1alpha1.WeightedBackend) *networkingv1alpha3.HTTPRoute {
	hr := &networkingv1alpha3.HTTPRoute{Name: name}
	for _, b := range backends {
		hr.Route = append(hr.Route, &networkingv1alpha3.HTTPRouteDestination{
			Destination: destination(b.Name, b.Port, spec.Service.Port), Weight: b.Weight})
	}
	if m := spec.Mirror; m != nil {
		hr.Mirror = destination(m.Backend.Name, m.Backend.Port, spec.Service.Port)
		if m.Percent != nil && *m.Percent < 100 {
			hr.MirrorPercentage = &networkingv1alpha3.Percent{Value: float64(*m.Percent)}
		}
	}
	if spec.Timeout != nil {
		hr.Timeout = durationpb.New(spec.Timeout.Duration)
	}
	if r := spec.Retries; r != nil {
		hr.Retries = httpRetry(r)
	}
	return hr
}

// retryOn maps Meshplane's retry conditions to Envoy's x-envoy-retry-on
// and x-envoy-retry-grpc-on names, which Istio accepts.
// httpRetry is Istio's form of a retry policy (a TrafficSplit's, or a
// ResiliencePolicy's without its budget).
func httpRetry(r *meshv1alpha1.RetryPolicy) *networkingv1alpha3.HTTPRetry {
	out := &networkingv1alpha3.HTTPRetry{Attempts: r.Attempts}
	if r.PerTryTimeout != nil {
		out.PerTryTimeout = durationpb.New(r.PerTryTimeout.Duration)
	}
	var on []string
	for _, c := range r.RetryOn {
		on = append(on, retryOn[c])
	}
	out.RetryOn = strings.Join(on, ",")
	return out
}

var retryOn = map[meshv1alpha1.RetryOn]string{
	"5xx": "5xx", "GatewayError": "gateway-error", "Reset": "reset", "ConnectFailure": "connect-failure",
	"Retriable4xx": "retriable-4xx", "RefusedStream": "refused-stream", "Unavailable": "unavailable",
	"Cancelled": "cancelled", "DeadlineExceeded": "deadline-exceeded",
}

// matchRequests converts one match. Istio's uri prefix is a string prefix
// while Meshplane's PathPrefix is segment-wise, so /api becomes an exact
// /api match plus a /api/ prefix match.
func matchRequests(m meshv1alpha1.HTTPMatch) []*networkingv1alpha3.HTTPMatchRequest {
	base := func() *networkingv1alpha3.HTTPMatchRequest {
		mr := &networkingv1alpha3.HTTPMatchRequest{}
		for _, h := range m.Headers {
			if mr.Headers == nil {
				mr.Headers = map[string]*networkingv1alpha3.StringMatch{}
			}
			var sm *networkingv1alpha3.StringMatch
			switch h.Type {
			case meshv1alpha1.HeaderMatchPrefix:
				sm = &networkingv1alpha3.StringMatch{MatchType: &networkingv1alpha3.StringMatch_Prefix{Prefix: h.Value}}
			case meshv1alpha1.HeaderMatchRegularExpression:
				sm = &networkingv1alpha3.StringMatch{MatchType: &networkingv1alpha3.StringMatch_Regex{Regex: h.Value}}
			default:
				sm = &networkingv1alpha3.StringMatch{MatchType: &networkingv1alpha3.StringMatch_Exact{Exact: h.Value}}
			}
			// Istio requires lower-case header names; mesh.ValidateMatch
			// refused two names that differ only in case.
			mr.Headers[strings.ToLower(h.Name)] = sm
		}
		if m.Method != "" {
			mr.Method = &networkingv1alpha3.StringMatch{MatchType: &networkingv1alpha3.StringMatch_Exact{Exact: string(m.Method)}}
		}
		return mr
	}
	if m.Path == nil {
		return []*networkingv1alpha3.HTTPMatchRequest{base()}
	}
	v := m.Path.Value
	if m.Path.Type == meshv1alpha1.PathMatchExact {
		mr := base()
		mr.Uri = &networkingv1alpha3.StringMatch{MatchType: &networkingv1alpha3.StringMatch_Exact{Exact: v}}
		return []*networkingv1alpha3.HTTPMatchRequest{mr}
	}
	if strings.HasSuffix(v, "/") {
		mr := base()
		mr.Uri = &networkingv1alpha3.StringMatch{MatchType: &networkingv1alpha3.StringMatch_Prefix{Prefix: v}}
		return []*networkingv1alpha3.HTTPMatchRequest{mr}
	}
	exact, prefix := base(), base()
	exact.Uri = &networkingv1alpha3.StringMatch{MatchType: &networkingv1alpha3.StringMatch_Exact{Exact: v}}
	prefix.Uri = &networkingv1alpha3.StringMatch{MatchType: &networkingv1alpha3.StringMatch_Prefix{Prefix: v + "/"}}
	return []*networkingv1alpha3.HTTPMatchRequest{exact, prefix}
}

// TranslateZeroTrustPolicy returns a PeerAuthentication (STRICT or
// PERMISSIVE) and, for defaultAction Deny, an ALLOW AuthorizationPolicy:
// with no rules it allows nothing, which denies every request to the
// selected workloads; each rule allows its sources to its destinations.
// Istio's workload selectors take matchLabels only, so a selector with
// matchExpressions is refused. Istio accepts at most MaxServiceAccounts
// service accounts per source; a longer list becomes several sources of
// the same rule, which Istio ORs, as the list's entries are.
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

// MaxServiceAccounts is the most service accounts one source of an Istio
// AuthorizationPolicy may list (security.istio.io/v1
// AuthorizationPolicy's schema: rules[].from[].source.serviceAccounts
// maxItems 16).
const MaxServiceAccounts = 16

func (p *Provider) translatePolicy(pol *meshv1alpha1.ZeroTrustPolicy) ([]client.Object, error) {
	var sel *typev1beta1.WorkloadSelector
	if s := pol.Spec.Selector; s != nil {
		if len(s.MatchExpressions) > 0 {
			return nil, &mesh.UnsupportedFeatureError{Provider: p.Name(), Features: []mesh.Capability{mesh.CapPerWorkloadMTLSMode},
				Detail: "Istio workload selectors take matchLabels only; express the selector with matchLabels"}
		}
		if len(s.MatchLabels) > 0 {
			sel = &typev1beta1.WorkloadSelector{MatchLabels: s.MatchLabels}
		}
	}
	mode := securityv1beta1.PeerAuthentication_MutualTLS_STRICT
	if pol.Spec.MTLS != nil && pol.Spec.MTLS.Mode == meshv1alpha1.MTLSPermissive {
		mode = securityv1beta1.PeerAuthentication_MutualTLS_PERMISSIVE
	}
	meta := metav1.ObjectMeta{Name: pol.Name, Namespace: pol.Namespace}
	out := []client.Object{&istiosecurity.PeerAuthentication{
		TypeMeta:   metav1.TypeMeta{APIVersion: istiosecurity.SchemeGroupVersion.String(), Kind: "PeerAuthentication"},
		ObjectMeta: meta,
		Spec: securityv1beta1.PeerAuthentication{Selector: sel,
			Mtls: &securityv1beta1.PeerAuthentication_MutualTLS{Mode: mode}},
	}}
	if pol.Spec.DefaultAction == meshv1alpha1.ActionAllow {
		return append(out, jwtOutputs(pol, sel)...), nil
	}
	ap := &istiosecurity.AuthorizationPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: istiosecurity.SchemeGroupVersion.String(), Kind: "AuthorizationPolicy"},
		ObjectMeta: meta,
		Spec:       securityv1beta1.AuthorizationPolicy{Selector: sel, Action: securityv1beta1.AuthorizationPolicy_ALLOW},
	}
	for _, r := range pol.Spec.Rules {
		rule := &securityv1beta1.Rule{}
		for _, f := range r.From {
			// serviceAccounts and namespaces are ORed, Istio ANDs the
			// fields of one source: one source each, and one per
			// MaxServiceAccounts service accounts (sources are ORed).
			var sas []string
			for _, sa := range f.ServiceAccounts {
				sas = append(sas, QualifiedServiceAccount(pol.Namespace, sa))
			}
			for chunk := range slices.Chunk(sas, MaxServiceAccounts) {
				rule.From = append(rule.From, &securityv1beta1.Rule_From{Source: &securityv1beta1.Source{ServiceAccounts: chunk}})
			}
			if len(f.Namespaces) > 0 {
				rule.From = append(rule.From, &securityv1beta1.Rule_From{Source: &securityv1beta1.Source{Namespaces: f.Namespaces}})
			}
		}
		for _, t := range r.To {
			op := &securityv1beta1.Operation{Paths: t.Paths}
			for _, port := range t.Ports {
				op.Ports = append(op.Ports, strconv.Itoa(int(port)))
			}
			for _, m := range t.Methods {
				op.Methods = append(op.Methods, string(m))
			}
			rule.To = append(rule.To, &securityv1beta1.Rule_To{Operation: op})
		}
		ap.Spec.Rules = append(ap.Spec.Rules, rule)
	}
	addJWTConditions(pol, ap)
	return append(append(out, ap), jwtOutputs(pol, sel)...), nil
}

// QualifiedServiceAccount returns "namespace/name" for a service account
// written as "name" (the policy's namespace) or "namespace/name".
func QualifiedServiceAccount(namespace, sa string) string {
	if strings.Contains(sa, "/") {
		return sa
	}
	return fmt.Sprintf("%s/%s", namespace, sa)
}

var (
	_ mesh.TrafficTranslator = (*Provider)(nil)
	_ mesh.PolicyTranslator  = (*Provider)(nil)
)
