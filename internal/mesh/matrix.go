package mesh

import (
	"fmt"
	"slices"
	"strings"
)

// capabilityDocs describes each capability for the generated matrix.
var capabilityDocs = map[Capability]string{
	CapServiceRouting:          "TrafficSplit and Canary: route a Service's traffic at all",
	CapWeightedRouting:         "TrafficSplit: split traffic between backends by weight",
	CapHeaderMatchExact:        "TrafficSplit rule: header matches exactly",
	CapHeaderMatchPrefix:       "TrafficSplit rule: header matches by prefix",
	CapHeaderMatchRegex:        "TrafficSplit rule: header matches a regular expression",
	CapPathMatch:               "TrafficSplit rule: path matches exactly or by prefix",
	CapMethodMatch:             "TrafficSplit rule: HTTP method matches",
	CapMirroring:               "TrafficSplit mirror: shadow all requests",
	CapMirrorPercent:           "TrafficSplit mirror: shadow a percentage of requests",
	CapRequestTimeout:          "TrafficSplit timeout",
	CapRetries:                 "TrafficSplit retries.attempts (Istio: Native output only)",
	CapRetryPerTryTimeout:      "TrafficSplit retries.perTryTimeout",
	CapRetryConditions:         "TrafficSplit retries.retryOn",
	CapOrderedRules:            "TrafficSplit rules keep list order where a later rule is more specific (Istio: Native output only)",
	CapGatewayAPIOutput:        "Gateway API HTTPRoute output (GAMMA)",
	CapNativeRoutingOutput:     "Mesh-native routing output (VirtualService)",
	CapMTLSStrict:              "ZeroTrustPolicy mtls.mode Strict",
	CapMTLSPermissive:          "ZeroTrustPolicy mtls.mode Permissive",
	CapPerWorkloadMTLSMode:     "ZeroTrustPolicy selector narrower than the namespace",
	CapDefaultDeny:             "ZeroTrustPolicy defaultAction Deny",
	CapAllowFromServiceAccount: "ZeroTrustPolicy rule from serviceAccounts",
	CapAllowFromNamespace:      "ZeroTrustPolicy rule from namespaces",
	CapAllowToPort:             "ZeroTrustPolicy rule to ports",
	CapAllowAnyPort:            "ZeroTrustPolicy rule without ports (every port of the workload)",
	CapAllowHTTPMethodPath:     "ZeroTrustPolicy rule to methods and paths",
	CapHelmInstall:             "MeshInstall from Helm charts",
	CapRevisions:               "MeshRevision: control-plane revisions side by side",
	CapAmbient:                 "MeshInstall profile Ambient",
	CapInPlaceUpgrade:          "MeshInstall upgrade strategy InPlace",
	CapSharedRootCA:            "MeshFederation: intermediate CA from a shared root",
	CapTrustBundle:             "MeshFederation: bundle of several roots",
	CapDetachInjection:         "BreakGlass detachInjection",
	CapEgressAllowList:         "EgressPolicy mode AllowList (everything else blocked)",
	CapEgressAudit:             "EgressPolicy mode Audit, per policy",
	CapEgressHTTPHosts:         "EgressPolicy hosts on HTTP ports",
	CapEgressTLSHosts:          "EgressPolicy hosts on TLS ports (by SNI)",
	CapEgressTCPHosts:          "EgressPolicy hosts on TCP ports",
	CapEgressWildcardHosts:     "EgressPolicy *.domain hosts",
	CapEgressCIDRs:             "EgressPolicy cidrs",
	CapEgressPerWorkload:       "EgressPolicy selector",
	CapEgressGateway:           "EgressPolicy gateway",
	CapJWTAuthentication:       "ZeroTrustPolicy jwt (request token validation)",
	CapJWTRules:                "ZeroTrustPolicy rule requestPrincipals and claims",
}

// CapabilityMatrix renders the registry's capabilities as a Markdown table,
// one row per capability and one column per provider, then the conditions
// of the install and the namespace a cell marked with one depends on.
func CapabilityMatrix(r *Registry) string {
	var b strings.Builder
	ps := r.Providers()
	b.WriteString("| Capability | What it covers |")
	for _, p := range ps {
		fmt.Fprintf(&b, " %s |", p.Name())
	}
	b.WriteString("\n|---|---|")
	for range ps {
		b.WriteString(":-:|")
	}
	b.WriteString("\n")
	for _, c := range AllCapabilities {
		fmt.Fprintf(&b, "| `%s` | %s |", c, capabilityDocs[c])
		for _, p := range ps {
			fmt.Fprintf(&b, " %s |", cell(p, c))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n## Conditions\n\nA cell with conditions is enforced only where they hold for the MeshInstall and the\n" +
		"namespace's data plane; elsewhere the object is refused with `UnsupportedFeature` naming what to change.\n\n" +
		"| Condition | Mesh | Holds when |\n|---|---|---|\n")
	for _, p := range ps {
		for i, cond := range conditions(p) {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", conditionID(p, i), p.Name(), cond.Doc)
		}
	}
	return b.String()
}

func conditions(p Provider) []Condition {
	if c, ok := p.(Conditional); ok {
		return c.Conditions()
	}
	return nil
}

// conditionID names the i-th condition of p, e.g. C1 for Cilium's first.
func conditionID(p Provider, i int) string {
	return fmt.Sprintf("%s%d", string(p.Name())[:1], i+1)
}

// cell is a matrix cell: — when unsupported, ✓ when always, ✓ with the
// conditions otherwise.
func cell(p Provider, c Capability) string {
	if !p.Capabilities().Has(c) {
		return "—"
	}
	var ids []string
	for i, cond := range conditions(p) {
		if slices.Contains(cond.Capabilities, c) {
			ids = append(ids, conditionID(p, i))
		}
	}
	if len(ids) == 0 {
		return "✓"
	}
	return "✓ if " + strings.Join(ids, ", ")
}
