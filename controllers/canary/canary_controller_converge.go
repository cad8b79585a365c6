package canary

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/delivery"
)

// targetGone handles a target deleted while it is the canary: the route
// is applied primary-only (the other outputs are left as they are, so
// nothing is pruned) and the delivery is Failed. A Canary that is idle, or
// was never initialized, has nothing routed to the target.
func (r *Reconciler) targetGone(ctx context.Context, cn *meshv1alpha1.Canary, w *world, out *result) error {
	phase := cn.Status.Phase
	if !delivery.Analysing(phase) && phase != meshv1alpha1.CanaryPhasePromoting {
		return nil
	}
	routes, err := r.route(ctx, cn, w, delivery.Primary)
	if err != nil {
		return err
	}
	// The routes only (no prune: the other outputs stay as they are),
	// dry-run first like every write.
	if _, err := r.Applier.Apply(ctx, apply.Owner{Object: cn, Kind: Kind}, routes, nil); err != nil {
		return fmt.Errorf("routing everything to the primary: %w", err)
	}
	if err := r.readBack(ctx, w, routes); err != nil {
		return err
	}
	d := delivery.Decision{State: stateOf(cn), Reason: "RolledBack"}
	d.State.Phase = meshv1alpha1.CanaryPhaseFailed
	d.State.PhaseSince = r.now()
	d.State.LastAnalysis = time.Time{}
	d.State.Message = "rolled back: the target Deployment " + w.n.target + " was deleted during the delivery; the primary serves all traffic"
	d.Note = d.State.Message
	d.Notify = []meshv1alpha1.WebhookType{meshv1alpha1.WebhookPostRollout}
	out.decision = &d
	out.weight, out.hasWeight = 0, true
	return nil
}

// converge brings the cluster to the decision, in the guaranteed order:
// every output dry-run (a refusal changes nothing, not even the canary's
// replicas), canary up, route, primary, read back, canary down.
func (r *Reconciler) converge(ctx context.Context, cn *meshv1alpha1.Canary, w *world, d *delivery.Decision, out *result) error {
	objs, routes, err := r.outputs(ctx, cn, w, d)
	if err != nil {
		return err
	}
	plan, err := r.Prepare(ctx, apply.Owner{Object: cn, Kind: Kind}, objs, cn.Status.Inventory)
	if err != nil {
		out.applied = plan.Failed()
		return err
	}
	if d.Scale == delivery.ScaleUp {
		if err := r.scale(ctx, w.target, replicasOf(w), out); err != nil {
			return err
		}
	}
	out.applied, err = plan.Commit(ctx)
	if err != nil {
		return err
	}
	routed := d.State.Phase != meshv1alpha1.CanaryPhaseInitializing
	if routed {
		out.weight, out.hasWeight = d.Route.Weight, true
	}
	if d.Scale == delivery.ScaleDown && routed {
		// Read the route back from the API server: the canary is scaled
		// down only once nothing routes to it.
		if err := r.readBack(ctx, w, routes); err != nil {
			return err
		}
		if err := r.scale(ctx, w.target, 0, out); err != nil {
			return err
		}
	}
	return nil
}

// outputs lists the objects to apply, route before primary: on promotion
// the route sends everything to the canary before the primary's template
// changes.
func (r *Reconciler) outputs(ctx context.Context, cn *meshv1alpha1.Canary, w *world, d *delivery.Decision) (objs, routes []client.Object, err error) {
	objs = []client.Object{
		service(cn, w.n.service, w.primarySel),
		service(cn, w.n.primarySvc, w.primarySel),
		service(cn, w.n.canarySvc, w.targetSel),
	}
	if d.State.Phase != meshv1alpha1.CanaryPhaseInitializing {
		routes, err = r.route(ctx, cn, w, d.Route)
		if err != nil {
			return nil, nil, err
		}
		objs = append(objs, routes...)
	}
	var tmpl corev1.PodTemplateSpec
	var hash string
	switch {
	case w.primary == nil || d.PromotePrimary:
		tmpl = primaryTemplate(&w.target.Spec.Template, w.primarySel)
		hash = TemplateHash(&w.target.Spec.Template)
	default:
		tmpl = *w.primary.Spec.Template.DeepCopy()
		hash = w.primary.Annotations[TemplateHashAnnotation]
	}
	return append(objs, primaryDeployment(cn, w.n, tmpl, hash, replicasOf(w), w.primarySel, w.target)), routes, nil
}

// readBack reads the route objects back, uncached, with the mesh's
// RouteReader, and fails unless none sends the canary a request or a
// mirror.
func (r *Reconciler) readBack(ctx context.Context, w *world, routes []client.Object) error {
	for _, o := range routes {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(o.GetObjectKind().GroupVersionKind())
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(o), u); err != nil {
			return fmt.Errorf("reading back %s %s: %w", u.GetKind(), o.GetName(), err)
		}
		weight, mirrored, err := r.canaryShare(w, u)
		if err != nil {
			return err
		}
		if weight != 0 || mirrored {
			return fmt.Errorf("%s %s read back still routes to the canary (weight %d, mirrored %v); retrying before scaling it down", u.GetKind(), u.GetName(), weight, mirrored)
		}
	}
	return nil
}

// scale sets the target's replicas when they differ.
func (r *Reconciler) scale(ctx context.Context, d *appsv1.Deployment, replicas int32, out *result) error {
	if d.Spec.Replicas != nil && *d.Spec.Replicas == replicas {
		return nil
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Replicas = &replicas
	if err := r.Client.Patch(ctx, d, patch); err != nil {
		return fmt.Errorf("scaling Deployment %s to %d: %w", d.Name, replicas, err)
	}
	out.scaled = append(out.scaled, fmt.Sprintf("Deployment %s scaled to %d", d.Name, replicas))
	return nil
}
