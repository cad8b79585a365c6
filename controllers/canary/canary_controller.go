// Package canary reconciles Canaries: it creates the primary Deployment
// and the routed, primary and canary Services for the target Deployment,
// runs the engine of internal/canary at every reconcile (analysis once per
// interval, RequeueAfter) and converges the cluster to the engine's state
// in a fixed order — scale the canary up, apply the route (the same
// provider translation a TrafficSplit uses) and the primary, read the
// route back, scale the canary down. See internal/canary's doc for the
// ordering guarantees and docs/canary.md for the user's view.
//
// Deletion is held by a finalizer: by default the primary and the routed
// Service are released (owner reference and ownership labels removed), so
// the workload keeps serving through the original Service name, and the
// route and the other Services are deleted; with spec.revertOnDeletion the
// target is scaled back up, the routed Service moved to it, and the primary
// deleted.
package canary

import (
	"context"
	"errors"
	"fmt"
	"time"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/delivery"
	"github.com/meshplane/meshplane/internal/delivery/analysis"
	"github.com/meshplane/meshplane/internal/delivery/webhook"
	"github.com/meshplane/meshplane/internal/discovery"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/status"
)

// +kubebuilder:rbac:groups=meshplane.io,resources=canaries,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=meshplane.io,resources=canaries/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=meshplane.io,resources=canaries/finalizers,verbs=update
// +kubebuilder:rbac:groups=meshplane.io,resources=meshinstalls;breakglasses,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=networking.istio.io,resources=virtualservices,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes,verbs=get;list;watch;create;update;patch;delete

// Kind is the owner kind in labels and inventories.
const Kind = "Canary"

// Finalizer holds a Canary until the workload is handed back.
const Finalizer = "meshplane.io/canary"

// conflictRetry re-checks a Conflict (the foreign object is not watched by
// owner).
const conflictRetry = 2 * time.Minute

// MaxConcurrentReconciles is the number of Canaries reconciled at once.
const MaxConcurrentReconciles = 8

// Defaults of the spec.
const (
	DefaultInterval         = time.Minute
	DefaultProgressDeadline = 10 * time.Minute
)

// Reconciler reconciles Canaries.
type Reconciler struct {
	// Client reads through the cache and writes.
	Client client.Client
	// APIReader reads uncached: the Canary itself, Secrets, and the route
	// read back before the canary is scaled down.
	APIReader client.Reader
	// Registry resolves providers.
	Registry *mesh.Registry
	// Resolver finds the mesh of a namespace.
	Resolver *discovery.Resolver
	// Applier writes outputs.
	Applier *apply.Applier
	// Events records Events.
	Events events.EventRecorder
	// Checker runs metric checks; a zero Checker when nil.
	Checker *analysis.Checker
	// Caller calls webhooks; a zero Caller when nil.
	Caller *webhook.Caller
	// DefaultMetricsServer is the address queried when a Canary names no
	// metrics server (the operator's --metrics-server); none when empty.
	DefaultMetricsServer string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Setup registers the controller with mgr.
func Setup(mgr *manager.Manager) error {
	c := mgr.GetClient()
	r := &Reconciler{
		Client:    c,
		APIReader: mgr.GetAPIReader(),
		Registry:  mgr.Registry,
		Resolver:  &discovery.Resolver{Reader: c, Registry: mgr.Registry},
		Applier:   &apply.Applier{Client: c, Scheme: mgr.GetScheme()},
		Events:    mgr.GetEventRecorder("meshplane-canary"),
		// A Canary naming no metrics server queries the operator's.
		DefaultMetricsServer: mgr.Options.MetricsServer,
	}
	b := ctrl.NewControllerManagedBy(mgr).Named("canary").
		// Analyses wait on metrics servers and webhooks (up to their
		// timeouts): one slow Canary must not hold the others' rollbacks.
		// A Canary is never reconciled by two workers at once.
		WithOptions(controller.Options{MaxConcurrentReconciles: MaxConcurrentReconciles}).
		// The canary-action annotation is acted on, so annotation changes
		// reconcile too.
		For(&meshv1alpha1.Canary{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Watches(&appsv1.Deployment{}, handler.EnqueueRequestsFromMapFunc(r.canariesForTarget)).
		// A BreakGlass engaging or restoring annotates the namespace; a
		// namespace moving to another mesh switches the provider.
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.canariesInNamespace),
			builder.WithPredicates(predicate.Or(predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{})))
	for _, o := range apply.Served(mgr.GetRESTMapper(), mgr.GetScheme(), &istionetworking.VirtualService{}, &gatewayv1.HTTPRoute{}) {
		b = b.Owns(o)
	}
	return b.Complete(r)
}

func (r *Reconciler) canariesForTarget(ctx context.Context, o client.Object) []reconcile.Request {
	var list meshv1alpha1.CanaryList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace())); err != nil {
		return nil
	}
	var out []reconcile.Request
	for i := range list.Items {
		if list.Items[i].Spec.TargetRef.Name == o.GetName() {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return out
}

func (r *Reconciler) canariesInNamespace(ctx context.Context, o client.Object) []reconcile.Request {
	var list meshv1alpha1.CanaryList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetName())); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return out
}

