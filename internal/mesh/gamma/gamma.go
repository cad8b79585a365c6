// Package gamma builds the Gateway API HTTPRoute (GAMMA: a Service as the
// parent) that Istio (output GatewayAPI), Linkerd and Cilium all use for a
// TrafficSplit. It is pure: no I/O.
//
// Trade-offs:
//
//   - TrafficSplit rules are ordered (first match wins), while Gateway API
//     ranks matches by specificity (exact path, longest prefix, method,
//     number of headers) before list order. A later rule whose match is
//     more specific than, and may overlap with, an earlier rule's match
//     would be evaluated first; such a spec is refused with
//     UnsupportedFeature (OrderedRules) instead of silently reordered.
//   - spec.backends become the last rule, without matches (path prefix /,
//     the least specific), so every explicit rule wins over it. HTTPRoute
//     allows 16 rules, so at most 15 explicit rules fit.
//   - Mirroring and the request timeout apply to every request, so they are
//     repeated on every rule.
//   - Retries are only in Gateway API's experimental channel; the builder
//     never emits them. Each provider decides how (or whether) to express
//     them.
package gamma

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
)

// MaxRules is the number of TrafficSplit rules one HTTPRoute can carry
// besides the default rule.
const MaxRules = 15

// DefaultRuleName names the rule that carries spec.backends.
const DefaultRuleName = mesh.DefaultRuleName

// HTTPRoute returns the GAMMA HTTPRoute for ts: parentRef the root Service,
// one rule per TrafficSplit rule in order, then the default rule. The root
// Service's port must be known (spec.service.port, filled in by the
// controller from the Service when it has one port). provider names the
// mesh in errors.
func HTTPRoute(ts *meshv1alpha1.TrafficSplit, provider meshv1alpha1.Provider) (*gatewayv1.HTTPRoute, error) {
	spec := &ts.Spec
	if spec.Service.Port == nil {
		return nil, outcome.Stalled(meshv1alpha1.InvalidSpecReason,
			"spec.service.port is required for a Gateway API route: set it to one of Service %s's ports", spec.Service.Name)
	}
	if len(spec.Rules) > MaxRules {
		return nil, &mesh.UnsupportedFeatureError{Provider: provider, Features: []mesh.Capability{mesh.CapGatewayAPIOutput},
			Detail: fmt.Sprintf("an HTTPRoute holds at most %d rules besides the default one; the split has %d", MaxRules, len(spec.Rules))}
	}
	if msg := mesh.RuleOrderConflict(spec.Rules); msg != "" {
		return nil, &mesh.UnsupportedFeatureError{Provider: provider, Features: []mesh.Capability{mesh.CapOrderedRules},
			Detail: msg + "; Gateway API evaluates the more specific match first — reorder the rules or make them disjoint"}
	}
	rootPort := *spec.Service.Port
	var common []gatewayv1.HTTPRouteFilter
	if m := spec.Mirror; m != nil {
		f := gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestMirror,
			RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{BackendRef: serviceRef(m.Backend.Name, m.Backend.Port, rootPort)}}
		if m.Percent != nil && *m.Percent < 100 {
			f.RequestMirror.Percent = ptr(*m.Percent)
		}
		common = append(common, f)
	}
	var timeouts *gatewayv1.HTTPRouteTimeouts
	if spec.Timeout != nil {
		d := Duration(spec.Timeout.Duration)
		timeouts = &gatewayv1.HTTPRouteTimeouts{Request: &d}
	}
	var rules []gatewayv1.HTTPRouteRule
	for _, r := range spec.Rules {
		matches := make([]gatewayv1.HTTPRouteMatch, 0, len(r.Matches))
		for _, m := range r.Matches {
			matches = append(matches, match(m))
		}
		rules = append(rules, gatewayv1.HTTPRouteRule{
			Name: sectionName(r.Name), Matches: matches, Filters: common,
			BackendRefs: backendRefs(r.Backends, rootPort), Timeouts: timeouts,
		})
	}
	rules = append(rules, gatewayv1.HTTPRouteRule{
		Name: sectionName(DefaultRuleName), Filters: common, BackendRefs: backendRefs(spec.Backends, rootPort), Timeouts: timeouts,
	})
	port := gatewayv1.PortNumber(rootPort)
	return &gatewayv1.HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: "HTTPRoute"},
		ObjectMeta: metav1.ObjectMeta{Name: ts.Name, Namespace: ts.Namespace},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
				Group: ptr(gatewayv1.Group("")), Kind: ptr(gatewayv1.Kind("Service")),
				Name: gatewayv1.ObjectName(spec.Service.Name), Port: &port,
			}}},
			Rules: rules,
		},
	}, nil
}

