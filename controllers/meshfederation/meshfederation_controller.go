package meshfederation

import (
	"context"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/remote"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/internal/trust"
)

// Defaults of the reconciler's timing.
const (
	// DefaultPollInterval is how often a waiting phase or an unreachable
	// member is looked at again.
	DefaultPollInterval = 15 * time.Second
	// DefaultResync is how often members are compared with the desired
	// material when nothing else happens (remote members are not watched).
	DefaultResync = 10 * time.Minute
)

// Reconciler reconciles MeshFederation objects.
type Reconciler struct {
	// Client reads MeshFederations (cached) and patches their status.
	Client client.Client
	// Local is an uncached client to the local cluster, for the root,
	// kubeconfig Secrets and the local member's objects.
	Local client.Client
	// LocalConfig is the local cluster's REST config: the API server
	// address and CA peers reach the local member at (service federation).
	LocalConfig *rest.Config
	// Registry resolves providers (fails closed).
	Registry *mesh.Registry
	// Remote caches clients to member clusters.
	Remote *remote.Cache
	// Events records an Event per write.
	Events events.EventRecorder
	// OperatorNamespace holds the root state and kubeconfig Secrets.
	OperatorNamespace string
	// PollInterval and Resync; the defaults when zero.
	PollInterval, Resync time.Duration
	// Clock is the reconciler's time; the real clock when nil.
	Clock clock.PassiveClock
}

// +kubebuilder:rbac:groups=meshplane.io,resources=meshfederations,verbs=get;list;watch
// +kubebuilder:rbac:groups=meshplane.io,resources=meshfederations/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups="";events.k8s.io,resources=events,verbs=create;patch

// Setup registers the controller with the manager.
func Setup(mgr *manager.Manager) error {
	r, err := New(mgr)
	if err != nil {
		return err
	}
	return r.SetupWithManager(mgr)
}

// New builds the reconciler from the manager: its clients, registry,
// recorder and clock.
func New(mgr *manager.Manager) (*Reconciler, error) {
	local, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()})
	if err != nil {
		return nil, err
	}
	return &Reconciler{
		Client: mgr.GetClient(), Local: local, LocalConfig: mgr.GetConfig(), Registry: mgr.Registry,
		Remote: &remote.Cache{Scheme: mgr.GetScheme()},
		Events: mgr.EventRecorder("meshfederation"), OperatorNamespace: mgr.Options.OperatorNamespace,
		Clock: mgr.Clock,
	}, nil
}

// SetupWithManager watches MeshFederations, the Secrets and ConfigMaps they
// write in the local cluster (metadata only), and the Secrets of the
// operator namespace (root and kubeconfigs).
func (r *Reconciler) SetupWithManager(mgr *manager.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).
		For(&meshv1alpha1.MeshFederation{}).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.mapSecret), builder.OnlyMetadata).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.mapOwned), builder.OnlyMetadata)
	return r.exportWatches(mgr, b).
		WithOptions(mgr.ControllerOptions("meshfederation")).
		Named("meshfederation").
		Complete(r)
}

// mapOwned enqueues the federation an object belongs to.
func (r *Reconciler) mapOwned(_ context.Context, obj client.Object) []reconcile.Request {
	prefix := strings.ToLower(kind) + ".."
	if v := obj.GetLabels()[ownership.OwnerLabel]; strings.HasPrefix(v, prefix) {
		return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: strings.TrimPrefix(v, prefix)}}}
	}
	return nil
}

// mapSecret enqueues the federation a Secret belongs to, or every
// federation for another Secret in the operator namespace (a root or a
// kubeconfig one may reference).
func (r *Reconciler) mapSecret(ctx context.Context, obj client.Object) []reconcile.Request {
	if owned := r.mapOwned(ctx, obj); owned != nil {
		return owned
	}
	if obj.GetNamespace() != r.OperatorNamespace {
		return nil
	}
	var list meshv1alpha1.MeshFederationList
	if err := r.Client.List(ctx, &list); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, f := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: f.Name}})
	}
	return out
}

