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
// wins, or the TrafficSplit or Canary that routes it, sets a field rp
// also sets and wins.
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
	route, err := RouteOwnerOf(ctx, c, rp.Namespace, svc)
	if err != nil || route == nil {
		return err
	}
	clash := mesh.ClashingRouteFields(RouteFieldsOf(route), &rp.Spec)
	if len(clash) > 0 && YoungerThan(rp, route) {
		return outcome.Conflict("%s %s routes Service %s and already sets %v; one route cannot carry two values — "+
			"remove the field from this policy or from the %s (this policy is re-checked when it changes or goes away)", kindOf(route), route.GetName(), svc, clash, kindOf(route))
	}
	return nil
}

// RouteOwnerOf returns the object whose route carries the route-level
// fields of a ResiliencePolicy for Service svc: the TrafficSplit that wins
// the route contest, else a Canary that routes svc; nil when none does.
func RouteOwnerOf(ctx context.Context, c client.Reader, ns, svc string) (client.Object, error) {
	ts, err := RouteOf(ctx, c, ns, svc)
	if err != nil {
		return nil, err
	}
	if ts != nil {
		return ts, nil
	}
	cn, err := CanaryOf(ctx, c, ns, svc)
	if err != nil || cn == nil {
		return nil, err
	}
	return cn, nil
}

// RouteFieldsOf returns the route-level fields a TrafficSplit or a Canary
// sets, as a TrafficSplit spec (a Canary's route is a TrafficSplit's
// translation with spec.service.retries and spec.service.timeout).
func RouteFieldsOf(route client.Object) *meshv1alpha1.TrafficSplitSpec {
	switch x := route.(type) {
	case *meshv1alpha1.TrafficSplit:
		return &x.Spec
	case *meshv1alpha1.Canary:
		return &meshv1alpha1.TrafficSplitSpec{Retries: x.Spec.Service.Retries, Timeout: x.Spec.Service.Timeout}
	}
	return &meshv1alpha1.TrafficSplitSpec{}
}

func kindOf(route client.Object) string {
	if _, ok := route.(*meshv1alpha1.Canary); ok {
		return kindCanary
	}
	return kindTrafficSplit
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

// YoungerThan reports whether rp loses against route (a TrafficSplit or
// a Canary) when both set the same field: the route in force and rp not,
// or rp created later (then by name).
func YoungerThan(rp *meshv1alpha1.ResiliencePolicy, route client.Object) bool {
	a := contenderOf(kindResiliencePolicy, rp, &rp.Status.CommonStatus, len(rp.Status.Inventory))
	var b contender
	switch x := route.(type) {
	case *meshv1alpha1.TrafficSplit:
		b = contenderOf(kindTrafficSplit, x, &x.Status.CommonStatus, len(x.Status.Inventory))
	case *meshv1alpha1.Canary:
		b = contenderOf(kindCanary, x, &x.Status.CommonStatus, len(x.Status.Inventory))
	default:
		return false
	}
	// The kinds differ, so the order is total; compare without the kind
	// name deciding before the object names.
	a.kind, b.kind = "", ""
	return before(b, a) < 0
}