func (r *Reconciler) reader() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Reconcile runs one step of a Canary's delivery.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	// The engine's memory is the status: read it from the API server, not
	// the cache, so a reconcile never acts on a state older than the last
	// one it wrote (a stale Progressing read after a rollback would scale
	// the canary back up and overwrite the rollback's message).
	cn := &meshv1alpha1.Canary{}
	if err := r.reader().Get(ctx, req.NamespacedName, cn); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	patcher := status.NewPatcher(r.Client, cn)
	before := cn.Status.DeepCopy()
	defer func() {
		if perr := patcher.Patch(ctx, cn); perr != nil && err == nil {
			err = perr
		}
		recordMetrics(cn, before)
	}()
	if !cn.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, cn)
	}
	if controllerutil.AddFinalizer(cn, Finalizer) {
		// Persist the finalizer before anything is created.
		return ctrl.Result{Requeue: true}, nil
	}
	out, rerr := r.reconcile(ctx, cn)
	setStatus(cn, out, rerr)
	r.record(cn, before, out)
	log.FromContext(ctx).V(1).Info("reconciled", "phase", cn.Status.Phase, "weight", cn.Status.CanaryWeight, "error", rerr)
	switch {
	case rerr == nil:
		return ctrl.Result{RequeueAfter: out.requeue}, nil
	case isConflict(rerr):
		return ctrl.Result{RequeueAfter: conflictRetry}, nil
	case outcome.IsTerminal(rerr):
		return ctrl.Result{}, nil
	default:
		return ctrl.Result{}, rerr
	}
}

// result is what the phases found and did.
type result struct {
	provider     meshv1alpha1.Provider
	refsResolved bool
	decision     *delivery.Decision
	breakGlass   *meshv1alpha1.BreakGlass
	applied      apply.Result
	// weight is the canary weight of the route in place.
	weight    int32
	hasWeight bool
	scaled    []string
	requeue   time.Duration
}

// world is what a reconcile reads.
type world struct {
	n                     names
	target, primary       *appsv1.Deployment
	targetSel, primarySel map[string]string
	translator            mesh.TrafficTranslator
	provider              meshv1alpha1.Provider
	plan                  delivery.Plan
}

