// Package zerotrustpolicy reconciles ZeroTrustPolicies: it resolves the
// mesh, translates the policy with the mesh's provider and server-side
// applies the outputs (internal/apply).
//
// Outputs carry an owner reference, so the garbage collector deletes them
// with the policy. The one exception is Linkerd's namespace annotation
// config.linkerd.io/default-inbound-policy, a field of a Namespace
// Meshplane does not own: while the inventory holds it, the policy carries
// a finalizer, and deletion releases the field.
//
// Linkerd policies are namespace-wide, so at most one ZeroTrustPolicy per
// namespace can use Linkerd: the one already holding the namespace, else
// the oldest (creation time, then name) of the namespace's policies that do
// not name another provider, wins; the others
// are Stalled with reason Conflict naming it, and are re-checked when it
// goes away.
package zerotrustpolicy

import (
	"context"
	"slices"
	"strings"
	"time"

	ciliumv2 "github.com/cilium/cilium/pkg/k8s/apis/cilium.io/v2"
	linkerdserver "github.com/linkerd/linkerd2/controller/gen/apis/server/v1beta3"
	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/discovery"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/internal/mesh"
	linkerdpolicy "github.com/meshplane/meshplane/internal/mesh/linkerd"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/status"
)

// +kubebuilder:rbac:groups=meshplane.io,resources=zerotrustpolicies,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=meshplane.io,resources=zerotrustpolicies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=meshplane.io,resources=zerotrustpolicies/finalizers,verbs=update
// +kubebuilder:rbac:groups=meshplane.io,resources=meshinstalls,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=security.istio.io,resources=peerauthentications;authorizationpolicies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=policy.linkerd.io,resources=servers;authorizationpolicies;meshtlsauthentications;networkauthentications;httproutes,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=cilium.io,resources=ciliumnetworkpolicies,verbs=get;list;watch;create;update;patch;delete

// Kind is the owner kind in labels and inventories.
const Kind = "ZeroTrustPolicy"

// Finalizer is set while the inventory holds fields of a shared object.
const Finalizer = "meshplane.io/shared-fields"

const conflictRetry = 2 * time.Minute

// Reconciler reconciles ZeroTrustPolicies.
type Reconciler struct {
	// Client reads through the cache and writes.
	Client client.Client
	// Registry resolves providers.
	Registry *mesh.Registry
	// Resolver finds the mesh of a namespace.
	Resolver *discovery.Resolver
	// Applier writes outputs.
	Applier *apply.Applier
	// Events records one Event per writing reconcile.
	Events events.EventRecorder
}

// Setup registers the controller with mgr.
func Setup(mgr *manager.Manager) error {
	c := mgr.GetClient()
	r := &Reconciler{
		Client:   c,
		Registry: mgr.Registry,
		Resolver: &discovery.Resolver{Reader: c, Registry: mgr.Registry},
		Applier:  &apply.Applier{Client: c, Scheme: mgr.GetScheme()},
		Events:   mgr.GetEventRecorder("meshplane-zerotrustpolicy"),
	}
	b := ctrl.NewControllerManagedBy(mgr).Named("zerotrustpolicy").
		// Reconciles are latency-bound (one apply and one status patch);
		// a few workers overlap the round trips.
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		For(&meshv1alpha1.ZeroTrustPolicy{}, builder.WithPredicates(predicate.Or[client.Object](predicate.GenerationChangedPredicate{},
			predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
				return e.ObjectOld.GetDeletionTimestamp().IsZero() && !e.ObjectNew.GetDeletionTimestamp().IsZero()
			}}))).
		// A policy's deletion or provider change may free Linkerd's
		// namespace for another policy.
		Watches(&meshv1alpha1.ZeroTrustPolicy{}, handler.EnqueueRequestsFromMapFunc(r.namespacePolicies),
			builder.WithPredicates(predicate.Funcs{
				CreateFunc: func(event.CreateEvent) bool { return false },
				UpdateFunc: func(event.UpdateEvent) bool { return false },
			})).
		// A namespace moving to another mesh, or drift of Linkerd's
		// namespace annotation.
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.policiesInNamespace),
			builder.WithPredicates(predicate.Or(predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{})))
	for _, o := range apply.Served(mgr.GetRESTMapper(), mgr.GetScheme(),
		&istiosecurity.PeerAuthentication{}, &istiosecurity.AuthorizationPolicy{},
		&linkerdserver.Server{}, &linkerdpolicy.AuthorizationPolicy{}, &linkerdpolicy.MeshTLSAuthentication{},
		&linkerdpolicy.NetworkAuthentication{}, &linkerdpolicy.HTTPRoute{}, &ciliumv2.CiliumNetworkPolicy{}) {
		b = b.Owns(o)
	}
	return b.Complete(r)
}

func (r *Reconciler) namespacePolicies(ctx context.Context, o client.Object) []reconcile.Request {
	return r.list(ctx, o.GetNamespace())
}

func (r *Reconciler) policiesInNamespace(ctx context.Context, o client.Object) []reconcile.Request {
	return r.list(ctx, o.GetName())
}

func (r *Reconciler) list(ctx context.Context, ns string) []reconcile.Request {
	var list meshv1alpha1.ZeroTrustPolicyList
	if err := r.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return out
}

