package linkerd

import (
	"slices"
	"strings"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
)

// CheckExclusive enforces one Linkerd policy per namespace
// (mesh.ExclusivePolicy): Linkerd's policy is namespace-wide (the
// namespace's default-inbound-policy annotation and Servers for every
// pod), so two ZeroTrustPolicies would own the same fields. The policy
// already holding the namespace (its inventory lists the Namespace) keeps
// it; else the oldest (creation time, then name) of the namespace's
// policies that do not name another provider wins. Any other policy gets a
// terminal Conflict naming the winner; it is re-checked when the winner
// goes away.
func (p *Provider) CheckExclusive(pol *meshv1alpha1.ZeroTrustPolicy, namespace []meshv1alpha1.ZeroTrustPolicy) error {
	var candidates []meshv1alpha1.ZeroTrustPolicy
	for _, o := range namespace {
		if o.DeletionTimestamp.IsZero() && (o.Spec.Provider == "" || o.Spec.Provider == p.Name()) {
			candidates = append(candidates, o)
		}
	}
	slices.SortFunc(candidates, func(a, b meshv1alpha1.ZeroTrustPolicy) int {
		// The policy already holding the namespace keeps it.
		if ha, hb := holdsNamespace(a.Status.Inventory), holdsNamespace(b.Status.Inventory); ha != hb {
			if ha {
				return -1
			}
			return 1
		}
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	if len(candidates) > 0 && candidates[0].Name != pol.Name {
		return outcome.Stalled(meshv1alpha1.ConflictReason,
			"namespace %s already has Linkerd policy from ZeroTrustPolicy %s (Linkerd policies are namespace-wide, one per namespace); merge the rules into %s or delete one of them",
			pol.Namespace, candidates[0].Name, candidates[0].Name)
	}
	return nil
}

// holdsNamespace reports whether an inventory lists the Namespace whose
// default-inbound-policy annotation a Linkerd policy sets.
func holdsNamespace(inv []meshv1alpha1.ObjectReference) bool {
	return slices.ContainsFunc(inv, func(ref meshv1alpha1.ObjectReference) bool {
		return ref.APIVersion == "v1" && ref.Kind == "Namespace"
	})
}
