// Package meshrevision reconciles MeshRevision: one Istio control-plane
// revision (istiod-<rev>) beside others. It installs the revision's istiod,
// points the revision's own tags at it (istio.EnsureTag, shared with the
// MeshInstall controller), and reports what still uses it, so an old
// revision is removed only when no namespace label, tag or running pod
// does. Revisions are an Istio feature, so this package may import the
// Istio provider.
package meshrevision

import (
	"context"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/istio"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/status"
)

// Finalizer holds a MeshRevision until its istiod is uninstalled (or
// orphaned) and nothing uses it.
const Finalizer = "meshplane.io/meshrevision"

// Kind is the owner kind in labels.
const Kind = "MeshRevision"

// Reconciler reconciles MeshRevision objects.
type Reconciler struct {
	controlplane.Deps
}

// Setup registers the controller with mgr, installing with h (shared with
// the MeshInstall controller). Besides MeshRevisions it watches what
// changes a revision's health or usage: istiod Deployments, namespace
// labels, tag webhooks, pods (metadata only) and MeshInstalls.
func Setup(mgr *manager.Manager, h helm.Releaser) error {
	r := &Reconciler{Deps: controlplane.NewDeps(mgr, h, "meshrevision")}
	all := handler.EnqueueRequestsFromMapFunc(r.allRevisions)
	podMeta := &metav1.PartialObjectMetadata{}
	podMeta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Pod"))
	hasRev := predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetLabels()[istio.RevLabel] != "" })
	return ctrl.NewControllerManagedBy(mgr).
		For(&meshv1alpha1.MeshRevision{}).
		Watches(&meshv1alpha1.MeshInstall{}, all).
		Watches(&meshv1alpha1.BreakGlass{}, all).
		Watches(&appsv1.Deployment{}, all, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			return o.GetLabels()["app"] == "istiod"
		}))).
		Watches(&admissionregistrationv1.MutatingWebhookConfiguration{}, all).
		Watches(&corev1.Namespace{}, all, builder.WithPredicates(predicate.LabelChangedPredicate{})).
		WatchesMetadata(podMeta, all, builder.WithPredicates(hasRev, podLifecycle())).
		WithOptions(mgr.ControllerOptions("meshrevision")).
		Named("meshrevision").
		Complete(r)
}

func (r *Reconciler) allRevisions(ctx context.Context, _ client.Object) []reconcile.Request {
	var list meshv1alpha1.MeshRevisionList
	if err := r.List(ctx, &list); err != nil {
		return nil
	}
	out := make([]reconcile.Request, len(list.Items))
	for i, rv := range list.Items {
		out[i] = reconcile.Request{NamespacedName: client.ObjectKey{Name: rv.Name}}
	}
	return out
}

// podLifecycle passes pod creations, deletions and label changes only.
func podLifecycle() predicate.Predicate {
	return predicate.Or(predicate.LabelChangedPredicate{}, predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			return e.ObjectOld.GetDeletionTimestamp().IsZero() != e.ObjectNew.GetDeletionTimestamp().IsZero()
		},
	})
}

// Reconcile moves one MeshRevision towards its spec.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	rv := &meshv1alpha1.MeshRevision{}
	patcher, err := status.Begin(ctx, r.Client, r.Client, req.NamespacedName, rv)
	if patcher == nil {
		return ctrl.Result{}, err
	}
	out, err := r.reconcile(ctx, patcher, rv)
	sum := setStatus(rv, out, err)
	log.FromContext(ctx).V(1).Info("reconciled", "phase", rv.Status.Phase, "error", err)
	transient := meshv1alpha1.ProgressingReason
	if out.deleting {
		transient = meshv1alpha1.DeletingReason
	}
	return status.Finish(ctx, patcher, rv, sum, err, transient)
}

// reconcile finds the owner, then deletes or installs.
func (r *Reconciler) reconcile(ctx context.Context, patcher *status.Patcher, rv *meshv1alpha1.MeshRevision) (result, error) {
	mi, p, err := r.owner(ctx, rv)
	if !rv.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, rv, mi)
	}
	if err != nil {
		return result{}, err
	}
	if controllerutil.AddFinalizer(rv, Finalizer) {
		// Persist the finalizer before istiod is installed.
		if err := patcher.Patch(ctx, rv); err != nil {
			return result{}, err
		}
	}
	return r.install(ctx, rv, mi, p)
}

// owner returns the MeshInstall and its provider, which must have
// revisions.
func (r *Reconciler) owner(ctx context.Context, rv *meshv1alpha1.MeshRevision) (*meshv1alpha1.MeshInstall, mesh.Revisioner, error) {
	mi := &meshv1alpha1.MeshInstall{}
	if err := r.Get(ctx, client.ObjectKey{Name: rv.Spec.MeshInstallRef.Name}, mi); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil, outcome.Stalled(meshv1alpha1.ReferenceNotFoundReason,
				"spec.meshInstallRef names MeshInstall %s, which does not exist; create it or fix the reference", rv.Spec.MeshInstallRef.Name)
		}
		return nil, nil, err
	}
	if mi.Spec.Provider != meshv1alpha1.ProviderIstio {
		return mi, nil, outcome.Stalled(meshv1alpha1.InvalidSpecReason,
			"MeshInstall %s runs %s; revisions are an Istio feature", mi.Name, mi.Spec.Provider)
	}
	p, err := r.Registry.Revisioner(mi.Spec.Provider)
	return mi, p, err
}

func namespaceOf(mi *meshv1alpha1.MeshInstall) string {
	if mi.Status.Namespace != "" {
		return mi.Status.Namespace
	}
	if mi.Spec.Namespace != "" {
		return mi.Spec.Namespace
	}
	return istio.DefaultNamespace
}

// tagWriter writes rv's tag webhooks.
func (r *Reconciler) tagWriter(rv *meshv1alpha1.MeshRevision) mesh.TagWriter {
	return mesh.TagWriter{Reader: r.Client, Applier: &apply.Applier{Client: r.Client, Scheme: r.Scheme()}, Owner: apply.Owner{Object: rv, Kind: Kind}}
}

// event records a Normal Event on rv.
func (r *Reconciler) event(rv *meshv1alpha1.MeshRevision, reason, action, note string, args ...any) {
	r.Events.Eventf(rv, nil, corev1.EventTypeNormal, reason, action, note, args...)
}

// usagePoll re-reads usage while pods still run on a revision nothing
// else selects, so deletable flips soon after the last pod is gone.
func usagePoll(namespaces, tags, pods int) time.Duration {
	if namespaces == 0 && tags == 0 && pods > 0 {
		return 2 * time.Second
	}
	return 0
}
