package overlap

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
)

// kindProxyPolicy is ProxyPolicy's kind.
const kindProxyPolicy = "ProxyPolicy"

// Proxy returns a Conflict when another ProxyPolicy of p's namespace that
// wins (in force, else older, else by name), and is not itself beaten by
// another, may select a workload p selects — both would write the same
// pod-template annotations of one workload, at any level —, or when p has
// an egressScope and an EgressPolicy of the namespace may select a
// workload p selects: Istio applies one Sidecar per workload (a workload
// Sidecar wins over the namespace's), so one of the two would be ignored
// without a word. The EgressPolicy always wins: it may block traffic on
// purpose, a scope only saves memory.
func Proxy(ctx context.Context, c client.Reader, p *meshv1alpha1.ProxyPolicy) error {
	var list meshv1alpha1.ProxyPolicyList
	if err := c.List(ctx, &list, client.InNamespace(p.Namespace)); err != nil {
		return fmt.Errorf("listing the namespace's ProxyPolicies: %w", err)
	}
	all := []*meshv1alpha1.ProxyPolicy{p}
	for i := range list.Items {
		if o := &list.Items[i]; o.DeletionTimestamp.IsZero() && o.Name != p.Name {
			all = append(all, o)
		}
	}
	c0 := func(o *meshv1alpha1.ProxyPolicy) contender {
		return contenderOf(kindProxyPolicy, o, &o.Status.CommonStatus, len(o.Status.Inventory)+len(o.Status.SharedFields))
	}
	slices.SortFunc(all, func(a, b *meshv1alpha1.ProxyPolicy) int { return before(c0(a), c0(b)) })
	var won []*meshv1alpha1.ProxyPolicy
	for _, o := range all {
		var by *meshv1alpha1.ProxyPolicy
		for _, w := range won {
			if SelectorsOverlap(w.Spec.Selector, o.Spec.Selector) {
				by = w
				break
			}
		}
		if o == p {
			if by != nil {
				return outcome.Conflict("ProxyPolicy %s (%s) already configures the proxies of workloads this policy selects (%s); both would set the same "+
					"pod-template annotations — merge the two into one, make spec.selector disjoint from %s's, or delete one (this policy is re-checked when %s changes or goes away)",
					by.Name, describe(by.Spec.Selector), describe(p.Spec.Selector), by.Name, by.Name)
			}
			break
		}
		if by == nil {
			won = append(won, o)
		}
	}
	if p.Spec.EgressScope == nil {
		return nil
	}
	return egressScopeOverlap(ctx, c, p)
}

// egressScopeOverlap returns a Conflict naming an EgressPolicy that may
// select a workload p's egressScope applies to.
func egressScopeOverlap(ctx context.Context, c client.Reader, p *meshv1alpha1.ProxyPolicy) error {
	var egress meshv1alpha1.EgressPolicyList
	if err := c.List(ctx, &egress, client.InNamespace(p.Namespace)); err != nil {
		return fmt.Errorf("listing the namespace's EgressPolicies: %w", err)
	}
	slices.SortFunc(egress.Items, func(a, b meshv1alpha1.EgressPolicy) int { return strings.Compare(a.Name, b.Name) })
	for i := range egress.Items {
		e := &egress.Items[i]
		if e.DeletionTimestamp.IsZero() && SelectorsOverlap(e.Spec.Selector, p.Spec.Selector) {
			return outcome.Conflict("EgressPolicy %s (%s) already sets the outbound configuration of workloads this policy's egressScope applies to (%s); "+
				"the mesh applies one such configuration per workload and would ignore one of the two — remove spec.egressScope (the EgressPolicy's "+
				"allow-list already limits what these workloads reach), or make spec.selector disjoint from %s's (re-checked when %s changes or goes away)",
				e.Name, describe(e.Spec.Selector), describe(p.Spec.Selector), e.Name, e.Name)
		}
	}
	return nil
}
