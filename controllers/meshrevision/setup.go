package meshrevision

import (
	"context"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh/istio"
)

// SetupWithManager registers the controller. Besides MeshRevisions it
// watches what changes a revision's health or usage: istiod Deployments,
// namespace labels, tag webhooks, pods (metadata only) and MeshInstalls.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
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
