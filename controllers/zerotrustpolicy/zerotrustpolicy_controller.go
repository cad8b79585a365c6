// Package zerotrustpolicy reconciles ZeroTrustPolicies: it resolves the
// mesh, translates the policy with the mesh's provider and server-side
// applies the outputs (internal/apply).
//
// Outputs carry an owner reference, so the garbage collector deletes them
// with the policy. The one exception is a field of a Namespace, which
// Meshplane does not own (a mesh's namespace-wide default policy
// annotation): while the inventory holds it, the policy carries a
// finalizer, and deletion releases the field.
//
// A mesh whose policy is namespace-wide (mesh.ExclusivePolicy) lets at
// most one ZeroTrustPolicy per namespace use it; the provider picks the
// one, the others are Stalled with reason Conflict naming it, and are
// re-checked when it goes away.
//
// Two policies that may select the same workloads with a different mTLS
// mode or default action are a Conflict on every mesh (internal/overlap
// decides which wins and documents "same workloads").
package zerotrustpolicy

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/meshplane/meshplane/internal/discovery"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outputs"
	"github.com/meshplane/meshplane/internal/overlap"
	"github.com/meshplane/meshplane/internal/status"
)

// +kubebuilder:rbac:groups=meshplane.io,resources=zerotrustpolicies,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=meshplane.io,resources=zerotrustpolicies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=meshplane.io,resources=zerotrustpolicies/finalizers,verbs=update
// +kubebuilder:rbac:groups=meshplane.io,resources=meshinstalls,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// The output kinds' rules are beside the providers (internal/mesh/<mesh>).

// Kind is the owner kind in labels and inventories.
const Kind = "ZeroTrustPolicy"

// controllerName is the controller's name: its --concurrent key and Event
// reporter.
const controllerName = "zerotrustpolicy"

// Finalizer is set while the inventory holds fields of a shared object.
const Finalizer = "meshplane.io/shared-fields"

// Reconciler reconciles ZeroTrustPolicies.
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
		Name: controllerName, Object: &meshv1alpha1.ZeroTrustPolicy{}, List: &meshv1alpha1.ZeroTrustPolicyList{},
		Predicate: predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, deleting), Outputs: mgr.Registry.PolicyOutputKinds(),
	}).
		// A policy's creation, change or deletion may decide a Conflict
		// (internal/overlap) or free a namespace-wide mesh policy for
		// another policy: the policies it can block or free are enqueued.
		Watches(&meshv1alpha1.ZeroTrustPolicy{}, overlap.EnqueuePolicies(r.Client), builder.WithPredicates(overlap.Changes)).
		Complete(r)
}

// Reconcile brings one ZeroTrustPolicy's outputs to its spec.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &meshv1alpha1.ZeroTrustPolicy{}
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
func (r *Reconciler) finalize(ctx context.Context, p *meshv1alpha1.ZeroTrustPolicy) error {
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
	// heldBy is the BreakGlass that relaxed the policy's outputs, if any:
	// nothing is applied while it holds.
	heldBy *meshv1alpha1.BreakGlass
	// enforcement says what the policy is and is not enforced as in this
	// install, empty when as written.
	enforcement string
	// proxies is what running pods' proxies started with.
	proxies proxies
	// auditHeldBy is the MeshAdoption holding the policy in Audit.
	auditHeldBy string
}