func (r *Reconciler) reconcile(ctx context.Context, cn *meshv1alpha1.Canary) (result, error) {
	var out result
	w, err := r.read(ctx, cn, &out)
	if err != nil {
		return out, err
	}
	bg, err := incident.ForNamespace(ctx, r.Client, cn.Namespace)
	if err != nil {
		return out, err
	}
	if bg != nil && incident.PinsTraffic(bg) {
		out.breakGlass = bg
	}
	state := stateOf(cn)
	obs := r.observe(cn, w)
	var d delivery.Decision
	if out.breakGlass != nil {
		// Pinned: everything on the primary, the delivery paused where it
		// is.
		d = delivery.Decision{State: state, Route: delivery.Primary, Scale: delivery.ScaleFor(state.Phase),
			PromotePrimary: state.Phase == meshv1alpha1.CanaryPhasePromoting}
		if state.Phase == "" || state.Phase == meshv1alpha1.CanaryPhaseInitializing {
			d = delivery.Step(state, obs, nopProbe{})
		}
	} else {
		d = delivery.Step(state, obs, r.probe(ctx, cn, w))
	}
	out.decision = &d
	out.requeue = d.Requeue
	if err := r.converge(ctx, cn, w, &d, &out); err != nil {
		return out, err
	}
	if d.ClearAction && cn.Annotations[meshv1alpha1.CanaryActionAnnotation] != "" {
		delete(cn.Annotations, meshv1alpha1.CanaryActionAnnotation)
	}
	return out, nil
}

// read resolves the mesh and the target, and validates every route the
// strategy will need against the mesh before anything is written.
func (r *Reconciler) read(ctx context.Context, cn *meshv1alpha1.Canary, out *result) (*world, error) {
	found, err := r.Resolver.Resolve(ctx, cn.Namespace, cn.Spec.Provider)
	if err != nil {
		return nil, err
	}
	out.provider = found.Provider
	translator, err := r.Registry.TrafficTranslator(found.Provider)
	if err != nil {
		return nil, err
	}
	w := &world{n: namesOf(cn), translator: translator, provider: found.Provider, plan: delivery.PlanFor(&cn.Spec)}
	w.target = &appsv1.Deployment{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: w.n.target}, w.target); err != nil {
		if apierrors.IsNotFound(err) {
			if perr := r.targetGone(ctx, cn, w, out); perr != nil {
				return nil, perr
			}
			return nil, &refError{meshv1alpha1.ReferenceNotFoundReason,
				fmt.Sprintf("Deployment %s/%s (spec.targetRef) does not exist; create it or fix the name (re-checked when it appears)", cn.Namespace, w.n.target)}
		}
		return nil, err
	}
	if w.targetSel, w.primarySel, err = selectors(w.target); err != nil {
		return nil, &refError{meshv1alpha1.InvalidSpecReason, err.Error()}
	}
	if ref := cn.Spec.Analysis.MetricsServer; ref != nil && ref.SecretRef != nil {
		if _, err := r.credentials(ctx, cn); err != nil {
			return nil, err
		}
	}
	out.refsResolved = true
	for _, route := range routesOf(w.plan) {
		if _, err := translator.TranslateTrafficSplit(trafficSplit(cn, w.n, w.provider, route)); err != nil {
			return nil, fmt.Errorf("strategy %s on %s: %w", strategy(cn), w.provider, err)
		}
	}
	w.primary = &appsv1.Deployment{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: w.n.primary}, w.primary); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, err
		}
		w.primary = nil
	}
	return w, nil
}

// targetGone handles a target deleted while it is the canary: the route
// is applied primary-only (the other outputs are left as they are, so
// nothing is pruned) and the delivery is Failed. A Canary that is idle, or
// was never initialized, has nothing routed to the target.
func (r *Reconciler) targetGone(ctx context.Context, cn *meshv1alpha1.Canary, w *world, out *result) error {
	phase := cn.Status.Phase
	if !delivery.Analysing(phase) && phase != meshv1alpha1.CanaryPhasePromoting {
		return nil
	}
	routes, err := w.translator.TranslateTrafficSplit(trafficSplit(cn, w.n, w.provider, delivery.Primary))
	if err != nil {
		return err
	}
	desired, err := r.Applier.Desired(apply.Owner{Object: cn, Kind: Kind}, routes)
	if err != nil {
		return err
	}
	for _, u := range desired {
		if err := r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(ownership.FieldManager), client.ForceOwnership); err != nil {
			return fmt.Errorf("routing everything to the primary: %w", err)
		}
	}
	if err := r.readBack(ctx, routes, w.n.canarySvc); err != nil {
		return err
	}
	d := delivery.Decision{State: stateOf(cn), Reason: "RolledBack"}
	d.State.Phase = meshv1alpha1.CanaryPhaseFailed
	d.State.PhaseSince = r.now()
	d.State.LastAnalysis = time.Time{}
	d.State.Message = "rolled back: the target Deployment " + w.n.target + " was deleted during the delivery; the primary serves all traffic"
	d.Note = d.State.Message
	d.Notify = []meshv1alpha1.WebhookType{meshv1alpha1.WebhookPostRollout}
	out.decision = &d
	out.weight, out.hasWeight = 0, true
	return nil
}