func sectionName(n string) *gatewayv1.SectionName {
	if n == "" {
		return nil
	}
	s := gatewayv1.SectionName(n)
	return &s
}

func serviceRef(name string, port *int32, rootPort int32) gatewayv1.BackendObjectReference {
	p := rootPort
	if port != nil {
		p = *port
	}
	pn := gatewayv1.PortNumber(p)
	return gatewayv1.BackendObjectReference{Group: ptr(gatewayv1.Group("")), Kind: ptr(gatewayv1.Kind("Service")),
		Name: gatewayv1.ObjectName(name), Port: &pn}
}

func backendRefs(bs []meshv1alpha1.WeightedBackend, rootPort int32) []gatewayv1.HTTPBackendRef {
	out := make([]gatewayv1.HTTPBackendRef, 0, len(bs))
	for _, b := range bs {
		out = append(out, gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
			BackendObjectReference: serviceRef(b.Name, b.Port, rootPort), Weight: ptr(b.Weight)}})
	}
	return out
}

// match converts one match, which mesh.ValidateTrafficSplit checked.
func match(m meshv1alpha1.HTTPMatch) gatewayv1.HTTPRouteMatch {
	var out gatewayv1.HTTPRouteMatch
	if m.Path != nil {
		t := gatewayv1.PathMatchPathPrefix
		if m.Path.Type == meshv1alpha1.PathMatchExact {
			t = gatewayv1.PathMatchExact
		}
		out.Path = &gatewayv1.HTTPPathMatch{Type: &t, Value: ptr(m.Path.Value)}
	}
	for _, h := range m.Headers {
		t, v := gatewayv1.HeaderMatchExact, h.Value
		switch h.Type {
		case meshv1alpha1.HeaderMatchPrefix:
			t, v = gatewayv1.HeaderMatchRegularExpression, PrefixRegex(h.Value)
		case meshv1alpha1.HeaderMatchRegularExpression:
			t = gatewayv1.HeaderMatchRegularExpression
		}
		out.Headers = append(out.Headers, gatewayv1.HTTPHeaderMatch{Type: &t, Name: gatewayv1.HTTPHeaderName(h.Name), Value: v})
	}
	if m.Method != "" {
		out.Method = ptr(gatewayv1.HTTPMethod(m.Method))
	}
	return out
}

// PrefixRegex returns an RE2 expression matching values that start with
// prefix (meshes that have no prefix header match use it).
func PrefixRegex(prefix string) string { return "^" + regexp.QuoteMeta(prefix) + ".*" }

// Duration renders d in Gateway API's duration format (e.g. 1h2m3s500ms),
// rounded up to the millisecond.
func Duration(d time.Duration) gatewayv1.Duration {
	ms := int64((d + time.Millisecond - 1) / time.Millisecond)
	if ms <= 0 {
		ms = 1
	}
	var b strings.Builder
	for _, u := range []struct {
		n    int64
		unit string
	}{{3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}} {
		if q := ms / u.n; q > 0 {
			fmt.Fprintf(&b, "%d%s", q, u.unit)
			ms -= q * u.n
		}
	}
	return gatewayv1.Duration(b.String())
}

func ptr[T any](v T) *T { return &v }
