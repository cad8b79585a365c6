package linkerd

import (
	"github.com/meshplane/meshplane/internal/mesh"
)

// notYet is the refusal of a field Linkerd can express but this build does
// not translate: Linkerd implements mesh.ResilienceSupporter (the report)
// and not mesh.ResilienceTranslator, so a ResiliencePolicy for Linkerd is
// refused whole, naming each field.
const notYet = "; Meshplane does not translate ResiliencePolicies for Linkerd yet"

// ResilienceSupport answers per field what Linkerd has: failure accrual
// (consecutive failures) and retries and timeouts as annotations, a local
// rate limit as an HTTPLocalRateLimitPolicy on the Server; no connection
// pools, fault injection, retry budget per policy or choice of load
// balancer (Linkerd always balances by EWMA latency).
func (*Provider) ResilienceSupport(_ mesh.Scope, f mesh.ResilienceField) mesh.Support {
	switch f {
	case mesh.RFConsecutive5xx:
		return mesh.Refused("would be Service annotation balancer.linkerd.io/failure-accrual: consecutive" + notYet)
	case mesh.RFConsecutiveGateway:
		return mesh.Refused("Linkerd's failure accrual counts every failure alike; use consecutive5xxErrors")
	case mesh.RFOutlierInterval, mesh.RFMaxEjectionPercent:
		return mesh.Refused("Linkerd's failure accrual has no sweep interval or ejection cap")
	case mesh.RFBaseEjectionTime:
		return mesh.Refused("would be balancer.linkerd.io/failure-accrual-consecutive-min-penalty" + notYet)
	case mesh.RFSuccessRate:
		return mesh.Refused("Linkerd's failure accrual has no success-rate mode")
	case mesh.RFRetries, mesh.RFRetryPerTryTimeout, mesh.RFRetryOn:
		return mesh.Refused("would be retry.linkerd.io/* annotations" + notYet)
	case mesh.RFRequestTimeout, mesh.RFIdleTimeout:
		return mesh.Refused("would be timeout.linkerd.io/* annotations" + notYet)
	case mesh.RFLocalRateLimit:
		return mesh.Refused("would be an HTTPLocalRateLimitPolicy on the target's Server" + notYet)
	case mesh.RFGlobalRateLimit:
		return mesh.Refused("Linkerd has no global rate limiting (HTTPLocalRateLimitPolicy limits each proxy on its own); use rateLimit.local")
	case mesh.RFLocalRateLimitPath:
		return mesh.Refused("Linkerd's HTTPLocalRateLimitPolicy limits a whole Server, not a path; drop rateLimit.local.pathPrefix")
	case mesh.RFRetryBudget:
		return mesh.Refused("Linkerd's retry budget is not configurable per Service through annotations")
	case mesh.RFFaultDelay, mesh.RFFaultAbort, mesh.RFFaultHeaders:
		return mesh.Refused("Linkerd has no fault injection")
	case mesh.RFRoundRobin, mesh.RFLeastRequest, mesh.RFRandom, mesh.RFHashHeader, mesh.RFHashCookie, mesh.RFHashSourceIP, mesh.RFWarmup:
		return mesh.Refused("Linkerd always balances by EWMA latency (no algorithm choice, hashing or warm-up)")
	}
	return mesh.Refused("Linkerd has no connection pool limits")
}
