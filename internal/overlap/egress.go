package overlap

import (
	"context"
	"fmt"
	"slices"

	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
)

// kindEgressPolicy is EgressPolicy's kind.
const kindEgressPolicy = "EgressPolicy"

// Egress returns a Conflict when an EgressPolicy of p's namespace that
// wins (in force, else older, else by name), and is not itself beaten by
// another, may select a workload p selects: a workload has one egress
// allow-list, and a mesh would either keep one of two (Istio's Sidecar,
// Linkerd's EgressNetwork) or union them (Cilium's policies), neither of
// which is what either policy says.
func Egress(ctx context.Context, c client.Reader, p *meshv1alpha1.EgressPolicy) error {
	var list meshv1alpha1.EgressPolicyList
	if err := c.List(ctx, &list, client.InNamespace(p.Namespace)); err != nil {
		return fmt.Errorf("listing the namespace's EgressPolicies: %w", err)
	}
	all := []*meshv1alpha1.EgressPolicy{}
	for i := range list.Items {
		if o := &list.Items[i]; o.DeletionTimestamp.IsZero() && o.Name != p.Name {
			all = append(all, o)
		}
	}
	all = append(all, p)
	c0 := func(o *meshv1alpha1.EgressPolicy) contender {
		return contenderOf(kindEgressPolicy, o, &o.Status.CommonStatus, len(o.Status.Inventory))
	}
	slices.SortFunc(all, func(a, b *meshv1alpha1.EgressPolicy) int { return before(c0(a), c0(b)) })
	var won []*meshv1alpha1.EgressPolicy
	for _, o := range all {
		i := slices.IndexFunc(won, func(w *meshv1alpha1.EgressPolicy) bool { return SelectorsOverlap(w.Spec.Selector, o.Spec.Selector) })
		if o != p {
			if i < 0 {
				won = append(won, o)
			}
			continue
		}
		if i < 0 {
			return nil
		}
		by := won[i]
		return outcome.Conflict("EgressPolicy %s (%s) already controls the egress of workloads this policy selects (%s); a workload has one egress allow-list — "+
			"merge the rules into %s, make spec.selector disjoint from %s's, or delete one (this policy is re-checked when %s changes or goes away)",
			by.Name, describe(by.Spec.Selector), describe(p.Spec.Selector), by.Name, by.Name, by.Name)
	}
	return nil
}
