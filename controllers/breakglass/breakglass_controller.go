// Package breakglass reconciles BreakGlasses: it records the prior state
// of everything it will change in a Secret, detaches the mesh (webhooks,
// namespace markers, policies, optional workload restarts) and, on
// deletion or expiry, restores exactly what it recorded. The engine (plan,
// record, restore and conflict rules) is in internal/incident, and what is
// mesh-specific comes from the provider's mesh.BreakGlassDriver; this
// package reads and writes the cluster.
package breakglass

import (
	"context"
	"fmt"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
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
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/metrics"
	"github.com/meshplane/meshplane/internal/status"
)

// +kubebuilder:rbac:groups=meshplane.io,resources=breakglasses,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=meshplane.io,resources=breakglasses/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=meshplane.io,resources=breakglasses/finalizers,verbs=update
// +kubebuilder:rbac:groups=meshplane.io,resources=meshinstalls;trafficsplits;canaries,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations;validatingwebhookconfigurations,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets,verbs=get;list;watch;patch

// Finalizer holds a BreakGlass until its recorded state is restored.
const Finalizer = "meshplane.io/break-glass-restore"

// Default tuning.
const (
	// DefaultWorkers bounds the concurrent patches of one step.
	DefaultWorkers = 32
	// WriterQPS and WriterBurst are the writer client's rate limits: an
	// incident tool must not queue behind the shared limiter of the other
	// controllers (controller-runtime's default is 20 QPS, which would take
	// 25 s for 500 namespaces).
	WriterQPS, WriterBurst = 500, 1000
	// DefaultRestartPace separates two batches of workload restarts.
	DefaultRestartPace = 5 * time.Second
)

// Reconciler reconciles BreakGlasses.
type Reconciler struct {
	// Client reads through the cache and writes the BreakGlass itself.
	Client client.Client
	// Writer patches the touched objects (own rate limits).
	Writer client.Client
	// APIReader reads the record Secret uncached.
	APIReader client.Reader
	// Registry resolves providers.
	Registry *mesh.Registry
	// Events records Events on the BreakGlass and every touched object.
	Events events.EventRecorder
	// OperatorNamespace holds the record Secrets.
	OperatorNamespace string
	// Workers bounds concurrent patches (DefaultWorkers when 0).
	Workers int
	// Clock is the reconciler's time; the real clock when nil.
	Clock clock.PassiveClock
	// RestartPace separates two batches of workload restarts (5 s when 0).
	RestartPace time.Duration
}

// Setup registers the controller with mgr.
func Setup(mgr *manager.Manager) error {
	r, err := New(mgr)
	if err != nil {
		return err
	}
	return r.SetupWithManager(mgr)
}

// New builds the reconciler with its own writer client.
func New(mgr *manager.Manager) (*Reconciler, error) {
	cfg := rest.CopyConfig(mgr.GetConfig())
	cfg.QPS, cfg.Burst = WriterQPS, WriterBurst
	cfg.RateLimiter = nil
	writer, err := client.New(cfg, client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()})
	if err != nil {
		return nil, fmt.Errorf("building the break-glass writer: %w", err)
	}
	return &Reconciler{
		Client: mgr.GetClient(), Writer: writer, APIReader: mgr.GetAPIReader(), Registry: mgr.Registry,
		Events: mgr.EventRecorder("breakglass"), OperatorNamespace: mgr.Options.OperatorNamespace, Clock: mgr.Clock,
	}, nil
}

// SetupWithManager registers r with mgr.
func (r *Reconciler) SetupWithManager(mgr *manager.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).Named("breakglass").WithOptions(mgr.ControllerOptions("breakglass")).
		For(&meshv1alpha1.BreakGlass{}, builder.WithPredicates(predicate.Or[client.Object](
			predicate.GenerationChangedPredicate{}, deletionStarted{})))
	// Informers for what engaging reads, started and synced before the
	// first reconcile: an incident must not wait for a cold cache. Their
	// events trigger nothing.
	for _, o := range []client.Object{&corev1.Namespace{}, &admissionregistrationv1.MutatingWebhookConfiguration{},
		&admissionregistrationv1.ValidatingWebhookConfiguration{}, &meshv1alpha1.MeshInstall{},
		&meshv1alpha1.TrafficSplit{}, &meshv1alpha1.Canary{}} {
		b = b.Watches(o, handler.Funcs{})
	}
	// A record Secret deleted (or being deleted) wakes its BreakGlass, so
	// an engaged one reports the loss at once.
	b = b.Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.mapRecord), builder.OnlyMetadata,
		builder.WithPredicates(recordEvents{}))
	// A BreakGlass gone releases its namespaces: the others (one waiting
	// in Conflict for them) are looked at again at once.
	b = b.Watches(&meshv1alpha1.BreakGlass{}, handler.Funcs{
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			var list meshv1alpha1.BreakGlassList
			if err := r.Client.List(ctx, &list); err != nil {
				return
			}
			for i := range list.Items {
				if list.Items[i].Name != e.Object.GetName() {
					q.Add(reconcile.Request{NamespacedName: client.ObjectKey{Name: list.Items[i].Name}})
				}
			}
		},
	})
	return b.Complete(r)
}