func strategy(cn *meshv1alpha1.Canary) meshv1alpha1.CanaryStrategy {
	if cn.Spec.Strategy == "" {
		return meshv1alpha1.StrategyCanary
	}
	return cn.Spec.Strategy
}

// refError is a reference problem: terminal (the Deployment watch
// re-checks it).
type refError struct{ reason, msg string }

func (e *refError) Error() string         { return e.msg }
func (e *refError) StalledReason() string { return e.reason }

func stateOf(cn *meshv1alpha1.Canary) delivery.State {
	st := cn.Status
	s := delivery.State{Phase: st.Phase, FailedChecks: st.FailedChecks, Iterations: st.Iterations,
		LastAppliedSpec: st.LastAppliedSpec, LastPromotedSpec: st.LastPromotedSpec, Message: st.Message}
	if st.LastTransitionTime != nil {
		s.PhaseSince = st.LastTransitionTime.Time
	}
	if st.LastAnalysisTime != nil {
		s.LastAnalysis = st.LastAnalysisTime.Time
	}
	return s
}

func (r *Reconciler) observe(cn *meshv1alpha1.Canary, w *world) delivery.Observation {
	a := &cn.Spec.Analysis
	o := delivery.Observation{
		Now: r.now(), TargetHash: TemplateHash(&w.target.Spec.Template),
		CanaryAvailable:  available(w.target),
		CanaryScaledDown: w.target.Spec.Replicas != nil && *w.target.Spec.Replicas == 0,
		Action:           cn.Annotations[meshv1alpha1.CanaryActionAnnotation],
		Suspend:          cn.Spec.Suspend, SkipAnalysis: cn.Spec.SkipAnalysis,
		Interval: DefaultInterval, ProgressDeadline: DefaultProgressDeadline, Threshold: a.Threshold,
		Plan: w.plan,
	}
	if o.Threshold == 0 {
		o.Threshold = 5
	}
	if a.Interval != nil {
		o.Interval = a.Interval.Duration
	}
	if cn.Spec.ProgressDeadline != nil {
		o.ProgressDeadline = cn.Spec.ProgressDeadline.Duration
	}
	if w.primary != nil {
		o.PrimaryAvailable = available(w.primary)
		o.PrimaryHash = w.primary.Annotations[TemplateHashAnnotation]
	}
	return o
}

// available reports whether d has rolled out its current template and all
// of its (non-zero) replicas are Available.
func available(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	return want > 0 && st.ObservedGeneration >= d.Generation && st.UpdatedReplicas == want &&
		st.AvailableReplicas >= want && st.Replicas == want
}

// replicasOf is the primary's replica count (the target's at creation).
func replicasOf(w *world) int32 {
	if w.primary != nil && w.primary.Spec.Replicas != nil && *w.primary.Spec.Replicas > 0 {
		return *w.primary.Spec.Replicas
	}
	if w.target.Spec.Replicas != nil && *w.target.Spec.Replicas > 0 {
		return *w.target.Spec.Replicas
	}
	return 1
}

