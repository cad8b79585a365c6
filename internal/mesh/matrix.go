package mesh

import (
	"fmt"
	"strings"
)

// capabilityDocs describes each capability for the generated matrix.
var capabilityDocs = map[Capability]string{
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
}

// CapabilityMatrix renders the registry's capabilities as a Markdown table,
// one row per capability and one column per provider.
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
			mark := "—"
			if p.Capabilities().Has(c) {
				mark = "✓"
			}
			fmt.Fprintf(&b, " %s |", mark)
		}
		b.WriteString("\n")
	}
	return b.String()
}