// Reconcile brings one ZeroTrustPolicy's outputs to its spec.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	p := &meshv1alpha1.ZeroTrustPolicy{}
	if err := r.Client.Get(ctx, req.NamespacedName, p); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	patcher := status.NewPatcher(r.Client, p)
	defer func() {
		if perr := patcher.Patch(ctx, p); perr != nil && err == nil {
			err = perr
		}
	}()
	if !p.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, p)
	}
	if bg, err := incident.ForNamespace(ctx, r.Client, p.Namespace); err != nil {
		return ctrl.Result{}, err
	} else if incident.RelaxesPolicies(bg) && incident.Covers(bg, p.Status.Provider) {
		// The BreakGlass relaxed this policy's outputs (and recorded them
		// for its restore); re-applying them would undo it. The namespace
		// watch brings the policy back when the BreakGlass lets go.
		incident.MarkHeld(&p.Status.CommonStatus, p.Generation, bg, "outputs are relaxed (mTLS permissive, default-deny suspended) and not re-applied")
		return ctrl.Result{}, nil
	}
	// The finalizer must be in place before a shared field is written, or
	// a deletion in between would leave the field behind.
	guard := func() error {
		if controllerutil.AddFinalizer(p, Finalizer) {
			return patcher.Patch(ctx, p)
		}
		return nil
	}
	out, rerr := r.reconcile(ctx, p, guard)
	setStatus(p, out, rerr)
	if rerr == nil {
		// The finalizer guards fields of shared objects only.
		if hasShared(p.Status.Inventory) {
			controllerutil.AddFinalizer(p, Finalizer)
		} else {
			controllerutil.RemoveFinalizer(p, Finalizer)
		}
	}
	if out.applied.Wrote() {
		r.Events.Eventf(p, nil, corev1.EventTypeNormal, "Applied", "Apply", "%s", out.applied.Note())
	}
	log.FromContext(ctx).V(1).Info("reconciled", "provider", out.provider, "wrote", out.applied.Wrote(), "error", rerr)
	switch {
	case rerr == nil:
		return ctrl.Result{}, nil
	case isConflict(rerr):
		return ctrl.Result{RequeueAfter: conflictRetry}, nil
	case outcome.IsTerminal(rerr):
		return ctrl.Result{}, nil
	default:
		return ctrl.Result{}, rerr
	}
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
	pruned, err := r.Applier.Prune(ctx, apply.Owner{Object: p, Kind: Kind}, shared)
	if err != nil {
		return err
	}
	if pruned.Wrote() {
		r.Events.Eventf(p, nil, corev1.EventTypeNormal, "Pruned", "Delete", "%s", pruned)
	}
	controllerutil.RemoveFinalizer(p, Finalizer)
	return nil
}

type result struct {
	provider meshv1alpha1.Provider
	applied  apply.Result
}

func (r *Reconciler) reconcile(ctx context.Context, p *meshv1alpha1.ZeroTrustPolicy, guard func() error) (result, error) {
	var out result
	found, err := r.Resolver.Resolve(ctx, p.Namespace, p.Spec.Provider)
	if err != nil {
		return out, err
	}
	out.provider = found.Provider
	translator, err := r.Registry.PolicyTranslator(found.Provider)
	if err != nil {
		return out, err
	}
	if found.Provider == meshv1alpha1.ProviderLinkerd {
		if err := r.linkerdNamespaceOwner(ctx, p); err != nil {
			return out, err
		}
	}
	objs, err := translator.TranslateZeroTrustPolicy(p)
	if err != nil {
		return out, err
	}
	if slices.ContainsFunc(objs, func(o client.Object) bool { return o.GetObjectKind().GroupVersionKind().Kind == "Namespace" }) {
		if err := guard(); err != nil {
			return out, err
		}
	}
	out.applied, err = r.Applier.Apply(ctx, apply.Owner{Object: p, Kind: Kind}, objs, p.Status.Inventory)
	return out, err
}

// linkerdNamespaceOwner enforces one Linkerd policy per namespace: the
// policy already holding the namespace, else the oldest (then first by
// name) of those that do not name another provider.
func (r *Reconciler) linkerdNamespaceOwner(ctx context.Context, p *meshv1alpha1.ZeroTrustPolicy) error {
	var list meshv1alpha1.ZeroTrustPolicyList
	if err := r.Client.List(ctx, &list, client.InNamespace(p.Namespace)); err != nil {
		return err
	}
	var candidates []meshv1alpha1.ZeroTrustPolicy
	for _, o := range list.Items {
		if o.DeletionTimestamp.IsZero() && (o.Spec.Provider == "" || o.Spec.Provider == meshv1alpha1.ProviderLinkerd) {
			candidates = append(candidates, o)
		}
	}
	slices.SortFunc(candidates, func(a, b meshv1alpha1.ZeroTrustPolicy) int {
		// The policy already holding the namespace keeps it.
		if ha, hb := hasShared(a.Status.Inventory), hasShared(b.Status.Inventory); ha != hb {
			if ha {
				return -1
			}
			return 1
		}
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	if len(candidates) > 0 && candidates[0].Name != p.Name {
		return outcome.Stalled(meshv1alpha1.ConflictReason,
			"namespace %s already has Linkerd policy from ZeroTrustPolicy %s (Linkerd policies are namespace-wide, one per namespace); merge the rules into %s or delete one of them",
			p.Namespace, candidates[0].Name, candidates[0].Name)
	}
	return nil
}

func isSharedRef(ref meshv1alpha1.ObjectReference) bool {
	return ref.APIVersion == "v1" && ref.Kind == "Namespace"
}

func hasShared(inv []meshv1alpha1.ObjectReference) bool {
	return slices.ContainsFunc(inv, isSharedRef)
}
