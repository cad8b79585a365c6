package meshinstall

import (
	"context"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// RBAC. Installing a mesh with Helm creates whatever its charts contain,
// and charts grant their control planes permissions the operator does not
// hold itself, hence escalate and bind on RBAC objects. CRDs can be created
// and updated, never deleted.
//
// +kubebuilder:rbac:groups=meshplane.io,resources=meshinstalls;meshrevisions,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=meshplane.io,resources=meshinstalls/status;meshrevisions/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=meshplane.io,resources=breakglasses,verbs=get;list;watch
// +kubebuilder:rbac:groups=meshplane.io,resources=meshinstalls/finalizers;meshrevisions/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch;create;patch;update
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets;configmaps;services;serviceaccounts,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=apps,resources=deployments;daemonsets;statefulsets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=batch,resources=jobs;cronjobs,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles;clusterrolebindings;roles;rolebindings,verbs=get;list;watch;create;update;patch;delete;escalate;bind
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations;validatingwebhookconfigurations,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=apiregistration.k8s.io,resources=apiservices,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gatewayclasses,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.istio.io,resources=envoyfilters,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=cilium.io,resources=ciliumnodeconfigs;ciliumloadbalancerippools,verbs=get;list;watch;create;update;patch;delete

// SetupWithManager registers the controller. It watches MeshInstalls, the
// MeshRevisions they own, the control planes' workloads (health and
// migration batches) and revision-tag webhooks (drift).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	all := handler.EnqueueRequestsFromMapFunc(r.allInstalls)
	return ctrl.NewControllerManagedBy(mgr).
		For(&meshv1alpha1.MeshInstall{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, deletionPredicate()))).
		Watches(&meshv1alpha1.MeshRevision{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			rv := o.(*meshv1alpha1.MeshRevision)
			return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: rv.Spec.MeshInstallRef.Name}}}
		})).
		Watches(&appsv1.Deployment{}, all, builder.WithPredicates(statusChanged())).
		Watches(&appsv1.DaemonSet{}, all, builder.WithPredicates(statusChanged())).
		Watches(&appsv1.StatefulSet{}, all, builder.WithPredicates(statusChanged())).
		Watches(&admissionregistrationv1.MutatingWebhookConfiguration{}, all).
		Watches(&corev1.Namespace{}, all, builder.WithPredicates(predicate.LabelChangedPredicate{})).
		// A BreakGlass holds its MeshInstall while active and lets it go
		// when restored or deleted.
		Watches(&meshv1alpha1.BreakGlass{}, all).
		WithOptions(controller.Options{MaxConcurrentReconciles: 2}).
		Named("meshinstall").
		Complete(r)
}

// allInstalls enqueues every MeshInstall that is not idle: installing,
// upgrading or not Ready. There are few MeshInstalls per cluster.
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
