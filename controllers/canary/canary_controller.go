// Package canary reconciles Canaries: it creates the primary Deployment
// and the routed, primary and canary Services for the target Deployment,
// runs the engine of internal/delivery at every reconcile (analysis once
// per interval, RequeueAfter) and converges the cluster to the engine's
// state in a fixed order — scale the canary up, apply the route (the same
// provider translation a TrafficSplit uses) and the primary, read the
// route back (the provider's mesh.RouteReader), scale the canary down. See
// internal/delivery's doc for the ordering guarantees and docs/canary.md
// for the user's view.
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
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/compose"
	"github.com/meshplane/meshplane/internal/delivery"
	"github.com/meshplane/meshplane/internal/delivery/analysis"
	"github.com/meshplane/meshplane/internal/delivery/webhook"
	"github.com/meshplane/meshplane/internal/discovery"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/outputs"
	"github.com/meshplane/meshplane/internal/overlap"
	"github.com/meshplane/meshplane/internal/status"
)

// +kubebuilder:rbac:groups=meshplane.io,resources=canaries,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=meshplane.io,resources=canaries/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=meshplane.io,resources=canaries/finalizers,verbs=update
// +kubebuilder:rbac:groups=meshplane.io,resources=meshinstalls;breakglasses;trafficsplits,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// The route kinds' rules are beside the providers (internal/mesh/<mesh>).

// Kind is the owner kind in labels and inventories.
const Kind = "Canary"

// controllerName is the controller's name: its --concurrent key and Event
// reporter.
const controllerName = "canary"

// Finalizer holds a Canary until the workload is handed back.
const Finalizer = "meshplane.io/canary"

// Defaults of the spec.
const (
	DefaultInterval         = time.Minute
	DefaultProgressDeadline = 10 * time.Minute
)

// Reconciler reconciles Canaries.
type Reconciler struct {
	outputs.Deps
	// APIReader reads uncached: the Canary itself when the cache lags
	// this controller's last write (or always, without fresh), Secrets,
	// and the route read back before the canary is scaled down.
	APIReader client.Reader
	// Checker runs metric checks; a zero Checker when nil.
	Checker *analysis.Checker
	// Caller calls webhooks; a zero Caller when nil.
	Caller *webhook.Caller
	// DefaultMetricsServer is the address queried when a Canary names no
	// metrics server (the operator's --metrics-server); none when empty.
	DefaultMetricsServer string
	// Clock is the engine's time; the real clock when nil.
	Clock clock.PassiveClock
	// fresh reads Canaries from the cache unless it lags this
	// controller's last write (canary_controller_reader.go); uncached
	// reads when nil.
	fresh *freshReader
	// analysed remembers analysis times not yet written to status
	// (canary_controller_analysed.go).
	analysed analysed
}

// Setup registers the controller with mgr.
func Setup(mgr *manager.Manager) error {
	r := &Reconciler{
		Deps:      outputs.NewDeps(mgr.GetClient(), mgr, controllerName),
		APIReader: mgr.GetAPIReader(),
		fresh:     &freshReader{cache: mgr.GetClient(), api: mgr.GetAPIReader()},
		// A Canary naming no metrics server queries the operator's.
		DefaultMetricsServer: mgr.Options.MetricsServer,
		Clock:                mgr.Clock,
	}
	// Analyses wait on metrics servers and webhooks (up to their
	// timeouts): one slow Canary must not hold the others' rollbacks
	// (--concurrent); a Canary is never reconciled by two workers at once.
	// The canary-action annotation is acted on, so annotation changes
	// reconcile too. The routes are a TrafficSplit's outputs.
	return outputs.Controller(mgr, r.Client, outputs.Kind{
		Name: controllerName, Object: &meshv1alpha1.Canary{}, List: &meshv1alpha1.CanaryList{},
		Predicate: predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}),
		Outputs:   mgr.Registry.TrafficOutputKinds(),
	}).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Watches(&appsv1.Deployment{}, handler.EnqueueRequestsFromMapFunc(r.canariesForTarget)).
		// Another route of the same Service appearing, changing or going
		// away may decide a Conflict (internal/overlap); routes of other
		// Services never contend.
		Watches(&meshv1alpha1.TrafficSplit{}, overlap.EnqueueRoutes(r.Client, &meshv1alpha1.CanaryList{}), builder.WithPredicates(overlap.Changes)).
		Watches(&meshv1alpha1.Canary{}, overlap.EnqueueRoutes(r.Client, &meshv1alpha1.CanaryList{}), builder.WithPredicates(overlap.Changes)).
		// A ResiliencePolicy for the routed Service is composed into the
		// route (canary_controller_resilience.go).
		Watches(&meshv1alpha1.ResiliencePolicy{}, handler.EnqueueRequestsFromMapFunc(r.canariesForPolicy), builder.WithPredicates(overlap.Changes)).
		Complete(r)
}

