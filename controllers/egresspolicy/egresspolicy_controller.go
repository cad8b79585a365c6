// Package egresspolicy reconciles EgressPolicies: it resolves the mesh,
// decides what the mesh can enforce in the namespace as installed,
// translates the policy with the mesh's EgressTranslator and server-side
// applies the outputs (internal/apply), all dry-run first.
//
// Namespaced outputs carry an owner reference, so the garbage collector
// deletes them with the policy. A cluster-scoped output (Cilium's
// CiliumEgressGatewayPolicy) cannot: while the inventory holds one, the
// policy carries a finalizer, and deletion prunes it.
//
// Two EgressPolicies that may select the same workloads are a Conflict
// (the older, or the one in force, wins): a workload has one egress
// allow-list, and the meshes would either pick one of two (Istio's
// Sidecar, Linkerd's EgressNetwork) or union them (Cilium), neither of
// which is what either policy says.
//
// A BreakGlass that relaxes policies holds the policy: its outputs were
// relaxed (allow-list lifted) and recorded by the BreakGlass, which
// restores them exactly; the policy applies nothing until it lets go.
//
// # Trade-offs
//
// Egress control by a mesh is enforced by the mesh's proxies (or, for
// Cilium, its datapath): a workload that bypasses its proxy is not held to
// it. Audit mode is a per-policy feature only where a mesh has one (Istio,
// Linkerd); Cilium refuses it rather than silently enforcing.
package egresspolicy

import (
	"context"
	"errors"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/discovery"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outputs"
	"github.com/meshplane/meshplane/internal/overlap"
	"github.com/meshplane/meshplane/internal/status"
)

// +kubebuilder:rbac:groups=meshplane.io,resources=egresspolicies,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=meshplane.io,resources=egresspolicies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=meshplane.io,resources=egresspolicies/finalizers,verbs=update
// +kubebuilder:rbac:groups=meshplane.io,resources=meshinstalls,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// The output kinds' rules are beside the providers (internal/mesh/<mesh>).

const (
	// Kind is the owner kind in labels and inventories.
	Kind = "EgressPolicy"
	// Finalizer is set while the inventory holds a cluster-scoped output.
	Finalizer = "meshplane.io/cluster-outputs"
	// controllerName is the controller's name: its --concurrent key and
	// Event reporter.
	controllerName = "egresspolicy"
)

// Reconciler reconciles EgressPolicies.
type Reconciler struct{ outputs.Deps }

// Setup registers the controller with mgr: the policies (spec changes and
// deletions starting), their outputs and, because a policy's creation,
// change or deletion may decide a Conflict, the other policies of the
// namespace.
func Setup(mgr *manager.Manager) error {
	r := &Reconciler{outputs.NewDeps(mgr.GetClient(), mgr, controllerName)}
	kind := outputs.Kind{Name: controllerName, Object: &meshv1alpha1.EgressPolicy{}, List: &meshv1alpha1.EgressPolicyList{},
		Predicate: predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, outputs.DeletionStarted),
		Outputs:   mgr.Registry.EgressOutputKinds()}
	return outputs.Controller(mgr, r.Client, kind).
		Watches(&meshv1alpha1.EgressPolicy{}, overlap.EnqueueContenders(r.Client, kind.List, func(a, b *meshv1alpha1.EgressPolicy) bool {
			return overlap.SelectorsOverlap(a.Spec.Selector, b.Spec.Selector)
		}, func(p *meshv1alpha1.EgressPolicy) *meshv1alpha1.CommonStatus { return &p.Status.CommonStatus }),
			builder.WithPredicates(overlap.Changes)).
		// An egress gateway's Service appearing or going re-checks the
		// policies routed through it.
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.policiesForService)).
		Complete(r)
}

// Reconcile brings one EgressPolicy's outputs to its spec; a deletion
// prunes what the garbage collector does not.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &meshv1alpha1.EgressPolicy{}
	patcher, err := status.Begin(ctx, r.Client, r.Client, req.NamespacedName, p)
	switch {
	case patcher == nil:
		return ctrl.Result{}, err
	case !p.DeletionTimestamp.IsZero():
		return ctrl.Result{}, errors.Join(r.finalize(ctx, p), patcher.Patch(ctx, p))
	}
	out, err := r.reconcile(ctx, p, patcher)
	r.Record(ctx, p, out.provider, out.applied, err)
	return status.Finish(ctx, patcher, p, setStatus(p, out, err), err, meshv1alpha1.ApplyFailedReason)
}

