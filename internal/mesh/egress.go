package mesh

import (
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// This file is the contract of EgressPolicy and of ZeroTrustPolicy's JWT
// request authentication with the providers: the capabilities, the
// translator interface and the requirements of a spec.

// Egress capabilities (EgressPolicy).
const (
	// CapEgressAllowList blocks external destinations no rule names.
	CapEgressAllowList Capability = "EgressAllowList"
	// CapEgressAudit lets every destination through while registering the
	// named ones, per policy.
	CapEgressAudit Capability = "EgressAudit"
	// CapEgressHTTPHosts allows host names over plain HTTP (by Host).
	CapEgressHTTPHosts Capability = "EgressHTTPHosts"
	// CapEgressTLSHosts allows host names over TLS (by SNI).
	CapEgressTLSHosts Capability = "EgressTLSHosts"
	// CapEgressWildcardHosts allows *.domain host names.
	CapEgressWildcardHosts Capability = "EgressWildcardHosts"
	// CapEgressCIDRs allows networks by address.
	CapEgressCIDRs Capability = "EgressCIDRs"
	// CapEgressTCPHosts allows opaque TCP to host names (the mesh tracks
	// the addresses the names resolve to).
	CapEgressTCPHosts Capability = "EgressTCPHosts"
	// CapEgressPerWorkload narrows an EgressPolicy to a workload selector.
	CapEgressPerWorkload Capability = "EgressPerWorkload"
	// CapEgressGateway routes allowed traffic through a fixed egress.
	CapEgressGateway Capability = "EgressGateway"
)

// JWT capabilities (ZeroTrustPolicy spec.jwt and rules' requestPrincipals
// and claims).
const (
	// CapJWTAuthentication validates request tokens of listed issuers.
	CapJWTAuthentication Capability = "JWTAuthentication"
	// CapJWTRules allows requests by token principal or claims.
	CapJWTRules Capability = "JWTRules"
)

// EgressCapabilities are the capabilities of EgressPolicy.
var EgressCapabilities = []Capability{
	CapEgressAllowList, CapEgressAudit, CapEgressHTTPHosts, CapEgressTLSHosts, CapEgressTCPHosts,
	CapEgressWildcardHosts, CapEgressCIDRs, CapEgressPerWorkload, CapEgressGateway,
}

// JWTCapabilities are the capabilities of ZeroTrustPolicy's JWT request
// authentication.
var JWTCapabilities = []Capability{CapJWTAuthentication, CapJWTRules}

// JWTAlternative says what to use where a mesh validates no request
// tokens; refusals of the JWT capabilities carry it.
const JWTAlternative = "the mesh validates no request tokens (JWT); validate them at an ingress gateway that does " +
	"(e.g. Envoy Gateway's or Istio's ingress gateway with a JWT policy) and keep the mesh's ZeroTrustPolicy for identities"

// featureDetail explains refusals of capabilities whose fix is not in the
// spec alone.
var featureDetail = map[Capability]string{
	CapJWTAuthentication: JWTAlternative,
	CapJWTRules:          JWTAlternative,
}

// EgressTranslator turns an EgressPolicy into the mesh's egress objects
// for a namespace's data plane. It is pure: no I/O.
type EgressTranslator interface {
	Provider
	// TranslateEgressPolicy returns the desired objects for p in a
	// namespace with facts f, or an *UnsupportedFeatureError (or another
	// terminal error) naming what the mesh cannot enforce there.
	TranslateEgressPolicy(p *meshv1alpha1.EgressPolicy, f NamespaceFacts) ([]client.Object, error)
	// EgressOutputKinds returns one empty object, with TypeMeta set, per
	// kind TranslateEgressPolicy may return.
	EgressOutputKinds() []client.Object
}

// EgressTranslator returns the named provider's EgressTranslator.
func (r *Registry) EgressTranslator(name meshv1alpha1.Provider) (EgressTranslator, error) {
	return lookup[EgressTranslator](r, name, "egress control (EgressPolicy)")
}

// EgressOutputKinds returns the kinds every registered egress translator
// may write, each once, in provider order. EgressPolicy owns these.
func (r *Registry) EgressOutputKinds() []client.Object {
	var out []client.Object
	for _, p := range r.Providers() {
		if t, ok := p.(EgressTranslator); ok {
			out = appendKinds(out, t.EgressOutputKinds())
		}
	}
	return out
}

// EgressMode returns the spec's mode, AllowList when unset.
func EgressMode(spec *meshv1alpha1.EgressPolicySpec) meshv1alpha1.EgressMode {
	if spec.Mode == "" {
		return meshv1alpha1.EgressAllowList
	}
	return spec.Mode
}

// IsWildcardHost reports whether h is a *.domain host.
func IsWildcardHost(h string) bool { return strings.HasPrefix(h, "*.") }

// EgressPolicyRequirements returns the capabilities an EgressPolicy spec
// uses.
func EgressPolicyRequirements(spec *meshv1alpha1.EgressPolicySpec) []Capability {
	req := []Capability{CapEgressAllowList}
	if EgressMode(spec) == meshv1alpha1.EgressAudit {
		req = []Capability{CapEgressAudit}
	}
	if s := spec.Selector; s != nil && (len(s.MatchLabels) > 0 || len(s.MatchExpressions) > 0) {
		req = append(req, CapEgressPerWorkload)
	}
	if spec.Gateway != nil {
		req = append(req, CapEgressGateway)
	}
	for _, r := range spec.Rules {
		if len(r.CIDRs) > 0 {
			req = append(req, CapEgressCIDRs)
		}
		if len(r.Hosts) == 0 {
			continue
		}
		if slices.ContainsFunc(r.Hosts, IsWildcardHost) {
			req = append(req, CapEgressWildcardHosts)
		}
		for _, port := range r.Ports {
			req = append(req, hostCapability[port.Protocol])
		}
	}
	return dedupe(req)
}

// hostCapability is the capability of host names on a port's protocol.
var hostCapability = map[meshv1alpha1.EgressProtocol]Capability{
	meshv1alpha1.EgressHTTP: CapEgressHTTPHosts,
	meshv1alpha1.EgressTLS:  CapEgressTLSHosts,
	meshv1alpha1.EgressTCP:  CapEgressTCPHosts,
}

// JWTRequirements returns the JWT capabilities a ZeroTrustPolicy spec
// uses.
func JWTRequirements(spec *meshv1alpha1.ZeroTrustPolicySpec) []Capability {
	var req []Capability
	if spec.JWT != nil {
		req = append(req, CapJWTAuthentication)
	}
	for _, r := range spec.Rules {
		if HasJWTConditions(r) {
			req = append(req, CapJWTRules)
			break
		}
	}
	return req
}

// HasJWTConditions reports whether a rule matches request tokens.
func HasJWTConditions(r meshv1alpha1.AllowRule) bool {
	return len(r.RequestPrincipals) > 0 || len(r.Claims) > 0
}

// EgressRuleName names rule i of an EgressPolicy in output names: its name,
// or its index.
func EgressRuleName(r meshv1alpha1.EgressRule, i int) string {
	if r.Name != "" {
		return r.Name
	}
	return fmt.Sprintf("rule-%d", i)
}

// CheckEgressOutputs validates the outputs of an EgressPolicy translation
// like those of the other kinds (CheckOutputs).
func CheckEgressOutputs(p *meshv1alpha1.EgressPolicy, objs []client.Object) error {
	return CheckOutputs("EgressPolicy "+p.Name, objs)
}

// detailOf explains the refused features that have an explanation.
func detailOf(missing []Capability) string {
	var details []string
	for _, m := range missing {
		if d := featureDetail[m]; d != "" && !slices.Contains(details, d) {
			details = append(details, d)
		}
	}
	return strings.Join(details, "; ")
}