func (r *Reconciler) canariesForTarget(ctx context.Context, o client.Object) []reconcile.Request {
	return outputs.Requests(ctx, r.Client, &meshv1alpha1.CanaryList{}, o.GetNamespace(), func(cn client.Object) bool {
		return cn.(*meshv1alpha1.Canary).Spec.TargetRef.Name == o.GetName()
	})
}

func (r *Reconciler) reader() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}

func (r *Reconciler) now() time.Time {
	if r.Clock != nil {
		return r.Clock.Now()
	}
	return clock.RealClock{}.Now()
}

// Reconcile runs one step of a Canary's delivery.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	// The engine's memory is the status: a reconcile never acts on a state
	// older than the last one it wrote (a stale Progressing read after a
	// rollback would scale the canary back up and overwrite the rollback's
	// message). The cache is read when it holds that last write, the API
	// server otherwise (freshReader).
	cn := &meshv1alpha1.Canary{}
	reader := r.reader()
	if r.fresh != nil {
		// The cache when it holds this controller's last write.
		reader = r.fresh
	}
	patcher, err := status.Begin(ctx, r.Client, reader, req.NamespacedName, cn)
	if patcher == nil {
		if r.fresh != nil && err == nil {
			r.fresh.written.Delete(req.NamespacedName)
		}
		if err == nil {
			r.analysed.forget(req.NamespacedName)
		}
		return ctrl.Result{}, err
	}
	defer recordMetrics(cn)
	if r.fresh != nil {
		defer r.fresh.saw(req.NamespacedName, cn)
	}
	if !cn.DeletionTimestamp.IsZero() {
		// The finalizer's steps set their own conditions (Custom).
		err := r.finalize(ctx, cn)
		return status.Finish(ctx, patcher, cn, status.Summary{State: status.Custom}, err, meshv1alpha1.DeletingReason)
	}
	if controllerutil.AddFinalizer(cn, Finalizer) {
		// Persist the finalizer before anything is created.
		if err := patcher.Patch(ctx, cn); err != nil {
			return ctrl.Result{}, err
		}
	}
	before := cn.Status.DeepCopy()
	out, err := r.reconcile(ctx, cn)
	sum := setStatus(cn, out, err)
	r.analysed.hold(cn, before)
	r.record(cn, before, out)
	r.RecordDrift(cn, out.applied, err)
	log.FromContext(ctx).V(1).Info("reconciled", "phase", cn.Status.Phase, "weight", cn.Status.CanaryWeight, "error", err)
	res, err := status.Finish(ctx, patcher, cn, sum, err, meshv1alpha1.ApplyFailedReason)
	return sinceDecided(res, err, out.decidedAt, r.now()), err
}

// sinceDecided counts a requeue from the engine's now rather than from the
// end of the reconcile: what the writes took is subtracted (at least 1 ms
// is left, so the requeue stays).
func sinceDecided(res ctrl.Result, err error, decidedAt, now time.Time) ctrl.Result {
	if err == nil && res.RequeueAfter > 0 && !decidedAt.IsZero() {
		res.RequeueAfter = max(res.RequeueAfter-now.Sub(decidedAt), time.Millisecond)
	}
	return res
}

