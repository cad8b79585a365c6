// Package meshinstall reconciles MeshInstall: it installs a mesh's charts
// with Helm, keeps its control plane healthy, runs in-place and
// revision-based upgrades with batched data-plane migration, and applies
// the deletion policy. See docs/meshinstall.md for the life cycle.
//
// It names no mesh: what differs between meshes (control-plane namespace
// labels, revisions and their tags, identity material, how the data plane
// upgrades) comes from the optional interfaces of internal/mesh
// (install.go) that a provider implements.
package meshinstall

import (
	"context"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/controlplane"
	"github.com/meshplane/meshplane/internal/helm"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/internal/status"
)

// RBAC of the controller itself; what the meshes' charts contain is
// granted in internal/mesh (install.go) and each mesh's package.
//
// +kubebuilder:rbac:groups=meshplane.io,resources=meshinstalls;meshrevisions,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=meshplane.io,resources=meshinstalls/status;meshrevisions/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=meshplane.io,resources=breakglasses;meshadoptions,verbs=get;list;watch
// +kubebuilder:rbac:groups=meshplane.io,resources=meshinstalls/finalizers;meshrevisions/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch;create;patch;update
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Finalizer holds a MeshInstall until its deletion policy has been applied.
const Finalizer = "meshplane.io/meshinstall"

// Kind is the owner kind in labels.
const Kind = "MeshInstall"

// Reconciler reconciles MeshInstall objects.
type Reconciler struct {
	controlplane.Deps
	// infos spares a no-op reconcile the Helm storage reads of its
	// releases (meshinstall_controller_releases.go).
	infos releaseInfos
}

// Setup registers the controller with mgr, installing with h (shared with
// the MeshRevision controller: one chart cache and per-release locks). It
// watches MeshInstalls, the MeshRevisions they own, the control planes'
// workloads (health and migration batches) and revision-tag webhooks,
// the default tag's validator included (drift).
func Setup(mgr *manager.Manager, h helm.Releaser) error {
	r := &Reconciler{Deps: controlplane.NewDeps(mgr, h, "meshinstall")}
	all := handler.EnqueueRequestsFromMapFunc(r.allInstalls)
	workloads := handler.EnqueueRequestsFromMapFunc(r.installsOfWorkload)
	return ctrl.NewControllerManagedBy(mgr).
		For(&meshv1alpha1.MeshInstall{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, deletionPredicate()))).
		Watches(&meshv1alpha1.MeshRevision{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			rv := o.(*meshv1alpha1.MeshRevision)
			return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: rv.Spec.MeshInstallRef.Name}}}
		})).
		Watches(&appsv1.Deployment{}, workloads, builder.WithPredicates(statusChanged())).
		Watches(&appsv1.DaemonSet{}, workloads, builder.WithPredicates(statusChanged())).
		Watches(&appsv1.StatefulSet{}, workloads, builder.WithPredicates(statusChanged())).
		Watches(&admissionregistrationv1.MutatingWebhookConfiguration{}, all).
		Watches(&admissionregistrationv1.ValidatingWebhookConfiguration{}, all).
		Watches(&corev1.Namespace{}, all, builder.WithPredicates(predicate.LabelChangedPredicate{})).
		// A BreakGlass holds its MeshInstall while active and lets it go
		// when restored or deleted.
		Watches(&meshv1alpha1.BreakGlass{}, all).
		// An upgrade waits for an adoption wave enrolling into the mesh.
		Watches(&meshv1alpha1.MeshAdoption{}, all).
		WithOptions(mgr.ControllerOptions("meshinstall")).
		Named("meshinstall").
		Complete(r)
}

// Reconcile moves one MeshInstall towards its spec.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	mi := &meshv1alpha1.MeshInstall{}
	patcher, err := status.Begin(ctx, r.Client, r.Client, req.NamespacedName, mi)
	if patcher == nil {
		return ctrl.Result{}, err
	}
	out, err := r.reconcile(ctx, patcher, mi)
	sum := setStatus(mi, out, err)
	log.FromContext(ctx).V(1).Info("reconciled", "provider", mi.Spec.Provider, "phase", out.phase, "error", err)
	transient := meshv1alpha1.ProgressingReason
	if out.phase == phaseDelete {
		transient = meshv1alpha1.DeletingReason
	}
	return status.Finish(ctx, patcher, mi, sum, err, transient)
}

