package canary

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/compose"
	"github.com/meshplane/meshplane/internal/delivery"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outputs"
	"github.com/meshplane/meshplane/internal/overlap"
)

// +kubebuilder:rbac:groups=meshplane.io,resources=resiliencepolicies,verbs=get;list;watch

// routeIn translates the Canary's route for rt in one mesh (the same
// translation as a TrafficSplit's) and composes into it the retries,
// request timeout and faults of the ResiliencePolicy that targets the
// routed Service: one route per Service and mesh, owned by both
// (internal/compose).
func (r *Reconciler) routeIn(ctx context.Context, cn *meshv1alpha1.Canary, w *world, rt delivery.Route,
	provider meshv1alpha1.Provider, t mesh.TrafficTranslator, scope mesh.Scope,
) ([]client.Object, error) {
	objs, err := t.TranslateTrafficSplit(trafficSplit(cn, w.n, provider, rt))
	if err != nil {
		return nil, err
	}
	return compose.Resilience(ctx, r.Client, r.Registry, compose.Route{Owner: cn, Service: w.n.service}, scope, w.bg, objs)
}

// canariesForPolicy maps a ResiliencePolicy to the Canaries of its
// namespace that route its target.
func (r *Reconciler) canariesForPolicy(ctx context.Context, o client.Object) []reconcile.Request {
	svc := o.(*meshv1alpha1.ResiliencePolicy).Spec.TargetRef.Name
	return outputs.Requests(ctx, r.Client, &meshv1alpha1.CanaryList{}, o.GetNamespace(), func(cn client.Object) bool {
		return overlap.CanaryService(cn.(*meshv1alpha1.Canary)) == svc
	})
}
