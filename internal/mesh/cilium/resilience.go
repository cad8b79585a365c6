package cilium

import (
	"github.com/meshplane/meshplane/internal/mesh"
)

// notYet is the refusal of a field Cilium can express but this build does
// not translate: Cilium implements mesh.ResilienceSupporter (the report)
// and not mesh.ResilienceTranslator, so a ResiliencePolicy for Cilium is
// refused whole, naming each field.
const notYet = "; Meshplane does not translate ResiliencePolicies for Cilium yet"

// ResilienceSupport answers per field what Cilium has: every L7 setting
// needs its Envoy (MeshInstall spec.cilium.envoy); timeouts and retries on
// the Gateway API HTTPRoute, the L7 algorithm as the Service annotation
// service.cilium.io/lb-l7-algorithm (round robin, least request, random),
// and Envoy cluster and filter settings through a CiliumEnvoyConfig.
func (*Provider) ResilienceSupport(s mesh.Scope, f mesh.ResilienceField) mesh.Support {
	if !s.Install.Envoy {
		return mesh.Refused("Cilium's Envoy is not enabled in " + s.Where() + "; set spec.cilium.envoy on the MeshInstall")
	}
	switch f {
	case mesh.RFRequestTimeout:
		return mesh.Refused("would be HTTPRoute timeouts.request" + notYet)
	case mesh.RFRetries, mesh.RFRetryPerTryTimeout, mesh.RFRetryOn, mesh.RFRetryBudget:
		return mesh.Refused("HTTPRoute retries are not in Gateway API's standard channel, and a CiliumEnvoyConfig route would replace Cilium's own")
	case mesh.RFRoundRobin, mesh.RFLeastRequest, mesh.RFRandom:
		return mesh.Refused("would be Service annotation service.cilium.io/lb-l7-algorithm" + notYet)
	case mesh.RFHashHeader, mesh.RFHashCookie, mesh.RFHashSourceIP, mesh.RFWarmup:
		return mesh.Refused("service.cilium.io/lb-l7-algorithm has no hashing or warm-up")
	case mesh.RFIdleTimeout:
		return mesh.Refused("Gateway API HTTPRoute has no stream idle timeout")
	case mesh.RFGlobalRateLimit:
		return mesh.Refused("Cilium documents no global rate limiting, and Meshplane does not wire an external rate-limit service into Cilium's Envoy; use rateLimit.local")
	}
	return mesh.Refused("would be a CiliumEnvoyConfig (Envoy cluster or HTTP filter)" + notYet)
}
