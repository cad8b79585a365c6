package overlap

import (
	"context"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
)

const kindTelemetryPolicy = "TelemetryPolicy"

// Telemetry returns nil when p may apply, or a Conflict naming the
// TelemetryPolicy of the namespace that configures telemetry for some of
// the same workloads at the same level and wins (see the package doc for
// who wins). The levels are the namespace (no selector) and workloads (a
// selector): a workload policy overrides the namespace-wide one field by
// field on every mesh that has workload policies (Istio's Telemetry
// hierarchy), so those compose; two namespace-wide policies, or two whose
// selectors may select a common pod, would both be applied and the mesh
// would merge them in an undefined order.
func Telemetry(ctx context.Context, c client.Reader, p *meshv1alpha1.TelemetryPolicy) error {
	var list meshv1alpha1.TelemetryPolicyList
	if err := c.List(ctx, &list, client.InNamespace(p.Namespace)); err != nil {
		return fmt.Errorf("listing the namespace's TelemetryPolicies: %w", err)
	}
	all := []*meshv1alpha1.TelemetryPolicy{p}
	for i := range list.Items {
		if o := &list.Items[i]; o.DeletionTimestamp.IsZero() && o.Name != p.Name {
			all = append(all, o)
		}
	}
	c0 := func(o *meshv1alpha1.TelemetryPolicy) contender {
		// Linkerd's namespace annotation is a shared field, not an
		// inventory entry: a policy in force has either.
		return contenderOf(kindTelemetryPolicy, o, &o.Status.CommonStatus, len(o.Status.Inventory)+len(o.Status.SharedFields))
	}
	slices.SortFunc(all, func(a, b *meshv1alpha1.TelemetryPolicy) int { return before(c0(a), c0(b)) })
	var won []*meshv1alpha1.TelemetryPolicy
	for _, o := range all {
		var by *meshv1alpha1.TelemetryPolicy
		for _, w := range won {
			if TelemetryConflict(w, o) {
				by = w
				break
			}
		}
		if o == p {
			if by == nil {
				return nil
			}
			return outcome.Conflict("TelemetryPolicy %s (%s) already configures telemetry for workloads this policy selects (%s); two policies at the same level would both be applied "+
				"and the mesh would merge them in no defined order — merge the two into one, make spec.selector disjoint from %s's, or delete one (this policy is re-checked when %s changes or goes away)",
				by.Name, describe(by.Spec.Selector), describe(p.Spec.Selector), by.Name, by.Name)
		}
		if by == nil {
			won = append(won, o)
		}
	}
	return nil
}

// TelemetryConflict reports whether a and b configure telemetry at the
// same level (both namespace-wide, or both for workloads) for a workload
// both may select.
func TelemetryConflict(a, b *meshv1alpha1.TelemetryPolicy) bool {
	wa, wb := workloadLevel(a.Spec.Selector), workloadLevel(b.Spec.Selector)
	return wa == wb && SelectorsOverlap(a.Spec.Selector, b.Spec.Selector)
}

func workloadLevel(s *metav1.LabelSelector) bool {
	return s != nil && (len(s.MatchLabels) > 0 || len(s.MatchExpressions) > 0)
}
