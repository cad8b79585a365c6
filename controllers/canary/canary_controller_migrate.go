package canary

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/compose"
	"github.com/meshplane/meshplane/internal/delivery"
	"github.com/meshplane/meshplane/internal/discovery"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outputs"
)

// While a MeshAdoption moves the namespace between meshes (the migration
// annotations, internal/outputs Migrating), the Canary writes each route
// for both meshes in its one apply (dry run first, one inventory): the
// mesh the namespace's labels select and the other one of the move. Pods
// not yet restarted keep the old proxy and find the old mesh's route; the
// restarted ones find the new mesh's. Every route of the strategy is
// checked against both meshes before anything is written, the canary is
// scaled down only once neither mesh's route sends it a request, and the
// route of the mesh that is left is pruned by the first apply after the
// annotations are removed (a passed gate) or restored (a failed one).

// alongside is the other mesh of a move in progress: its routes are
// written beside those of the world's mesh.
type alongside struct {
	found      discovery.Result
	translator mesh.TrafficTranslator
	scope      mesh.Scope
	// why says what asked for the other mesh's routes, for its refusals.
	why string
}

// readAlongside returns the other mesh of a move in progress in the
// Canary's namespace, nil when there is none.
func (r *Reconciler) readAlongside(ctx context.Context, cn *meshv1alpha1.Canary, w *world, found discovery.Result) (*alongside, error) {
	other, why, ok, err := r.Migrating(ctx, cn.Namespace, cn.Spec.Provider, found)
	if err != nil || !ok {
		return nil, err
	}
	t, err := r.Registry.TrafficTranslator(other.Provider)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", why, err)
	}
	facts, err := mesh.ReadNamespaceFacts(ctx, r.Client, t, cn.Namespace)
	if err != nil {
		return nil, err
	}
	a := &alongside{found: other, translator: mesh.TrafficTranslatorIn(t, facts), why: why}
	if a.scope, err = r.Scope(ctx, cn.Namespace, other); err != nil {
		return nil, err
	}
	a.scope.Namespace = facts
	if _, err := compose.Resilience(ctx, r.Client, r.Registry, compose.Route{Owner: cn, Service: w.n.service}, a.scope, w.bg, nil); err != nil {
		return nil, fmt.Errorf("%s: %w", why, err)
	}
	return a, nil
}

// checkStrategy refuses, before anything is written, a strategy whose
// routes the mesh found (as installed, in this namespace's data plane)
// cannot enforce or translate.
func (r *Reconciler) checkStrategy(ctx context.Context, cn *meshv1alpha1.Canary, w *world, found discovery.Result, t mesh.TrafficTranslator) error {
	for _, route := range delivery.Routes(w.plan) {
		ts := trafficSplit(cn, w.n, found.Provider, route)
		if _, err := r.Decide(ctx, cn.Namespace, found, mesh.TrafficSplitRequirements(&ts.Spec)...); err != nil {
			return fmt.Errorf("strategy %s: %w", strategy(cn), err)
		}
		if _, err := t.TranslateTrafficSplit(ts); err != nil {
			return fmt.Errorf("strategy %s on %s: %w", strategy(cn), found.Provider, err)
		}
	}
	return nil
}

// route translates the Canary's route for rt in the world's mesh, and,
// during a move, in the other mesh beside it.
func (r *Reconciler) route(ctx context.Context, cn *meshv1alpha1.Canary, w *world, rt delivery.Route) ([]client.Object, error) {
	objs, err := r.routeIn(ctx, cn, w, rt, w.provider, w.translator, w.scope)
	if err != nil || w.alt == nil {
		return objs, err
	}
	more, err := r.routeIn(ctx, cn, w, rt, w.alt.found.Provider, w.alt.translator, w.alt.scope)
	if err != nil {
		return nil, fmt.Errorf("%s: %w; the outputs stay as they were", w.alt.why, err)
	}
	return outputs.Beside(objs, more), nil
}

// canaryShare reads a route back with the world's mesh's reader, or,
// during a move, with the reader of the mesh that wrote it.
func (r *Reconciler) canaryShare(w *world, u *unstructured.Unstructured) (int64, bool, error) {
	weight, mirrored, err := w.routes.CanaryShare(u, w.n.canarySvc)
	if w.alt != nil && errors.Is(err, mesh.ErrNotARoute) {
		return r.Registry.CanaryShare(u, w.n.canarySvc)
	}
	return weight, mirrored, err
}
