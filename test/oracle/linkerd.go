package oracle

import (
	"cmp"
	"regexp"
	"slices"
	"strings"

	linkerdserver "github.com/linkerd/linkerd2/controller/gen/apis/server/v1beta3"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshplane/meshplane/internal/mesh/linkerd"
)

// linkerdObjects indexes a Linkerd translation's objects.
type linkerdObjects struct {
	defaultPolicy string
	servers       []*linkerdserver.Server
	routes        []*linkerd.HTTPRoute
	policies      []*linkerd.AuthorizationPolicy
	meshTLS       map[string]*linkerd.MeshTLSAuthentication
	network       map[string]*linkerd.NetworkAuthentication
}

func indexLinkerd(objs []client.Object) linkerdObjects {
	x := linkerdObjects{defaultPolicy: linkerd.AllUnauthenticated,
		meshTLS: map[string]*linkerd.MeshTLSAuthentication{}, network: map[string]*linkerd.NetworkAuthentication{}}
	for _, o := range objs {
		switch v := o.(type) {
		case *corev1.Namespace:
			if p, ok := v.Annotations[linkerd.DefaultInboundPolicyAnnotation]; ok {
				x.defaultPolicy = p
			}
		case *linkerdserver.Server:
			x.servers = append(x.servers, v)
		case *linkerd.HTTPRoute:
			x.routes = append(x.routes, v)
		case *linkerd.AuthorizationPolicy:
			x.policies = append(x.policies, v)
		case *linkerd.MeshTLSAuthentication:
			x.meshTLS[v.Name] = v
		case *linkerd.NetworkAuthentication:
			x.network[v.Name] = v
		}
	}
	return x
}

// LinkerdAllows evaluates a Linkerd translation for r at a pod of the
// namespace (every Server generated selects every pod).
func LinkerdAllows(objs []client.Object, ns string, r Request) bool {
	x := indexLinkerd(objs)
	i := slices.IndexFunc(x.servers, func(s *linkerdserver.Server) bool { return s.Spec.Port.IntValue() == int(r.Port) })
	if i < 0 {
		return defaultAllows(x.defaultPolicy, r)
	}
	srv := x.servers[i]
	kind, target := "Server", srv.Name
	var routes []*linkerd.HTTPRoute
	for _, rt := range x.routes {
		if slices.ContainsFunc(rt.Spec.ParentRefs, func(p linkerd.PolicyReference) bool { return p.Kind == "Server" && p.Name == srv.Name }) {
			routes = append(routes, rt)
		}
	}
	if len(routes) > 0 {
		rt := bestRoute(routes, r)
		if rt == nil {
			return false // no route matches: refused
		}
		kind, target = "HTTPRoute", rt.Name
	}
	for _, ap := range x.policies {
		if ap.Spec.TargetRef.Kind == kind && ap.Spec.TargetRef.Name == target && x.authenticated(ap, ns, r) {
			return true
		}
	}
	return defaultAllows(srv.Spec.AccessPolicy, r)
}

func defaultAllows(policy string, r Request) bool {
	switch policy {
	case "deny":
		return false
	case "all-authenticated", "cluster-authenticated":
		return r.Meshed
	}
	return true
}

// authenticated: every required authentication holds.
func (x linkerdObjects) authenticated(ap *linkerd.AuthorizationPolicy, ns string, r Request) bool {
	for _, ref := range ap.Spec.RequiredAuthenticationRefs {
		switch ref.Kind {
		case "MeshTLSAuthentication":
			m, ok := x.meshTLS[ref.Name]
			if !ok || !r.Meshed || !meshTLSHolds(m, ns, r) {
				return false
			}
		case "NetworkAuthentication":
			// Meshplane's only network authentication is every address.
			if _, ok := x.network[ref.Name]; !ok {
				return false
			}
		default:
			return false
		}
	}
	return len(ap.Spec.RequiredAuthenticationRefs) > 0
}

func meshTLSHolds(m *linkerd.MeshTLSAuthentication, ns string, r Request) bool {
	if slices.Contains(m.Spec.Identities, "*") {
		return true
	}
	return slices.ContainsFunc(m.Spec.IdentityRefs, func(ref linkerd.PolicyReference) bool {
		switch ref.Kind {
		case "ServiceAccount":
			refNS := cmp.Or(ref.Namespace, ns)
			return refNS == r.Namespace && ref.Name == r.ServiceAccount
		case "Namespace":
			return ref.Name == r.Namespace
		}
		return false
	})
}

// bestRoute picks the policy route r matches by Gateway API precedence
// (exact path, longest prefix, method), ties by route name.
func bestRoute(routes []*linkerd.HTTPRoute, r Request) *linkerd.HTTPRoute {
	type hit struct {
		route *linkerd.HTTPRoute
		m     linkerd.HTTPRouteMatch
	}
	var hits []hit
	for _, rt := range routes {
		for _, rule := range rt.Spec.Rules {
			for _, m := range rule.Matches {
				if linkerdMatch(m, r) {
					hits = append(hits, hit{rt, m})
				}
			}
		}
	}
	if len(hits) == 0 {
		return nil
	}
	// Gateway API leaves the rank of regular expressions to the
	// implementation; Meshplane never relies on it (a route with one is
	// alone on its Server), so any rank does.
	key := func(m linkerd.HTTPRouteMatch) int {
		switch {
		case m.Path == nil:
			return 1
		case m.Path.Type == "Exact":
			return 1 << 20
		}
		return len(m.Path.Value)
	}
	return slices.MinFunc(hits, func(a, b hit) int {
		if ka, kb := key(a.m), key(b.m); ka != kb {
			return kb - ka
		}
		if (a.m.Method != "") != (b.m.Method != "") {
			if a.m.Method != "" {
				return -1
			}
			return 1
		}
		return strings.Compare(a.route.Name, b.route.Name)
	}).route
}

func linkerdMatch(m linkerd.HTTPRouteMatch, r Request) bool {
	if m.Method != "" && m.Method != r.Method {
		return false
	}
	if p := m.Path; p != nil {
		switch p.Type {
		case "Exact":
			return r.Path == p.Value
		case "RegularExpression":
			return regexp.MustCompile("^(?:" + p.Value + ")$").MatchString(r.Path)
		}
		return segmentPrefix(p.Value, r.Path)
	}
	return true
}
