// Package telemetrypolicy reconciles TelemetryPolicies: it resolves the
// mesh, decides whether the mesh as installed (and the namespace's data
// plane) can express the policy, translates it with the mesh's
// TelemetryTranslator and server-side applies the outputs
// (internal/apply).
//
// Owned outputs (Istio's Telemetry) carry an owner reference, so the
// garbage collector deletes them with the policy. A field of a Namespace
// (Linkerd's config.linkerd.io/access-log annotation) is shared: while the
// policy holds it, the policy carries a finalizer, and deletion restores
// the value the field held before (status.sharedFields).
//
// Two policies of a namespace at the same level (both namespace-wide, or
// both for workloads a selector may share) are a Conflict on every mesh
// (internal/overlap.Telemetry).
//
// Trade-offs:
//
//   - A BreakGlass does not touch TelemetryPolicies: telemetry never
//     blocks traffic, and keeping access logs and spans during an incident
//     is what an operator wants.
//   - Linkerd's proxies read the access-log setting when they are
//     injected; the Ready message says so, and the policy does not restart
//     workloads.
package telemetrypolicy

import (
	"context"
	"errors"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outputs"
	"github.com/meshplane/meshplane/internal/overlap"
	"github.com/meshplane/meshplane/internal/status"
)

// +kubebuilder:rbac:groups=meshplane.io,resources=telemetrypolicies,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=meshplane.io,resources=telemetrypolicies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=meshplane.io,resources=telemetrypolicies/finalizers,verbs=update
// +kubebuilder:rbac:groups=meshplane.io,resources=meshinstalls,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// The output kinds' rules are beside the providers (internal/mesh/<mesh>).

// Kind is the owner kind in labels and inventories.
const Kind = "TelemetryPolicy"

// controllerName is the controller's name: its --concurrent key and Event
// reporter.
const controllerName = "telemetrypolicy"

// Finalizer is set while the inventory holds fields of a shared object.
const Finalizer = "meshplane.io/shared-fields"

// Reconciler reconciles TelemetryPolicies.
type Reconciler struct {
	outputs.Deps
}

// Setup registers the controller with mgr.
func Setup(mgr *manager.Manager) error {
	r := &Reconciler{Deps: outputs.NewDeps(mgr.GetClient(), mgr, controllerName)}
	// A policy's deletion starting reconciles it (the finalizer releases
	// shared fields).
	deleting := predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetDeletionTimestamp().IsZero() && !e.ObjectNew.GetDeletionTimestamp().IsZero()
	}}
	return outputs.Controller(mgr, r.Client, outputs.Kind{
		Name: controllerName, Object: &meshv1alpha1.TelemetryPolicy{}, List: &meshv1alpha1.TelemetryPolicyList{},
		Predicate: predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, deleting), Outputs: mgr.Registry.TelemetryOutputKinds(),
	}).
		// A policy's creation, change or deletion may decide a Conflict.
		Watches(&meshv1alpha1.TelemetryPolicy{}, overlap.EnqueueNamespace(r.Client, &meshv1alpha1.TelemetryPolicyList{}),
			builder.WithPredicates(overlap.Changes)).
		Complete(r)
}

// Reconcile brings one TelemetryPolicy's outputs to its spec.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &meshv1alpha1.TelemetryPolicy{}
	patcher, err := status.Begin(ctx, r.Client, r.Client, req.NamespacedName, p)
	if patcher == nil {
		return ctrl.Result{}, err
	}
	if !p.DeletionTimestamp.IsZero() {
		err := r.finalize(ctx, p)
		return ctrl.Result{}, errors.Join(err, patcher.Patch(ctx, p))
	}
	out, err := r.reconcile(ctx, p, patcher)
	sum := setStatus(p, out, err)
	r.Record(ctx, p, out.provider, out.applied, err)
	return status.Finish(ctx, patcher, p, sum, err, meshv1alpha1.ApplyFailedReason)
}

