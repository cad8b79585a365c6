package cilium

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	ciliumv2 "github.com/cilium/cilium/pkg/k8s/apis/cilium.io/v2"
	slimv1 "github.com/cilium/cilium/pkg/k8s/slim/k8s/apis/meta/v1"
	"github.com/cilium/cilium/pkg/policy/api"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// +kubebuilder:rbac:groups=cilium.io,resources=ciliumegressgatewaypolicies,verbs=get;list;watch;create;update;patch;delete

// DNS of the cluster as Cilium's toFQDNs rules need it: the DNS proxy
// learns the addresses of allowed names only from answers it sees, so the
// policy must allow (and make visible) DNS to kube-dns.
const (
	kubeDNSNamespace = "kube-system"
	kubeDNSLabel     = "k8s:k8s-app"
	kubeDNSApp       = "kube-dns"
	// namespaceNameLabel is the label Kubernetes gives every namespace.
	namespaceNameLabel = "kubernetes.io/metadata.name"
)

// EgressOutputKinds returns CiliumNetworkPolicy and the cluster-scoped
// CiliumEgressGatewayPolicy.
func (*Provider) EgressOutputKinds() []client.Object {
	return []client.Object{
		&ciliumv2.CiliumNetworkPolicy{TypeMeta: metav1.TypeMeta{APIVersion: ciliumv2.SchemeGroupVersion.String(), Kind: "CiliumNetworkPolicy"}},
		&ciliumv2.CiliumEgressGatewayPolicy{TypeMeta: metav1.TypeMeta{APIVersion: ciliumv2.SchemeGroupVersion.String(), Kind: "CiliumEgressGatewayPolicy"}},
	}
}

// TranslateEgressPolicy returns a CiliumNetworkPolicy <name>-egress for
// the selected endpoints whose egress rules are: DNS to kube-dns with a
// DNS rule (the visibility toFQDNs needs), every destination inside the
// cluster (entity cluster: the policy restricts external egress only), per
// host rule toFQDNs (matchName, or matchPattern **.domain for *.domain: any
// depth of subdomain) on its ports, and per cidr rule toCIDR on its ports.
// Any egress rule puts the endpoints in default-deny for egress, which is
// the allow-list. With spec.gateway.nodeSelector it adds a
// CiliumEgressGatewayPolicy <namespace>-<name> (cluster-scoped) sending the
// selected pods' traffic to the cidrs through the gateway nodes.
//
// Refused: mode Audit (Cilium's policy audit mode is set per agent or per
// endpoint, not per policy), host rules with a gateway (the egress gateway
// selects destinations by CIDR only, so their traffic would not pass it),
// and a gateway without nodeSelector (name is Istio's).
func (p *Provider) TranslateEgressPolicy(pol *meshv1alpha1.EgressPolicy, _ mesh.NamespaceFacts) ([]client.Object, error) {
	if err := p.checkEgress(pol); err != nil {
		return nil, err
	}
	sel := &slimv1.LabelSelector{}
	if s := pol.Spec.Selector; s != nil {
		sel = slimSelector(s)
	}
	egress := []api.EgressRule{
		{
			EgressCommonRule: api.EgressCommonRule{ToEndpoints: []api.EndpointSelector{
				selector(map[string]string{NamespaceLabel: kubeDNSNamespace, kubeDNSLabel: kubeDNSApp})}},
			ToPorts: api.PortRules{{
				Ports: []api.PortProtocol{{Port: "53", Protocol: api.ProtoAny}},
				Rules: &api.L7Rules{DNS: []api.PortRuleDNS{{MatchPattern: "*"}}},
			}},
		},
		{EgressCommonRule: api.EgressCommonRule{ToEntities: api.EntitySlice{api.EntityCluster}}},
	}
	for _, r := range pol.Spec.Rules {
		egress = append(egress, egressRule(r))
	}
	objs := []client.Object{&ciliumv2.CiliumNetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: ciliumv2.SchemeGroupVersion.String(), Kind: "CiliumNetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: pol.Name + "-egress", Namespace: pol.Namespace},
		Spec:       &api.Rule{EndpointSelector: api.EndpointSelector{LabelSelector: sel}, Egress: egress},
	}}
	if g := pol.Spec.Gateway; g != nil {
		objs = append(objs, egressGatewayPolicy(pol, sel))
	}
	if err := mesh.CheckEgressOutputs(pol, objs); err != nil {
		return nil, err
	}
	return objs, nil
}