// reconcile runs the phases: the BreakGlass hold, the mesh, the
// namespace-wide policy rule, translation, the finalizer guard and the
// apply.
func (r *Reconciler) reconcile(ctx context.Context, p *meshv1alpha1.ZeroTrustPolicy, patcher *status.Patcher) (result, error) {
	var out result
	bg, err := incident.ForNamespace(ctx, r.Client, p.Namespace)
	if err != nil {
		return out, err
	}
	if incident.RelaxesPolicies(bg) && incident.Covers(bg, p.Status.Provider) {
		// The BreakGlass relaxed this policy's outputs (and recorded them
		// for its restore); re-applying them would undo it. The namespace
		// watch brings the policy back when the BreakGlass lets go.
		out.heldBy = bg
		return out, nil
	}
	// A MeshAdoption wave in audit holds the namespace's policies in Audit
	// (mesh.AuditHoldAnnotation); the spec is never written.
	var ns corev1.Namespace
	if err := r.Client.Get(ctx, client.ObjectKey{Name: p.Namespace}, &ns); err != nil {
		return out, fmt.Errorf("reading namespace %s: %w", p.Namespace, err)
	}
	found, err := r.Resolver.Resolve(ctx, p.Namespace, p.Spec.Provider)
	if err != nil {
		if found, err = r.heldIn(ctx, p, &ns, err); err != nil {
			return out, err
		}
	}
	out.provider = found.Provider
	eff, heldBy := mesh.Effective(p, ns.Annotations)
	out.auditHeldBy = heldBy
	// What the mesh can enforce depends on how it was installed and on the
	// namespace's data plane, not on the provider alone.
	scope, err := r.Decide(ctx, p.Namespace, found, mesh.ZeroTrustPolicyRequirements(&eff.Spec)...)
	if err != nil {
		return out, err
	}
	out.enforcement = r.Registry.Enforcement(scope, &eff.Spec)
	objs, err := r.translate(ctx, eff, found.Provider)
	if err != nil {
		return out, err
	}
	// While a MeshAdoption moves the namespace to another mesh, the other
	// mesh's outputs are written beside these (internal/outputs).
	objs, err = r.Alongside(ctx, p.Namespace, p.Spec.Provider, found, objs, func(other discovery.Result) ([]client.Object, error) {
		if _, err := r.Decide(ctx, p.Namespace, other, mesh.ZeroTrustPolicyRequirements(&eff.Spec)...); err != nil {
			return nil, err
		}
		return r.translate(ctx, eff, other.Provider)
	})
	if err != nil {
		return out, err
	}
	// A refusal writes nothing: every output but the first is dry-run
	// first, and the first is written before anything else.
	plan, err := r.PrepareToCommit(ctx, apply.Owner{Object: p, Kind: Kind, SharedFields: p.Status.SharedFields}, objs, p.Status.Inventory)
	if err != nil {
		out.applied = plan.Failed()
		return out, err
	}
	if err := r.recordShared(ctx, p, plan, patcher); err != nil {
		return out, err
	}
	out.applied, err = plan.Commit(ctx)
	if err != nil {
		return out, err
	}
	// The finalizer guards fields of shared objects only.
	if hasShared(out.applied.Inventory) {
		controllerutil.AddFinalizer(p, Finalizer)
	} else {
		controllerutil.RemoveFinalizer(p, Finalizer)
	}
	if out.proxies, err = r.checkProxies(ctx, p.Namespace, found.Provider, objs); err != nil {
		return out, err
	}
	return out, r.rollout(ctx, p, &out.proxies)
}

// recordShared persists, before a field of a shared object is written, the
// finalizer that releases it and the field's previous value (with the
// inventory): a deletion or a crash in between then still restores it.
func (r *Reconciler) recordShared(ctx context.Context, p *meshv1alpha1.ZeroTrustPolicy, plan *apply.Plan, patcher *status.Patcher) error {
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

// translate checks a namespace-wide mesh policy's rule, then translates p
// with the provider's PolicyTranslator.
func (r *Reconciler) translate(ctx context.Context, p *meshv1alpha1.ZeroTrustPolicy, provider meshv1alpha1.Provider) ([]client.Object, error) {
	translator, err := r.Registry.PolicyTranslator(provider)
	if err != nil {
		return nil, err
	}
	// A policy covering the same workloads with another mode wins.
	if err := overlap.Policy(ctx, r.Client, p); err != nil {
		return nil, err
	}
	if ex, ok := r.Registry.ExclusivePolicy(provider); ok {
		var list meshv1alpha1.ZeroTrustPolicyList
		if err := r.Client.List(ctx, &list, client.InNamespace(p.Namespace)); err != nil {
			return nil, fmt.Errorf("listing the namespace's ZeroTrustPolicies: %w", err)
		}
		if err := ex.CheckExclusive(p, list.Items); err != nil {
			return nil, err
		}
	}
	facts, err := mesh.ReadNamespaceFacts(ctx, r.Client, translator, p.Namespace)
	if err != nil {
		return nil, err
	}
	return mesh.TranslateZeroTrustPolicy(translator, p, facts)
}

// isShared reports whether an output kind is a shared object whose fields
// the policy sets (a Namespace's annotation): not owned, released by the
// finalizer.
func isShared(kind string) bool { return kind == "Namespace" }

func isSharedRef(ref meshv1alpha1.ObjectReference) bool {
	return ref.APIVersion == "v1" && isShared(ref.Kind)
}

func hasShared(inv []meshv1alpha1.ObjectReference) bool {
	return slices.ContainsFunc(inv, isSharedRef)
}