// finalize releases shared fields, then the finalizer; owned outputs are
// left to the garbage collector.
func (r *Reconciler) finalize(ctx context.Context, p *meshv1alpha1.TelemetryPolicy) error {
	if !controllerutil.ContainsFinalizer(p, Finalizer) {
		return nil
	}
	var shared []meshv1alpha1.ObjectReference
	for _, ref := range p.Status.Inventory {
		if isSharedRef(ref) {
			shared = append(shared, ref)
		}
	}
	pruned, err := r.Applier.Prune(ctx, apply.Owner{Object: p, Kind: Kind, SharedFields: p.Status.SharedFields}, shared)
	if err != nil {
		return err
	}
	if pruned.Wrote() {
		r.Events.Eventf(p, nil, corev1.EventTypeNormal, "Pruned", "Delete", "%s", pruned)
	}
	controllerutil.RemoveFinalizer(p, Finalizer)
	return nil
}

// result is what the phases found and did.
type result struct {
	provider meshv1alpha1.Provider
	applied  apply.Result
	// effect says when the outputs take effect, if not at once.
	effect string
}

// reconcile runs the phases: the mesh, translation, what the mesh can
// express as installed, the overlap rule, the finalizer guard and the
// apply.
func (r *Reconciler) reconcile(ctx context.Context, p *meshv1alpha1.TelemetryPolicy, patcher *status.Patcher) (result, error) {
	var out result
	found, err := r.Resolver.Resolve(ctx, p.Namespace, p.Spec.Provider)
	if err != nil {
		return out, err
	}
	out.provider = found.Provider
	translator, err := r.Registry.TelemetryTranslator(found.Provider)
	if err != nil {
		return out, err
	}
	facts, err := mesh.ReadNamespaceFacts(ctx, r.Client, translator, p.Namespace)
	if err != nil {
		return out, err
	}
	// The translator's refusal says what the mesh has instead; the
	// registry then decides for the mesh as installed.
	objs, err := translator.TranslateTelemetryPolicy(p, facts)
	if err != nil {
		return out, err
	}
	if _, err := r.Decide(ctx, p.Namespace, found, mesh.TelemetryPolicyRequirements(&p.Spec)...); err != nil {
		return out, err
	}
	if err := overlap.Telemetry(ctx, r.Client, p); err != nil {
		return out, err
	}
	// Every output is dry-run first: a refusal writes nothing.
	plan, err := r.Prepare(ctx, apply.Owner{Object: p, Kind: Kind, SharedFields: p.Status.SharedFields}, objs, p.Status.Inventory)
	if err != nil {
		out.applied = plan.Failed()
		return out, err
	}
	if err := r.recordShared(ctx, p, plan, patcher); err != nil {
		return out, err
	}
	if out.applied, err = plan.Commit(ctx); err != nil {
		return out, err
	}
	// The finalizer guards fields of shared objects only.
	if slices.ContainsFunc(out.applied.Inventory, isSharedRef) {
		controllerutil.AddFinalizer(p, Finalizer)
	} else {
		controllerutil.RemoveFinalizer(p, Finalizer)
	}
	out.effect = translator.TelemetryEffect(objs)
	return out, nil
}

// recordShared persists, before a field of a shared object is written, the
// finalizer that releases it and the field's previous value (with the
// inventory): a deletion or a crash in between then still restores it.
func (r *Reconciler) recordShared(ctx context.Context, p *meshv1alpha1.TelemetryPolicy, plan *apply.Plan, patcher *status.Patcher) error {
	shared := plan.SharedFields()
	if !plan.Writes() || len(shared) == 0 {
		return nil
	}
	added := controllerutil.AddFinalizer(p, Finalizer)
	if !added && equality.Semantic.DeepEqual(shared, p.Status.SharedFields) {
		return nil
	}
	p.Status.SharedFields, p.Status.Inventory = shared, plan.Inventory()
	return patcher.Patch(ctx, p)
}

// isSharedRef reports whether an inventory entry is a shared object whose
// fields the policy sets (a Namespace's annotation).
func isSharedRef(ref meshv1alpha1.ObjectReference) bool {
	return ref.APIVersion == "v1" && ref.Kind == "Namespace"
}