// reconcile picks the branch: deletion, suspension, a BreakGlass hold, or
// the install phases.
func (r *Reconciler) reconcile(ctx context.Context, patcher *status.Patcher, mi *meshv1alpha1.MeshInstall) (result, error) {
	if !mi.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, mi)
	}
	if mi.Spec.Suspend {
		log.FromContext(ctx).V(1).Info("suspended; nothing changes")
		return result{phase: phaseSuspended}, nil
	}
	if controllerutil.AddFinalizer(mi, Finalizer) {
		// Persist the finalizer before anything is installed.
		if err := patcher.Patch(ctx, mi); err != nil {
			return result{}, err
		}
	}
	bg, err := incident.ForMeshInstall(ctx, r.Client, mi)
	if err != nil {
		return result{}, err
	}
	if incident.DetachesInjection(bg) {
		// Helm drift repair, upgrades and tag moves would re-attach the
		// injector webhooks the BreakGlass neutralised.
		return result{phase: phaseHeld, heldBy: bg}, nil
	}
	return r.install(ctx, patcher, mi)
}

// allInstalls enqueues every MeshInstall: there are few per cluster.
func (r *Reconciler) allInstalls(ctx context.Context, _ client.Object) []reconcile.Request {
	var list meshv1alpha1.MeshInstallList
	if err := r.List(ctx, &list); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, mi := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: mi.Name}})
	}
	return out
}

// installsOfWorkload enqueues the MeshInstalls a Deployment, DaemonSet or
// StatefulSet event can concern, not every one on every workload change in
// the cluster: those whose control plane runs in its namespace or whose
// Helm release namespace it names (a chart's workload elsewhere), those
// with a waypoint there, those not reconciled yet, and those with an
// upgrade under way (its batches gate on workloads in any namespace).
func (r *Reconciler) installsOfWorkload(ctx context.Context, o client.Object) []reconcile.Request {
	var list meshv1alpha1.MeshInstallList
	if err := r.List(ctx, &list); err != nil {
		return nil
	}
	ns, releaseNS := o.GetNamespace(), o.GetAnnotations()["meta.helm.sh/release-namespace"]
	var out []reconcile.Request
	for i := range list.Items {
		if concernsWorkload(&list.Items[i], ns, releaseNS) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: list.Items[i].Name}})
		}
	}
	return out
}

// concernsWorkload reports whether a workload in namespace ns (of a Helm
// release in releaseNS, if any) can change what mi reports or waits for.
func concernsWorkload(mi *meshv1alpha1.MeshInstall, ns, releaseNS string) bool {
	cp := mi.Status.Namespace
	if cp == "" || cp == ns || cp == releaseNS {
		return true
	}
	if u := mi.Status.Upgrade; u != nil && u.Phase != meshv1alpha1.UpgradeCompleted {
		return true
	}
	for _, w := range mi.Status.Waypoints {
		if w.Namespace == ns {
			return true
		}
	}
	for _, rel := range mi.Status.Releases {
		if rel.Namespace == ns || (releaseNS != "" && rel.Namespace == releaseNS) {
			return true
		}
	}
	return false
}

func deletionPredicate() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return !e.ObjectNew.GetDeletionTimestamp().IsZero()
	}}
}

// statusChanged passes workload events that can change readiness.
func statusChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration() || e.ObjectOld.GetResourceVersion() != e.ObjectNew.GetResourceVersion()
	}}
}

// applier writes outputs read through reader: the cache for watched kinds,
// the API reader for Secrets in the operator namespace (not cached).
func (r *Reconciler) applier(reader client.Reader) *apply.Applier {
	return &apply.Applier{Client: r.Client, Reader: reader, Scheme: r.Scheme()}
}

// event records a Normal Event on mi.
func (r *Reconciler) event(mi *meshv1alpha1.MeshInstall, reason, action, note string, args ...any) {
	r.Events.Eventf(mi, nil, corev1.EventTypeNormal, reason, action, note, args...)
}