func (p *Provider) checkEgress(pol *meshv1alpha1.EgressPolicy) error {
	spec := &pol.Spec
	if mesh.EgressMode(spec) == meshv1alpha1.EgressAudit {
		return &mesh.UnsupportedFeatureError{Provider: p.Name(), Features: []mesh.Capability{mesh.CapEgressAudit},
			Detail: "spec.mode Audit: Cilium's policy audit mode is set for a whole agent or endpoint, not per policy; use mode AllowList, " +
				"or observe egress with Hubble"}
	}
	if g := spec.Gateway; g != nil {
		if len(g.NodeSelector) == 0 {
			return &mesh.UnsupportedFeatureError{Provider: p.Name(), Features: []mesh.Capability{mesh.CapEgressGateway},
				Detail: "spec.gateway: Cilium's egress gateway picks gateway nodes by spec.gateway.nodeSelector; name and namespace are Istio's"}
		}
		if i := slices.IndexFunc(spec.Rules, func(r meshv1alpha1.EgressRule) bool { return len(r.Hosts) > 0 }); i >= 0 {
			return &mesh.UnsupportedFeatureError{Provider: p.Name(), Features: []mesh.Capability{mesh.CapEgressGateway},
				Detail: fmt.Sprintf("spec.rules[%d].hosts with spec.gateway: a CiliumEgressGatewayPolicy selects destinations by CIDR only, "+
					"so traffic to host names would not pass the gateway; use cidrs, or put the host rules in a policy without a gateway", i)}
		}
	}
	return mesh.Check(p, mesh.EgressPolicyRequirements(spec)...)
}

// egressRule is one rule: toFQDNs or toCIDR, on its ports (TCP: HTTP and
// TLS run over TCP; Cilium enforces the addresses, not the protocol).
func egressRule(r meshv1alpha1.EgressRule) api.EgressRule {
	pr := api.PortRule{}
	for _, port := range r.Ports {
		pr.Ports = append(pr.Ports, api.PortProtocol{Port: strconv.Itoa(int(port.Number)), Protocol: api.ProtoTCP})
	}
	er := api.EgressRule{ToPorts: api.PortRules{pr}}
	for _, h := range r.Hosts {
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			er.ToFQDNs = append(er.ToFQDNs, api.FQDNSelector{MatchPattern: "**." + rest})
		} else {
			er.ToFQDNs = append(er.ToFQDNs, api.FQDNSelector{MatchName: h})
		}
	}
	for _, c := range r.CIDRs {
		er.ToCIDR = append(er.ToCIDR, api.CIDR(c))
	}
	return er
}

// egressGatewayPolicy routes the selected pods' traffic to every cidr of
// the policy through the gateway nodes.
func egressGatewayPolicy(pol *meshv1alpha1.EgressPolicy, pods *slimv1.LabelSelector) *ciliumv2.CiliumEgressGatewayPolicy {
	g := pol.Spec.Gateway
	var cidrs []ciliumv2.CIDR
	for _, r := range pol.Spec.Rules {
		for _, c := range r.CIDRs {
			cidrs = append(cidrs, ciliumv2.CIDR(c))
		}
	}
	return &ciliumv2.CiliumEgressGatewayPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: ciliumv2.SchemeGroupVersion.String(), Kind: "CiliumEgressGatewayPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: pol.Namespace + "-" + pol.Name},
		Spec: ciliumv2.CiliumEgressGatewayPolicySpec{
			Selectors: []ciliumv2.EgressRule{{
				NamespaceSelector: &slimv1.LabelSelector{MatchLabels: map[string]string{namespaceNameLabel: pol.Namespace}},
				PodSelector:       pods,
			}},
			DestinationCIDRs: cidrs,
			EgressGateway: &ciliumv2.EgressGateway{
				NodeSelector: &slimv1.LabelSelector{MatchLabels: g.NodeSelector},
				EgressIP:     g.EgressIP,
			},
		},
	}
}

// slimSelector converts a Kubernetes label selector to Cilium's.
func slimSelector(s *metav1.LabelSelector) *slimv1.LabelSelector {
	sel := &slimv1.LabelSelector{MatchLabels: s.MatchLabels}
	for _, e := range s.MatchExpressions {
		sel.MatchExpressions = append(sel.MatchExpressions, slimv1.LabelSelectorRequirement{
			Key: e.Key, Operator: slimv1.LabelSelectorOperator(e.Operator), Values: e.Values})
	}
	return sel
}

var _ mesh.EgressTranslator = (*Provider)(nil)
