package incident

import (
	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// RelaxResilience returns a copy of rp without what can block traffic
// during an incident: fault injection, the rate limit and outlier
// ejection. While a BreakGlass that relaxes policies covers the namespace,
// the ResiliencePolicy controller and a TrafficSplit that composes the
// policy translate this copy; when it goes, they translate the policy as
// written again, so the restore is exact (the outputs are derived from
// the spec, nothing needs recording).
func RelaxResilience(rp *meshv1alpha1.ResiliencePolicy) *meshv1alpha1.ResiliencePolicy {
	out := rp.DeepCopy()
	out.Spec.FaultInjection, out.Spec.RateLimit, out.Spec.OutlierDetection = nil, nil, nil
	return out
}