// recordEvents passes what a record Secret's BreakGlass must see at once:
// its deletion (started or done) and a record recreated by hand (no owner
// reference). Its creation by the controller itself wakes nothing, so
// workload restarts keep their pace.
type recordEvents struct{ predicate.Funcs }

func (recordEvents) Create(e event.CreateEvent) bool { return len(e.Object.GetOwnerReferences()) == 0 }
func (recordEvents) Delete(event.DeleteEvent) bool   { return true }
func (recordEvents) Update(e event.UpdateEvent) bool {
	return e.ObjectOld.GetDeletionTimestamp() == nil && e.ObjectNew.GetDeletionTimestamp() != nil
}
func (recordEvents) Generic(event.GenericEvent) bool { return false }

// mapRecord maps a record Secret to the BreakGlass owning it, or named by
// it (a record recreated by hand has no owner reference).
func (r *Reconciler) mapRecord(_ context.Context, o client.Object) []reconcile.Request {
	if o.GetNamespace() != r.OperatorNamespace {
		return nil
	}
	for _, ref := range o.GetOwnerReferences() {
		if ref.Kind == "BreakGlass" && ref.APIVersion == meshv1alpha1.GroupVersion.String() {
			return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: ref.Name}}}
		}
	}
	if name, ok := strings.CutPrefix(o.GetName(), "breakglass-"); ok && name != "" {
		return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: name}}}
	}
	return nil
}

// deletionStarted passes the update that sets deletionTimestamp (the
// status writes of the controller itself are filtered out, so that a
// reconcile never wakes itself up).
type deletionStarted struct{ predicate.Funcs }

func (deletionStarted) Update(e event.UpdateEvent) bool {
	return e.ObjectOld.GetDeletionTimestamp() == nil && e.ObjectNew.GetDeletionTimestamp() != nil
}

func (r *Reconciler) clock() clock.PassiveClock {
	if r.Clock != nil {
		return r.Clock
	}
	return clock.RealClock{}
}

// Reconcile engages, holds or restores one BreakGlass.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	bg := &meshv1alpha1.BreakGlass{}
	if err := r.Client.Get(ctx, req.NamespacedName, bg); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if stop, err := status.Undecodable(ctx, r.Client, bg); stop {
		return ctrl.Result{}, err
	}
	defer func() { r.recordMetric(ctx, bg) }()
	if err := r.addFinalizer(ctx, bg); err != nil {
		return ctrl.Result{}, err
	}
	patcher := status.NewPatcher(r.Client, bg)
	phase := bg.Status.Phase
	out, err := r.reconcile(ctx, bg)
	sum := setStatus(bg, out, err)
	if bg.Status.Phase != phase {
		typ := corev1.EventTypeNormal
		if bg.Status.Phase == meshv1alpha1.BreakGlassFailed {
			typ = corev1.EventTypeWarning
		}
		r.Events.Eventf(bg, nil, typ, string(bg.Status.Phase), "BreakGlass", "%s: %s", bg.Status.Phase, out.summary())
	}
	log.FromContext(ctx).V(1).Info("reconciled", "phase", bg.Status.Phase, "writes", out.writes, "error", err)
	return status.Finish(ctx, patcher, bg, sum, err, meshv1alpha1.ApplyFailedReason)
}

// addFinalizer adds the restore finalizer with its own patch, persisted
// before anything is touched, so a deletion always waits for the restore.
func (r *Reconciler) addFinalizer(ctx context.Context, bg *meshv1alpha1.BreakGlass) error {
	if !bg.DeletionTimestamp.IsZero() || bg.Status.Phase == meshv1alpha1.BreakGlassRestored || controllerutil.ContainsFinalizer(bg, Finalizer) {
		return nil
	}
	before := bg.DeepCopy()
	controllerutil.AddFinalizer(bg, Finalizer)
	if err := r.Client.Patch(ctx, bg, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("adding the restore finalizer: %w", err)
	}
	return nil
}

// recordMetric sets meshplane_breakglass_active from the cache, with
// current (just reconciled, maybe not yet in the cache) in place of its
// cached copy.
func (r *Reconciler) recordMetric(ctx context.Context, current *meshv1alpha1.BreakGlass) {
	var list meshv1alpha1.BreakGlassList
	if err := r.Client.List(ctx, &list); err != nil {
		return
	}
	active := map[string]int{}
	for _, p := range r.Registry.Names() {
		active[string(p)] = 0
	}
	for i := range list.Items {
		bg := &list.Items[i]
		if bg.UID == current.UID {
			bg = current
		}
		if incident.Active(bg) && bg.Status.Phase != "" && bg.Status.Phase != meshv1alpha1.BreakGlassPending {
			active[string(bg.Status.Provider)]++
		}
	}
	metrics.SetBreakGlassActive(active)
}
