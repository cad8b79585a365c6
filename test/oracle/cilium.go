package oracle

import (
	"regexp"
	"slices"
	"strconv"

	ciliumv2 "github.com/cilium/cilium/pkg/k8s/apis/cilium.io/v2"
	"github.com/cilium/cilium/pkg/policy/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshplane/meshplane/internal/mesh/cilium"
)

// CiliumInstall is what the Cilium model needs of the install.
type CiliumInstall struct {
	// MutualAuth: the agent runs mutual authentication; without it a rule
	// with authentication.mode required never admits traffic.
	MutualAuth bool
	// Envoy: L7 rules are enforced; without it they cannot be.
	Envoy bool
}

// CiliumAllows evaluates the CiliumNetworkPolicies in objs for r at an
// endpoint they select: any ingress rule that admits r allows it.
// Unmeshed callers are peers outside the cluster (entity world) and cannot
// authenticate.
func CiliumAllows(objs []client.Object, in CiliumInstall, r Request) bool {
	for _, o := range objs {
		cnp, ok := o.(*ciliumv2.CiliumNetworkPolicy)
		if !ok || cnp.Spec == nil {
			continue
		}
		if slices.ContainsFunc(cnp.Spec.Ingress, func(rule api.IngressRule) bool { return ciliumRule(rule, in, r) }) {
			return true
		}
	}
	return false
}

func ciliumRule(rule api.IngressRule, in CiliumInstall, r Request) bool {
	if a := rule.Authentication; a != nil && a.Mode == api.AuthenticationModeRequired && (!in.MutualAuth || !r.Meshed) {
		return false
	}
	peer := slices.Contains(rule.FromEntities, api.EntityAll) ||
		r.Meshed && slices.ContainsFunc(rule.FromEndpoints, func(sel api.EndpointSelector) bool {
			for k, v := range sel.MatchLabels {
				switch k {
				case cilium.NamespaceLabel:
					if v != r.Namespace {
						return false
					}
				case cilium.ServiceAccountLabel:
					if v != r.ServiceAccount {
						return false
					}
				default:
					return false
				}
			}
			return true
		})
	if !peer {
		return false
	}
	if len(rule.ToPorts) == 0 {
		return true
	}
	return slices.ContainsFunc(rule.ToPorts, func(pr api.PortRule) bool {
		if !slices.ContainsFunc(pr.Ports, func(p api.PortProtocol) bool { return p.Port == strconv.Itoa(int(r.Port)) }) {
			return false
		}
		if pr.Rules == nil || len(pr.Rules.HTTP) == 0 {
			return true
		}
		if !in.Envoy {
			return false
		}
		return slices.ContainsFunc(pr.Rules.HTTP, func(h api.PortRuleHTTP) bool {
			return anchored(h.Method, r.Method) && anchored(h.Path, r.Path)
		})
	})
}

// anchored: Cilium's HTTP fields are extended POSIX regular expressions
// matched against the whole value; empty matches everything.
func anchored(expr, v string) bool {
	return expr == "" || regexp.MustCompile("^(?:"+expr+")$").MatchString(v)
}