// result is what the phases found and did.
type result struct {
	provider     meshv1alpha1.Provider
	refsResolved bool
	// refErr is why a reference could not be resolved (terminal).
	refErr     error
	decision   *delivery.Decision
	breakGlass *meshv1alpha1.BreakGlass
	applied    apply.Result
	// weight is the canary weight of the route in place.
	weight    int32
	hasWeight bool
	scaled    []string
	// requeue is when the engine looks again, counted from decidedAt (the
	// engine's now): Reconcile subtracts the time its writes took, so an
	// analysis runs every interval, not every interval plus a reconcile.
	requeue   time.Duration
	decidedAt time.Time
}

// world is what a reconcile reads.
type world struct {
	n                     names
	target, primary       *appsv1.Deployment
	targetSel, primarySel map[string]string
	translator            mesh.TrafficTranslator
	routes                mesh.RouteReader
	provider              meshv1alpha1.Provider
	plan                  delivery.Plan
	// scope is the mesh as installed, seen from the namespace; bg the
	// BreakGlass covering it: both decide what a ResiliencePolicy adds to
	// the route (canary_controller_resilience.go).
	scope mesh.Scope
	bg    *meshv1alpha1.BreakGlass
	// alt is the other mesh of a move in progress, whose routes are
	// written beside these; nil when none.
	alt *alongside
}