// converge brings the cluster to the decision, in the guaranteed order:
// canary up, route, primary, read back, canary down.
func (r *Reconciler) converge(ctx context.Context, cn *meshv1alpha1.Canary, w *world, d *delivery.Decision, out *result) error {
	if d.Scale == delivery.ScaleUp {
		if err := r.scale(ctx, w.target, replicasOf(w), out); err != nil {
			return err
		}
	}
	objs, routes, err := r.outputs(cn, w, d)
	if err != nil {
		return err
	}
	out.applied, err = r.Applier.Apply(ctx, apply.Owner{Object: cn, Kind: Kind}, objs, cn.Status.Inventory)
	if err != nil {
		return err
	}
	routed := d.State.Phase != meshv1alpha1.CanaryPhaseInitializing
	if routed {
		out.weight, out.hasWeight = d.Route.Weight, true
	}
	if d.Scale == delivery.ScaleDown && routed {
		// Read the route back from the API server: the canary is scaled
		// down only once nothing routes to it.
		if err := r.readBack(ctx, routes, w.n.canarySvc); err != nil {
			return err
		}
		if err := r.scale(ctx, w.target, 0, out); err != nil {
			return err
		}
	}
	return nil
}

// outputs lists the objects to apply, route before primary: on promotion
// the route sends everything to the canary before the primary's template
// changes.
func (r *Reconciler) outputs(cn *meshv1alpha1.Canary, w *world, d *delivery.Decision) (objs, routes []client.Object, err error) {
	objs = []client.Object{
		service(cn, w.n.service, w.primarySel),
		service(cn, w.n.primarySvc, w.primarySel),
		service(cn, w.n.canarySvc, w.targetSel),
	}
	if d.State.Phase != meshv1alpha1.CanaryPhaseInitializing {
		routes, err = w.translator.TranslateTrafficSplit(trafficSplit(cn, w.n, w.provider, d.Route))
		if err != nil {
			return nil, nil, err
		}
		objs = append(objs, routes...)
	}
	var tmpl corev1.PodTemplateSpec
	var hash string
	switch {
	case w.primary == nil || d.PromotePrimary:
		tmpl = primaryTemplate(&w.target.Spec.Template, w.primarySel)
		hash = TemplateHash(&w.target.Spec.Template)
	default:
		tmpl = *w.primary.Spec.Template.DeepCopy()
		hash = w.primary.Annotations[TemplateHashAnnotation]
	}
	return append(objs, primaryDeployment(cn, w.n, tmpl, hash, replicasOf(w), w.primarySel, w.target)), routes, nil
}

// readBack reads the route objects back, uncached, and fails unless none
// sends the canary a request or a mirror.
func (r *Reconciler) readBack(ctx context.Context, routes []client.Object, canarySvc string) error {
	for _, o := range routes {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(o.GetObjectKind().GroupVersionKind())
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(o), u); err != nil {
			return fmt.Errorf("reading back %s %s: %w", u.GetKind(), o.GetName(), err)
		}
		weight, mirrored, err := CanaryShare(u, canarySvc)
		if err != nil {
			return err
		}
		if weight != 0 || mirrored {
			return fmt.Errorf("%s %s read back still routes to the canary (weight %d, mirrored %v); retrying before scaling it down", u.GetKind(), u.GetName(), weight, mirrored)
		}
	}
	return nil
}

// scale sets the target's replicas when they differ.
func (r *Reconciler) scale(ctx context.Context, d *appsv1.Deployment, replicas int32, out *result) error {
	if d.Spec.Replicas != nil && *d.Spec.Replicas == replicas {
		return nil
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Replicas = &replicas
	if err := r.Client.Patch(ctx, d, patch); err != nil {
		return fmt.Errorf("scaling Deployment %s to %d: %w", d.Name, replicas, err)
	}
	out.scaled = append(out.scaled, fmt.Sprintf("Deployment %s scaled to %d", d.Name, replicas))
	return nil
}

func isConflict(err error) bool {
	var c *apply.ConflictError
	return errors.As(err, &c)
}

// nopProbe opens every gate and passes every check; used where the
// engine must not call out (a pinned Canary initializing).
type nopProbe struct{}

func (nopProbe) Gate(meshv1alpha1.WebhookType) (bool, string) { return true, "" }
func (nopProbe) PreRollout() delivery.CheckResult             { return delivery.CheckResult{} }
func (nopProbe) Analyse() delivery.CheckResult                { return delivery.CheckResult{} }
func (nopProbe) RollbackRequested() (bool, string)            { return false, "" }
