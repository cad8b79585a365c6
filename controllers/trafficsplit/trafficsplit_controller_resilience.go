package trafficsplit

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/outputs"
	"github.com/meshplane/meshplane/internal/overlap"
)

// +kubebuilder:rbac:groups=meshplane.io,resources=resiliencepolicies,verbs=get;list;watch

// splitsForPolicy maps a ResiliencePolicy to the splits of its namespace
// that route its target: their route carries its retries, timeouts and
// faults.
func (r *Reconciler) splitsForPolicy(ctx context.Context, o client.Object) []reconcile.Request {
	svc := o.(*meshv1alpha1.ResiliencePolicy).Spec.TargetRef.Name
	return outputs.Requests(ctx, r.Client, &meshv1alpha1.TrafficSplitList{}, o.GetNamespace(), func(ts client.Object) bool {
		return ts.(*meshv1alpha1.TrafficSplit).Spec.Service.Name == svc
	})
}

// composeResilience sets on the split's route the retries, request timeout
// and faults of the ResiliencePolicy that targets the split's Service (one
// route per Service and mesh): a policy for another provider, one the mesh
// cannot fully enforce, or one that loses a Conflict is left out (it
// reports why). The same field set by both is a Conflict on the split when
// the split is the younger. While a BreakGlass relaxes policies, faults are
// left out.
func (r *Reconciler) composeResilience(ctx context.Context, ts *meshv1alpha1.TrafficSplit, scope mesh.Scope, bg *meshv1alpha1.BreakGlass, objs []client.Object) ([]client.Object, error) {
	provider := scope.Install.Provider
	composer, ok := r.Registry.RouteComposer(provider)
	if !ok || ts.Spec.Output == meshv1alpha1.OutputGatewayAPI {
		return objs, nil
	}
	t, err := r.Registry.ResilienceTranslator(provider)
	if err != nil {
		return objs, nil //nolint:nilerr // a mesh without resilience composes nothing
	}
	var list meshv1alpha1.ResiliencePolicyList
	if err := r.Client.List(ctx, &list, client.InNamespace(ts.Namespace)); err != nil {
		return nil, fmt.Errorf("listing the namespace's ResiliencePolicies: %w", err)
	}
	for i := range list.Items {
		rp := &list.Items[i]
		if rp.Spec.TargetRef.Name != ts.Spec.Service.Name || !rp.DeletionTimestamp.IsZero() || !mesh.HasRouteFields(&rp.Spec) ||
			(rp.Spec.Provider != "" && rp.Spec.Provider != provider) || mesh.DecideResilience(t, scope, &rp.Spec) != nil {
			continue
		}
		if overlap.Resilience(ctx, r.Client, rp) != nil {
			// Loses to another policy or to this split: it reports the
			// Conflict and is not composed.
			continue
		}
		if clash := mesh.ClashingRouteFields(&ts.Spec, &rp.Spec); len(clash) > 0 {
			return nil, outcome.Conflict("ResiliencePolicy %s already sets %v for Service %s; one route cannot carry two values — "+
				"remove the field from this TrafficSplit or from the policy (re-checked when it changes or goes away)", rp.Name, clash, ts.Spec.Service.Name)
		}
		if incident.RelaxesPolicies(bg) && incident.Covers(bg, provider) {
			rp = incident.RelaxResilience(rp)
		}
		return composer.ComposeRoute(objs, rp)
	}
	return objs, nil
}
