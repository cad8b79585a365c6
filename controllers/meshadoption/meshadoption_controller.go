// Package meshadoption reconciles MeshAdoption: it brings namespaces into a
// MeshInstall's data plane in waves. Each wave is recorded in status
// before anything is written (record first, act second), then labelled
// (the prior values recorded on each namespace) and restarted where the
// mode needs it, then judged by the upgrade's health gate; a wave that
// misses its gate is moved back exactly and the adoption holds. The
// decisions are internal/adoption's; how a mesh enrols a namespace is its
// provider's (mesh.Enroller). An active BreakGlass on the mesh pauses the
// adoption: no wave starts and none is judged until it is gone.
package meshadoption

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/delivery/analysis"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/status"
)

// Finalizer holds a MeshAdoption until its records are removed from the
// namespaces it enrolled.
const Finalizer = "meshplane.io/meshadoption"

// +kubebuilder:rbac:groups=meshplane.io,resources=meshadoptions,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=meshplane.io,resources=meshadoptions/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=meshplane.io,resources=meshadoptions/finalizers,verbs=update
// +kubebuilder:rbac:groups=meshplane.io,resources=meshinstalls;breakglasses;zerotrustpolicies;trafficsplits;canaries;resiliencepolicies;egresspolicies;telemetrypolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gateways,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconciler reconciles MeshAdoption objects.
type Reconciler struct {
	client.Client
	// Registry resolves providers (fails closed).
	Registry *mesh.Registry
	// Events records an Event per write.
	Events events.EventRecorder
	// Clock is the controller's time.
	Clock clock.PassiveClock
	// Metrics runs the audit queries of spec.waves.audit.
	Metrics *analysis.Checker
}

// Setup registers the controller with mgr. Besides MeshAdoptions it
// watches what moves a wave: MeshInstalls, BreakGlasses, namespace labels
// and annotations, and workload status.
func Setup(mgr *manager.Manager) error {
	r := &Reconciler{Client: mgr.GetClient(), Registry: mgr.Registry, Events: mgr.EventRecorder("meshadoption"), Clock: mgr.Clock,
		Metrics: &analysis.Checker{}}
	all := handler.EnqueueRequestsFromMapFunc(r.all)
	meta := builder.WithPredicates(predicate.Or(predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{}))
	return ctrl.NewControllerManagedBy(mgr).
		For(&meshv1alpha1.MeshAdoption{}).
		Watches(&meshv1alpha1.MeshInstall{}, all).
		Watches(&meshv1alpha1.BreakGlass{}, all).
		Watches(&corev1.Namespace{}, all, meta).
		Watches(&appsv1.Deployment{}, all).
		Watches(&appsv1.StatefulSet{}, all).
		Watches(&appsv1.DaemonSet{}, all).
		WithOptions(mgr.ControllerOptions("meshadoption")).
		Named("meshadoption").
		Complete(r)
}

// all enqueues every MeshAdoption that is not finished; a workload or
// namespace change can only move one whose wave is in flight or pending.
func (r *Reconciler) all(ctx context.Context, _ client.Object) []reconcile.Request {
	var list meshv1alpha1.MeshAdoptionList
	if err := r.List(ctx, &list); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, a := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: a.Name}})
	}
	return out
}

// Reconcile moves one MeshAdoption towards its spec.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ma := &meshv1alpha1.MeshAdoption{}
	patcher, err := status.Begin(ctx, r.Client, r.Client, req.NamespacedName, ma)
	if patcher == nil {
		return ctrl.Result{}, err
	}
	s := &scope{ma: ma, patcher: patcher}
	out, err := r.reconcile(ctx, s)
	sum := setStatus(ma, out, err)
	log.FromContext(ctx).V(1).Info("reconciled", "phase", ma.Status.Phase, "error", err)
	return status.Finish(ctx, patcher, ma, sum, err, meshv1alpha1.ProgressingReason)
}

// scope is one reconcile's state.
type scope struct {
	ma      *meshv1alpha1.MeshAdoption
	patcher *status.Patcher
	mi      *meshv1alpha1.MeshInstall
	enrol   mesh.Enrolment
	// audit is spec.waves.audit, nil without one.
	audit *meshv1alpha1.AdoptionAudit
}

// commit stores the status under the optimistic lock before acting on it.
func (s *scope) commit(ctx context.Context) error { return s.patcher.Commit(ctx, s.ma) }

// reconcile deletes, or resolves the target and advances the waves.
func (r *Reconciler) reconcile(ctx context.Context, s *scope) (result, error) {
	ma := s.ma
	if !ma.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, s)
	}
	if controllerutil.AddFinalizer(ma, Finalizer) {
		if err := s.patcher.Patch(ctx, ma); err != nil {
			return result{}, err
		}
	}
	if err := r.target(ctx, s); err != nil {
		return result{}, err
	}
	bg, err := incident.ForMeshInstall(ctx, r.Client, s.mi)
	if err != nil {
		return result{}, err
	}
	if bg != nil {
		// A BreakGlass pauses the adoption: no wave starts, and a wave in
		// flight is neither judged nor moved back while the mesh is
		// detached.
		return result{heldBy: bg}, nil
	}
	nss, err := r.collect(ctx, s)
	if err != nil {
		return result{}, err
	}
	return r.advance(ctx, s, nss)
}

// target reads the MeshInstall and how its mesh enrols a namespace.
func (r *Reconciler) target(ctx context.Context, s *scope) error {
	ma := s.ma
	mi := &meshv1alpha1.MeshInstall{}
	if err := r.Get(ctx, client.ObjectKey{Name: ma.Spec.MeshInstallRef.Name}, mi); err != nil {
		if apierrors.IsNotFound(err) {
			return outcome.Stalled(meshv1alpha1.ReferenceNotFoundReason,
				"spec.meshInstallRef names MeshInstall %s, which does not exist; create it or fix the reference", ma.Spec.MeshInstallRef.Name)
		}
		return err
	}
	s.mi = mi
	ma.Status.Provider = mi.Spec.Provider
	p, err := r.Registry.Enroller(mi.Spec.Provider)
	if err != nil {
		return err
	}
	e, err := p.Enrolment(mi, ma.Spec.Mode)
	if err != nil {
		return err
	}
	s.enrol = e
	s.audit, err = auditPlan(ma, e)
	return err
}

// event records a Normal Event on ma.
func (r *Reconciler) event(ma *meshv1alpha1.MeshAdoption, reason, action, note string, args ...any) {
	r.Events.Eventf(ma, nil, corev1.EventTypeNormal, reason, action, note, args...)
}