// reconcile runs the phases: read, decide (the engine), converge.
func (r *Reconciler) reconcile(ctx context.Context, cn *meshv1alpha1.Canary) (result, error) {
	var out result
	w, err := r.read(ctx, cn, &out)
	if err != nil {
		return out, err
	}
	if bg := w.bg; bg != nil && incident.PinsTraffic(bg) {
		out.breakGlass = bg
	}
	out.decidedAt = r.now()
	d := r.decide(ctx, cn, w, out.breakGlass != nil, out.decidedAt)
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

// decide runs the engine. A Canary pinned by a BreakGlass routes
// everything to the primary and its delivery pauses where it is; only its
// initialization runs, with no call out.
func (r *Reconciler) decide(ctx context.Context, cn *meshv1alpha1.Canary, w *world, pinned bool, now time.Time) delivery.Decision {
	state := stateOf(cn)
	state.LastAnalysis = r.analysed.last(cn, state.LastAnalysis)
	obs := r.observe(cn, w, now)
	if !pinned {
		return delivery.Step(state, obs, r.probe(ctx, cn, w))
	}
	if state.Phase == "" || state.Phase == meshv1alpha1.CanaryPhaseInitializing {
		return delivery.Step(state, obs, nopProbe{})
	}
	return delivery.Decision{State: state, Route: delivery.Primary, Scale: delivery.ScaleFor(state.Phase),
		PromotePrimary: state.Phase == meshv1alpha1.CanaryPhasePromoting}
}

// read resolves the mesh and the references, and validates every route
// the strategy will need against the mesh before anything is written.
func (r *Reconciler) read(ctx context.Context, cn *meshv1alpha1.Canary, out *result) (*world, error) {
	bg, err := incident.ForNamespace(ctx, r.Client, cn.Namespace)
	if err != nil {
		return nil, err
	}
	found, err := r.Resolver.Resolve(ctx, cn.Namespace, cn.Spec.Provider)
	if err != nil {
		// Detaching injection removes the labels discovery reads: while
		// a BreakGlass covers the namespace the provider last resolved
		// is kept.
		if bg == nil || cn.Status.Provider == "" || !incident.Covers(bg, cn.Status.Provider) {
			return nil, err
		}
		found = discovery.Result{Provider: cn.Status.Provider}
	}
	out.provider = found.Provider
	// Another TrafficSplit or Canary routing the same Service wins;
	// nothing is created before this check.
	if err := overlap.Route(ctx, r.Client, cn); err != nil {
		return nil, err
	}
	w := &world{n: namesOf(cn), provider: found.Provider, plan: delivery.PlanFor(&cn.Spec), bg: bg}
	if w.translator, err = r.Registry.TrafficTranslator(found.Provider); err != nil {
		return nil, err
	}
	facts, err := mesh.ReadNamespaceFacts(ctx, r.Client, w.translator, cn.Namespace)
	if err != nil {
		return nil, err
	}
	w.translator = mesh.TrafficTranslatorIn(w.translator, facts)
	if w.scope, err = r.Scope(ctx, cn.Namespace, found); err != nil {
		return nil, err
	}
	w.scope.Namespace = facts
	// A ResiliencePolicy setting a field the Canary sets is decided
	// before anything is created.
	if _, err := compose.Resilience(ctx, r.Client, r.Registry, compose.Route{Owner: cn, Service: w.n.service}, w.scope, w.bg, nil); err != nil {
		return nil, err
	}
	if w.routes, err = r.Registry.RouteReader(found.Provider); err != nil {
		return nil, err
	}
	if err := r.resolveRefs(ctx, cn, w, out); err != nil {
		if outcome.IsTerminal(err) {
			out.refErr = err
		}
		return nil, err
	}
	out.refsResolved = true
	// The mesh as installed, in this namespace's data plane, must
	// enforce every route of the strategy; during a move both meshes must
	// (canary_controller_migrate.go).
	if err := r.checkStrategy(ctx, cn, w, found, w.translator); err != nil {
		return nil, err
	}
	if w.alt, err = r.readAlongside(ctx, cn, w, found); err != nil {
		return nil, err
	}
	if w.alt != nil {
		if err := r.checkStrategy(ctx, cn, w, w.alt.found, w.alt.translator); err != nil {
			return nil, fmt.Errorf("%s: %w", w.alt.why, err)
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

// resolveRefs reads the target Deployment, derives the selectors and
// checks the metrics server's Secret. A missing target or Secret is
// terminal (the Deployment watch re-checks the target); a target deleted
// mid-delivery first routes everything to the primary (targetGone).
func (r *Reconciler) resolveRefs(ctx context.Context, cn *meshv1alpha1.Canary, w *world, out *result) error {
	w.target = &appsv1.Deployment{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: w.n.target}, w.target); err != nil {
		if !apierrors.IsNotFound(err) {
			return err
		}
		if err := r.targetGone(ctx, cn, w, out); err != nil {
			return err
		}
		return outcome.Stalled(meshv1alpha1.ReferenceNotFoundReason,
			"Deployment %s/%s (spec.targetRef) does not exist; create it or fix the name (re-checked when it appears)", cn.Namespace, w.n.target)
	}
	var err error
	if w.targetSel, w.primarySel, err = selectors(w.target); err != nil {
		return err
	}
	if ref := cn.Spec.Analysis.MetricsServer; ref != nil && ref.SecretRef != nil {
		if _, err := r.credentials(ctx, cn); err != nil {
			return err
		}
	}
	return nil
}

func strategy(cn *meshv1alpha1.Canary) meshv1alpha1.CanaryStrategy {
	if cn.Spec.Strategy == "" {
		return meshv1alpha1.StrategyCanary
	}
	return cn.Spec.Strategy
}

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

func (r *Reconciler) observe(cn *meshv1alpha1.Canary, w *world, now time.Time) delivery.Observation {
	a := &cn.Spec.Analysis
	o := delivery.Observation{
		Now: now, TargetHash: TemplateHash(&w.target.Spec.Template),
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

// nopProbe opens every gate and passes every check; used where the
// engine must not call out (a pinned Canary initializing).
type nopProbe struct{}

func (nopProbe) Gate(meshv1alpha1.WebhookType) (bool, string) { return true, "" }
func (nopProbe) PreRollout() delivery.CheckResult             { return delivery.CheckResult{} }
func (nopProbe) Analyse() delivery.CheckResult                { return delivery.CheckResult{} }
func (nopProbe) RollbackRequested() (bool, string)            { return false, "" }
