package trafficsplit

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/compose"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outputs"
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
// route per Service and mesh, owned by both): see internal/compose.
func (r *Reconciler) composeResilience(ctx context.Context, ts *meshv1alpha1.TrafficSplit, scope mesh.Scope, bg *meshv1alpha1.BreakGlass, objs []client.Object) ([]client.Object, error) {
	route := compose.Route{Owner: ts, Service: ts.Spec.Service.Name, GatewayAPI: ts.Spec.Output == meshv1alpha1.OutputGatewayAPI}
	return compose.Resilience(ctx, r.Client, r.Registry, route, scope, bg, objs)
}
