package oracle

import (
	"regexp"
	"slices"
	"strings"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Request is one sample request to a workload the policy protects.
type Request struct {
	// Meshed callers have an mTLS identity: Namespace and ServiceAccount.
	Meshed                    bool
	Namespace, ServiceAccount string
	// Port of the destination workload.
	Port int32
	// Method, Path and Headers of the HTTP request.
	Method, Path string
	Headers      map[string]string
}

// Allows is the intent of a ZeroTrustPolicy in namespace ns for r: Strict
// refuses callers without an identity; defaultAction Allow allows the
// rest; otherwise a rule must allow r.
func Allows(spec *meshv1alpha1.ZeroTrustPolicySpec, ns string, r Request) bool {
	if strict(spec) && !r.Meshed {
		return false
	}
	if spec.DefaultAction == meshv1alpha1.ActionAllow {
		return true
	}
	return slices.ContainsFunc(spec.Rules, func(rule meshv1alpha1.AllowRule) bool {
		return fromAllows(rule.From, ns, r) && toAllows(rule.To, r)
	})
}

func strict(spec *meshv1alpha1.ZeroTrustPolicySpec) bool {
	return spec.MTLS == nil || spec.MTLS.Mode != meshv1alpha1.MTLSPermissive
}

func fromAllows(from []meshv1alpha1.TrafficSource, ns string, r Request) bool {
	if len(from) == 0 {
		return true
	}
	if !r.Meshed {
		return false
	}
	return slices.ContainsFunc(from, func(f meshv1alpha1.TrafficSource) bool {
		return slices.Contains(f.Namespaces, r.Namespace) || slices.ContainsFunc(f.ServiceAccounts, func(sa string) bool {
			return qualify(ns, sa) == r.Namespace+"/"+r.ServiceAccount
		})
	})
}

func qualify(ns, sa string) string {
	if strings.Contains(sa, "/") {
		return sa
	}
	return ns + "/" + sa
}

func toAllows(to []meshv1alpha1.TrafficDestination, r Request) bool {
	if len(to) == 0 {
		return true
	}
	return slices.ContainsFunc(to, func(t meshv1alpha1.TrafficDestination) bool {
		return (len(t.Ports) == 0 || slices.Contains(t.Ports, r.Port)) &&
			(len(t.Methods) == 0 || slices.Contains(t.Methods, meshv1alpha1.HTTPMethod(r.Method))) &&
			(len(t.Paths) == 0 || slices.ContainsFunc(t.Paths, func(p string) bool { return policyPath(p, r.Path) }))
	})
}

// policyPath matches a ZeroTrustPolicy path: exact, or a prefix with a
// trailing "*".
func policyPath(p, path string) bool {
	if v, ok := strings.CutSuffix(p, "*"); ok {
		return strings.HasPrefix(path, v)
	}
	return p == path
}

// Route is where a request goes: backend name to weight.
type Route map[string]int32

// Routes is the intent of a TrafficSplit for r: the first rule whose any
// match matches, else the default backends.
func Routes(spec *meshv1alpha1.TrafficSplitSpec, r Request) Route {
	for _, rule := range spec.Rules {
		if slices.ContainsFunc(rule.Matches, func(m meshv1alpha1.HTTPMatch) bool { return intentMatch(m, r) }) {
			return weights(rule.Backends)
		}
	}
	return weights(spec.Backends)
}

func weights(bs []meshv1alpha1.WeightedBackend) Route {
	out := Route{}
	for _, b := range bs {
		out[b.Name] += b.Weight
	}
	return out
}

func intentMatch(m meshv1alpha1.HTTPMatch, r Request) bool {
	if m.Method != "" && string(m.Method) != r.Method {
		return false
	}
	if p := m.Path; p != nil {
		if p.Type == meshv1alpha1.PathMatchExact && r.Path != p.Value {
			return false
		}
		if p.Type != meshv1alpha1.PathMatchExact && !segmentPrefix(p.Value, r.Path) {
			return false
		}
	}
	for _, h := range m.Headers {
		v, ok := r.Headers[strings.ToLower(h.Name)]
		if !ok {
			return false
		}
		switch h.Type {
		case meshv1alpha1.HeaderMatchPrefix:
			ok = strings.HasPrefix(v, h.Value)
		case meshv1alpha1.HeaderMatchRegularExpression:
			ok = regexp.MustCompile("^(?:" + h.Value + ")$").MatchString(v)
		default:
			ok = v == h.Value
		}
		if !ok {
			return false
		}
	}
	return true
}

// segmentPrefix is Gateway API's PathPrefix: element-wise, so /api matches
// /api and /api/x, not /apix.
func segmentPrefix(prefix, path string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" {
		return true
	}
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}
