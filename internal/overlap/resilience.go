package overlap

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
)

// ResiliencePolicies: two policies of one namespace for one Service
// overlap whatever fields they set (Istio merges one DestinationRule per
// host, as it does one VirtualService), and the rule is the same on every
// mesh. A policy and a TrafficSplit or Canary for one Service compose
// (the route carries the policy's retries, timeouts and faults) unless
// both set the same field (ClashingRouteFields): then the younger is the
// Conflict, decided with the same order as routes (in force, older, name).

const kindResiliencePolicy = "ResiliencePolicy"

// Resilience returns nil when rp may apply, or a Conflict naming the
// ResiliencePolicy of the namespace that targets the same Service and
// wins, or the TrafficSplit that routes it, sets a field rp also sets and
// wins.
func Resilience(ctx context.Context, c client.Reader, rp *meshv1alpha1.ResiliencePolicy) error {
	self := contenderOf(kindResiliencePolicy, rp, &rp.Status.CommonStatus, len(rp.Status.Inventory))
	svc := rp.Spec.TargetRef.Name
	var list meshv1alpha1.ResiliencePolicyList
	if err := c.List(ctx, &list, client.InNamespace(rp.Namespace)); err != nil {
		return fmt.Errorf("listing the namespace's ResiliencePolicies: %w", err)
	}
	for i := range list.Items {
		o := &list.Items[i]
		if o.Name == rp.Name || o.Spec.TargetRef.Name != svc || !o.DeletionTimestamp.IsZero() {
			continue
		}
		if before(contenderOf(kindResiliencePolicy, o, &o.Status.CommonStatus, len(o.Status.Inventory)), self) < 0 {
			return outcome.Conflict("spec.targetRef.name %s: Service %s already has ResiliencePolicy %s; a mesh applies one policy per Service "+
				"(Istio merges one DestinationRule per host) — merge the two policies into one or delete %s (this policy is re-checked when it changes or goes away)",
				svc, svc, o.Name, o.Name)
		}
	}
	ts, err := RouteOf(ctx, c, rp.Namespace, svc)
	if err != nil || ts == nil {
		return err
	}
	clash := mesh.ClashingRouteFields(&ts.Spec, &rp.Spec)
	if len(clash) > 0 && YoungerThan(rp, ts) {
		return outcome.Conflict("TrafficSplit %s routes Service %s and already sets %v; one route cannot carry two values — "+
			"remove the field from this policy or from the TrafficSplit (this policy is re-checked when it changes or goes away)", ts.Name, svc, clash)
	}
	return nil
}

// RouteOf returns the TrafficSplit of namespace ns that routes Service
// svc and wins the route contest, nil when none does.
func RouteOf(ctx context.Context, c client.Reader, ns, svc string) (*meshv1alpha1.TrafficSplit, error) {
	var splits meshv1alpha1.TrafficSplitList
	if err := c.List(ctx, &splits, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing the namespace's TrafficSplits: %w", err)
	}
	var won *meshv1alpha1.TrafficSplit
	for i := range splits.Items {
		ts := &splits.Items[i]
		if ts.Spec.Service.Name != svc || !ts.DeletionTimestamp.IsZero() {
			continue
		}
		if won == nil || before(contenderOf(kindTrafficSplit, ts, &ts.Status.CommonStatus, len(ts.Status.Inventory)),
			contenderOf(kindTrafficSplit, won, &won.Status.CommonStatus, len(won.Status.Inventory))) < 0 {
			won = ts
		}
	}
	return won, nil
}

// CanaryOf returns a Canary of namespace ns that routes Service svc, nil
// when none does.
func CanaryOf(ctx context.Context, c client.Reader, ns, svc string) (*meshv1alpha1.Canary, error) {
	var canaries meshv1alpha1.CanaryList
	if err := c.List(ctx, &canaries, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing the namespace's Canaries: %w", err)
	}
	for i := range canaries.Items {
		if cn := &canaries.Items[i]; CanaryService(cn) == svc && cn.DeletionTimestamp.IsZero() {
			return cn, nil
		}
	}
	return nil, nil
}

// YoungerThan reports whether rp loses against route ts when both set the
// same field: ts in force and rp not, or rp created later (then by name).
func YoungerThan(rp *meshv1alpha1.ResiliencePolicy, ts *meshv1alpha1.TrafficSplit) bool {
	a := contenderOf(kindResiliencePolicy, rp, &rp.Status.CommonStatus, len(rp.Status.Inventory))
	b := contenderOf(kindTrafficSplit, ts, &ts.Status.CommonStatus, len(ts.Status.Inventory))
	// The kinds differ, so the order is total; compare without the kind
	// name deciding before the object names.
	a.kind, b.kind = "", ""
	return before(b, a) < 0
}
