package oracle

import (
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// gwMatch is one match of one rule, with the rule's index for precedence.
type gwMatch struct {
	rule  int
	match gatewayv1.HTTPRouteMatch
}

// HTTPRouteRoutes returns where the first Gateway API HTTPRoute in objs
// sends r: the rule of the matching match with the highest precedence,
// and its backends' weights (weight defaults to 1). ok is false when no
// rule matches (404).
func HTTPRouteRoutes(objs []client.Object, r Request) (Route, bool) {
	for _, o := range objs {
		hr, isRoute := o.(*gatewayv1.HTTPRoute)
		if !isRoute {
			continue
		}
		var hits []gwMatch
		for i, rule := range hr.Spec.Rules {
			matches := rule.Matches
			if len(matches) == 0 {
				// No match is one PathPrefix "/" match.
				matches = []gatewayv1.HTTPRouteMatch{{}}
			}
			for _, m := range matches {
				if gwMatches(m, r) {
					hits = append(hits, gwMatch{rule: i, match: m})
				}
			}
		}
		if len(hits) == 0 {
			return nil, false
		}
		best := slices.MinFunc(hits, precedence)
		out := Route{}
		for _, b := range hr.Spec.Rules[best.rule].BackendRefs {
			w := int32(1)
			if b.Weight != nil {
				w = *b.Weight
			}
			out[string(b.Name)] += w
		}
		return out, true
	}
	return nil, false
}

// precedence orders matches as Gateway API specifies: exact path before
// prefix, longer prefix first, method before none, more headers first,
// then rule order.
func precedence(a, b gwMatch) int {
	ka, kb := pathKey(a.match), pathKey(b.match)
	if ka != kb {
		return kb - ka
	}
	ma, mb := a.match.Method != nil, b.match.Method != nil
	if ma != mb {
		if ma {
			return -1
		}
		return 1
	}
	if ha, hb := len(a.match.Headers), len(b.match.Headers); ha != hb {
		return hb - ha
	}
	return a.rule - b.rule
}

// pathKey ranks a path match: exact above every prefix, prefixes by
// length.
func pathKey(m gatewayv1.HTTPRouteMatch) int {
	if m.Path == nil || m.Path.Value == nil {
		return 1
	}
	if m.Path.Type != nil && *m.Path.Type == gatewayv1.PathMatchExact {
		return 1 << 20
	}
	return len(*m.Path.Value)
}

func gwMatches(m gatewayv1.HTTPRouteMatch, r Request) bool {
	if p := m.Path; p != nil && p.Value != nil {
		exact := p.Type != nil && *p.Type == gatewayv1.PathMatchExact
		if exact && r.Path != *p.Value || !exact && !segmentPrefix(*p.Value, r.Path) {
			return false
		}
	}
	if m.Method != nil && string(*m.Method) != r.Method {
		return false
	}
	for _, h := range m.Headers {
		v, ok := r.Headers[strings.ToLower(string(h.Name))]
		if !ok {
			return false
		}
		if h.Type != nil && *h.Type == gatewayv1.HeaderMatchRegularExpression {
			ok = regexp.MustCompile("^(?:" + h.Value + ")$").MatchString(v)
		} else {
			ok = v == h.Value
		}
		if !ok {
			return false
		}
	}
	return true
}