// finalize prunes the cluster-scoped outputs, then drops the finalizer;
// namespaced outputs are left to the garbage collector.
func (r *Reconciler) finalize(ctx context.Context, p *meshv1alpha1.EgressPolicy) error {
	return r.PruneOnDelete(ctx, apply.Owner{Object: p, Kind: Kind}, Finalizer, clusterScoped(p.Status.Inventory))
}

// result is what the phases found and did.
type result struct {
	provider meshv1alpha1.Provider
	applied  apply.Result
	// heldBy is the BreakGlass that relaxed the policy's outputs, if any.
	heldBy *meshv1alpha1.BreakGlass
}

// reconcile runs the phases: the BreakGlass hold, the mesh and what it can
// enforce here, the Conflict rule, translation, the finalizer guard and
// the apply.
func (r *Reconciler) reconcile(ctx context.Context, p *meshv1alpha1.EgressPolicy, patcher *status.Patcher) (result, error) {
	var out result
	var err error
	if out.heldBy, err = r.HeldBy(ctx, p.Namespace, p.Status.Provider); err != nil || out.heldBy != nil {
		return out, err
	}
	found, err := r.Resolver.Resolve(ctx, p.Namespace, p.Spec.Provider)
	if err != nil {
		return out, err
	}
	out.provider = found.Provider
	if err := overlap.Egress(ctx, r.Client, p); err != nil {
		return out, err
	}
	objs, err := r.outputsFor(ctx, p, found)
	if err != nil {
		return out, err
	}
	// While a MeshAdoption moves the namespace to another mesh, the other
	// mesh's outputs are written beside these, in the same apply
	// (internal/outputs): pods not yet restarted keep the old proxy and
	// its egress rules.
	if objs, err = r.Alongside(ctx, p.Namespace, p.Spec.Provider, found, objs, func(other discovery.Result) ([]client.Object, error) {
		return r.outputsFor(ctx, p, other)
	}); err != nil {
		return out, err
	}
	plan, err := r.PrepareToCommit(ctx, apply.Owner{Object: p, Kind: Kind}, objs, p.Status.Inventory)
	if err != nil {
		out.applied = plan.Failed()
		return out, err
	}
	// The finalizer is persisted before a cluster-scoped output is
	// written: a deletion or a crash in between still prunes it.
	if hasClusterScoped(objs) && plan.Writes() && controllerutil.AddFinalizer(p, Finalizer) {
		if err := patcher.Patch(ctx, p); err != nil {
			return out, err
		}
	}
	out.applied, err = plan.Commit(ctx)
	if err == nil && len(clusterScoped(out.applied.Inventory)) == 0 {
		controllerutil.RemoveFinalizer(p, Finalizer)
	}
	return out, err
}

// outputsFor decides and translates the policy for the mesh found.
func (r *Reconciler) outputsFor(ctx context.Context, p *meshv1alpha1.EgressPolicy, found discovery.Result) ([]client.Object, error) {
	translator, err := r.Registry.EgressTranslator(found.Provider)
	if err != nil {
		return nil, err
	}
	return r.TranslateIn(ctx, p.Namespace, found, translator, func(f mesh.NamespaceFacts) ([]client.Object, error) {
		if err := r.checkGatewayService(ctx, translator, p, f); err != nil {
			return nil, err
		}
		return translator.TranslateEgressPolicy(p, f)
	}, mesh.EgressPolicyRequirements(&p.Spec)...)
}

func hasClusterScoped(objs []client.Object) bool {
	for _, o := range objs {
		if o.GetNamespace() == "" {
			return true
		}
	}
	return false
}

func clusterScoped(inv []meshv1alpha1.ObjectReference) []meshv1alpha1.ObjectReference {
	var out []meshv1alpha1.ObjectReference
	for _, ref := range inv {
		if ref.Namespace == "" {
			out = append(out, ref)
		}
	}
	return out
}
