package cilium

import (
	"regexp"
	"strconv"
	"strings"

	ciliumv2 "github.com/cilium/cilium/pkg/k8s/apis/cilium.io/v2"
	slimv1 "github.com/cilium/cilium/pkg/k8s/slim/k8s/apis/meta/v1"
	"github.com/cilium/cilium/pkg/policy/api"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/gamma"
	"github.com/meshplane/meshplane/internal/outcome"
)

// Label keys Cilium gives every endpoint.
const (
	NamespaceLabel      = "k8s:io.kubernetes.pod.namespace"
	ServiceAccountLabel = "k8s:io.cilium.k8s.policy.serviceaccount"
)

// TranslateTrafficSplit returns a GAMMA HTTPRoute whose parent is the root
// Service (Cilium's producer route).
func (p *Provider) TranslateTrafficSplit(ts *meshv1alpha1.TrafficSplit) ([]client.Object, error) {
	if err := mesh.ValidateTrafficSplit(ts); err != nil {
		return nil, err
	}
	if err := mesh.Check(p, mesh.TrafficSplitRequirements(&ts.Spec)...); err != nil {
		return nil, err
	}
	route, err := gamma.HTTPRoute(ts, p.Name())
	if err != nil {
		return nil, err
	}
	objs := []client.Object{route}
	if err := mesh.CheckOutputs("TrafficSplit "+ts.Name, objs); err != nil {
		return nil, err
	}
	return objs, nil
}

// TranslateZeroTrustPolicy returns one CiliumNetworkPolicy for the selected
// endpoints. Strict sets authentication.mode required on every ingress rule
// (Cilium's mutual authentication); Permissive leaves it out. With
// defaultAction Deny the rules are the only ingress allowed (no rules: an
// empty ingress rule, which allows nothing); with Allow every entity is
// allowed. Cilium's L7 HTTP rules need a port, so methods or paths without
// ports are refused. Cilium selects a caller's service account by a label
// value, so a service account name over 63 characters is refused.
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
	var auth *api.Authentication
	if pol.Spec.MTLS == nil || pol.Spec.MTLS.Mode != meshv1alpha1.MTLSPermissive {
		auth = &api.Authentication{Mode: api.AuthenticationModeRequired}
	}
	sel := &slimv1.LabelSelector{}
	if s := pol.Spec.Selector; s != nil {
		sel.MatchLabels = s.MatchLabels
		for _, e := range s.MatchExpressions {
			sel.MatchExpressions = append(sel.MatchExpressions, slimv1.LabelSelectorRequirement{
				Key: e.Key, Operator: slimv1.LabelSelectorOperator(e.Operator), Values: e.Values})
		}
	}
	var ingress []api.IngressRule
	switch {
	case pol.Spec.DefaultAction == meshv1alpha1.ActionAllow:
		ingress = []api.IngressRule{{IngressCommonRule: api.IngressCommonRule{FromEntities: api.EntitySlice{api.EntityAll}}, Authentication: auth}}
	case len(pol.Spec.Rules) == 0:
		ingress = []api.IngressRule{{}}
	}
	for i, r := range pol.Spec.Rules {
		ir := api.IngressRule{Authentication: auth}
		for j, f := range r.From {
			for k, sa := range f.ServiceAccounts {
				ns, name := pol.Namespace, sa
				if slash := strings.Index(sa, "/"); slash >= 0 {
					ns, name = sa[:slash], sa[slash+1:]
				}
				if len(name) > validation.LabelValueMaxLength {
					return nil, outcome.Stalled(meshv1alpha1.InvalidSpecReason,
						"spec.rules[%d].from[%d].serviceAccounts[%d]: service account name %q is %d characters; Cilium selects callers by the label %s, whose values are at most %d characters — use a shorter service account name",
						i, j, k, name, len(name), ServiceAccountLabel, validation.LabelValueMaxLength)
				}
				ir.FromEndpoints = append(ir.FromEndpoints, selector(map[string]string{NamespaceLabel: ns, ServiceAccountLabel: name}))
			}
			for _, ns := range f.Namespaces {
				ir.FromEndpoints = append(ir.FromEndpoints, selector(map[string]string{NamespaceLabel: ns}))
			}
		}
		if len(r.From) == 0 {
			ir.FromEntities = api.EntitySlice{api.EntityAll}
		}
		for _, t := range r.To {
			if len(t.Ports) == 0 {
				return nil, &mesh.UnsupportedFeatureError{Provider: p.Name(), Features: []mesh.Capability{mesh.CapAllowHTTPMethodPath},
					Detail: "Cilium's L7 HTTP rules need ports; add to.ports to the destination"}
			}
			pr := api.PortRule{}
			for _, port := range t.Ports {
				pr.Ports = append(pr.Ports, api.PortProtocol{Port: strconv.Itoa(int(port)), Protocol: api.ProtoTCP})
			}
			if len(t.Methods) > 0 || len(t.Paths) > 0 {
				pr.Rules = &api.L7Rules{HTTP: httpRules(t)}
			}
			ir.ToPorts = append(ir.ToPorts, pr)
		}
		ingress = append(ingress, ir)
	}
	return []client.Object{&ciliumv2.CiliumNetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: ciliumv2.SchemeGroupVersion.String(), Kind: "CiliumNetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: pol.Name, Namespace: pol.Namespace},
		Spec:       &api.Rule{EndpointSelector: api.EndpointSelector{LabelSelector: sel}, Ingress: ingress},
	}}, nil
}

func selector(labels map[string]string) api.EndpointSelector {
	return api.EndpointSelector{LabelSelector: &slimv1.LabelSelector{MatchLabels: labels}}
}

// httpRules returns methods × paths as Cilium's regular expressions (a
// trailing "*" makes a path prefix).
func httpRules(t meshv1alpha1.TrafficDestination) []api.PortRuleHTTP {
	paths := []string{""}
	if len(t.Paths) > 0 {
		paths = nil
		for _, p := range t.Paths {
			if v, ok := strings.CutSuffix(p, "*"); ok {
				paths = append(paths, "^"+regexp.QuoteMeta(v)+".*$")
			} else {
				paths = append(paths, "^"+regexp.QuoteMeta(p)+"$")
			}
		}
	}
	methods := []string{""}
	if len(t.Methods) > 0 {
		methods = nil
		for _, m := range t.Methods {
			methods = append(methods, "^"+string(m)+"$")
		}
	}
	var out []api.PortRuleHTTP
	for _, p := range paths {
		for _, m := range methods {
			out = append(out, api.PortRuleHTTP{Path: p, Method: m})
		}
	}
	return out
}

var (
	_ mesh.TrafficTranslator = (*Provider)(nil)
	_ mesh.PolicyTranslator  = (*Provider)(nil)
)