func (r *Reconciler) clock() clock.PassiveClock {
	if r.Clock != nil {
		return r.Clock
	}
	return clock.RealClock{}
}

func (r *Reconciler) poll() time.Duration {
	if r.PollInterval > 0 {
		return r.PollInterval
	}
	return DefaultPollInterval
}

func (r *Reconciler) resync() time.Duration {
	if r.Resync > 0 {
		return r.Resync
	}
	return DefaultResync
}

func (r *Reconciler) event(fed *meshv1alpha1.MeshFederation, typ, reason, action, note string, args ...any) {
	if r.Events != nil {
		r.Events.Eventf(fed, nil, typ, reason, action, note, args...)
	}
}

// Reconcile distributes the federation's trust material to every member
// and advances a rotation by at most one phase. Deleting a federation
// removes nothing it distributed.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	fed := &meshv1alpha1.MeshFederation{}
	patcher, err := status.Begin(ctx, r.Client, r.Client, req.NamespacedName, fed)
	if patcher == nil {
		return ctrl.Result{}, err
	}
	if !fed.DeletionTimestamp.IsZero() {
		// Trust material stays; what service federation wrote goes.
		err := r.finalizeServices(ctx, fed)
		if perr := patcher.Patch(ctx, fed); perr != nil && err == nil {
			err = perr
		}
		if err != nil {
			return ctrl.Result{RequeueAfter: r.poll()}, nil
		}
		return ctrl.Result{}, nil
	}
	out, err := r.reconcile(ctx, fed, patcher)
	sum := setStatus(fed, out, err)
	log.FromContext(ctx).V(1).Info("reconciled", "mode", fed.Spec.Mode, "clusters", fed.Status.ReadyClusters, "rotating", out.rotating, "error", err)
	return status.Finish(ctx, patcher, fed, sum, err, meshv1alpha1.ProgressingReason)
}

// result is what a reconcile found, for the status.
type result struct {
	// now is when the reconcile ran.
	now time.Time
	// members are the member clusters, each with its own outcome.
	members []*member
	// root is the current root (SharedRoot), once loaded.
	root *trust.CA
	// bundle lists the fingerprints of the bundle distributed, when
	// bundleKnown.
	bundle      []string
	bundleKnown bool
	// rotation is the rotation's state to record, when rotationKnown.
	rotation      *meshv1alpha1.RotationStatus
	rotationKnown bool
	// after asks for another look this soon (waiting, unreachable).
	after time.Duration
	// rotating is true while a rotation runs; waitingFor says on what.
	rotating   bool
	waitingFor string
	// services are the members' service federation (spec.services).
	services []*svcMember
}

// failed reports whether a member does not hold its material.
func (o *result) failed() bool {
	for _, m := range o.members {
		if m.err != nil {
			return true
		}
	}
	return false
}

func (r *Reconciler) reconcile(ctx context.Context, fed *meshv1alpha1.MeshFederation, patcher *status.Patcher) (result, error) {
	now := r.clock().Now()
	members, err := r.members(ctx, fed)
	if err != nil {
		return result{now: now}, err
	}
	var out result
	if fed.Spec.Mode == meshv1alpha1.FederationBundleMerge {
		out = r.reconcileMerge(ctx, fed, members, now)
	} else {
		out, err = r.reconcileShared(ctx, fed, members, now)
	}
	out.now = now
	if err == nil {
		out.services = r.reconcileServices(ctx, fed, members, patcher, now)
		// A release that could not finish (a member that does not answer)
		// keeps the finalizer: look again soon, remote members are not
		// watched.
		released := fed.Spec.Services != nil || !controllerutil.ContainsFinalizer(fed, ServicesFinalizer)
		if (servicesPending(out.services) || !released) && (out.after == 0 || out.after > r.poll()) {
			out.after = r.poll()
		}
	}
	// A member that does not hold its material is looked at again soon:
	// remote members are not watched.
	if err == nil && out.failed() && (out.after == 0 || out.after > r.poll()) {
		out.after = r.poll()
	}
	return out, err
}
