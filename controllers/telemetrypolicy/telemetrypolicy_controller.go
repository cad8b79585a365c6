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

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
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
const Finalizer = outputs.SharedFieldsFinalizer

// Reconciler reconciles TelemetryPolicies.
type Reconciler struct {
	outputs.Deps
}

// Setup registers the controller with mgr.
func Setup(mgr *manager.Manager) error {
	r := &Reconciler{Deps: outputs.NewDeps(mgr.GetClient(), mgr, controllerName)}
	// A policy's deletion starting reconciles it (the finalizer releases
	// shared fields).
	return outputs.Controller(mgr, r.Client, outputs.Kind{
		Name: controllerName, Object: &meshv1alpha1.TelemetryPolicy{}, List: &meshv1alpha1.TelemetryPolicyList{},
		Predicate: predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, outputs.DeletionStarted),
		Outputs:   mgr.Registry.TelemetryOutputKinds(),
	}).
		// A policy's creation, change or deletion may decide a Conflict.
		Watches(&meshv1alpha1.TelemetryPolicy{}, overlap.EnqueueContenders(r.Client, &meshv1alpha1.TelemetryPolicyList{}, overlap.TelemetryConflict,
			func(p *meshv1alpha1.TelemetryPolicy) *meshv1alpha1.CommonStatus { return &p.Status.CommonStatus }),
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
		// Shared fields are released; owned outputs are left to the
		// garbage collector.
		err := r.ReleaseShared(ctx, p, Kind, record(p))
		return ctrl.Result{}, errors.Join(err, patcher.Patch(ctx, p))
	}
	out, err := r.reconcile(ctx, p, patcher)
	sum := setStatus(p, out, err)
	r.Record(ctx, p, out.provider, out.applied, err)
	return status.Finish(ctx, patcher, p, sum, err, meshv1alpha1.ApplyFailedReason)
}

// record points at p's inventory and shared fields.
func record(p *meshv1alpha1.TelemetryPolicy) outputs.SharedRecord {
	return outputs.SharedRecord{Inventory: &p.Status.Inventory, Fields: &p.Status.SharedFields}
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
	// The translator's refusal says what the mesh has instead; the
	// registry then decides for the mesh as installed.
	objs, err := r.TranslateIn(ctx, p.Namespace, found, translator, func(f mesh.NamespaceFacts) ([]client.Object, error) {
		return translator.TranslateTelemetryPolicy(p, f)
	}, mesh.TelemetryPolicyRequirements(&p.Spec)...)
	if err != nil {
		return out, err
	}
	if err := overlap.Telemetry(ctx, r.Client, p); err != nil {
		return out, err
	}
	// Every output is dry-run first: a refusal writes nothing.
	plan, err := r.PrepareToCommit(ctx, apply.Owner{Object: p, Kind: Kind, SharedFields: p.Status.SharedFields}, objs, p.Status.Inventory)
	if err != nil {
		out.applied = plan.Failed()
		return out, err
	}
	if err := outputs.RecordShared(ctx, p, plan, patcher, record(p)); err != nil {
		return out, err
	}
	if out.applied, err = plan.Commit(ctx); err != nil {
		return out, err
	}
	// The finalizer guards fields of shared objects only.
	outputs.GuardShared(p, out.applied.Inventory)
	out.effect = translator.TelemetryEffect(objs)
	return out, nil
}
