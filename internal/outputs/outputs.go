// Package outputs holds what the controllers of the namespaced kinds that
// translate into mesh outputs (TrafficSplit, ZeroTrustPolicy, Canary)
// share: their dependencies, the common part of their watches, the
// requests for the objects of a namespace and the Event of a writing
// reconcile. The kind-specific phases stay in controllers/<kind>.
package outputs

import (
	"context"
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/discovery"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/status"
)

// Deps are what a controller that translates objects into mesh outputs
// needs.
type Deps struct {
	// Client reads through the cache and writes.
	Client client.Client
	// APIReader reads without the cache, for kinds no controller watches
	// (pods, listed once per reconcile where a mesh needs them).
	APIReader client.Reader
	// Registry resolves providers.
	Registry *mesh.Registry
	// Resolver finds the mesh of a namespace.
	Resolver *discovery.Resolver
	// Applier writes outputs.
	Applier *apply.Applier
	// Events records one Event per writing reconcile.
	Events events.EventRecorder
}

// NewDeps builds Deps on c: the manager's client, or a test's client that
// counts writes. name is the controller's (its Event reporter).
func NewDeps(c client.Client, mgr *manager.Manager, name string) Deps {
	return Deps{
		Client:    c,
		APIReader: mgr.GetAPIReader(),
		Registry:  mgr.Registry,
		Resolver:  &discovery.Resolver{Reader: c, Registry: mgr.Registry},
		Applier:   &apply.Applier{Client: c, Scheme: mgr.GetScheme(), APIReader: mgr.GetAPIReader()},
		Events:    mgr.EventRecorder(name),
	}
}

// Kind describes the kind a controller reconciles for Controller.
type Kind struct {
	// Name is the controller's name (lower-case kind): its --concurrent
	// key and Event reporter.
	Name string
	// Object and List are an empty object and list of the kind.
	Object client.Object
	List   client.ObjectList
	// Predicate filters the kind's own events.
	Predicate predicate.Predicate
	// Outputs are the output kinds the providers write; those the API
	// server serves are watched (Owns), so drift is repaired, and the
	// others from when their CRDs appear (late.go).
	Outputs []client.Object
	// ObservesOutputs: the kind's status follows its outputs' status (an
	// IngressGateway reports its Gateway programmed at its generation), so
	// its own writes of an output must reconcile it again; otherwise they
	// are dropped (ownWrites).
	ObservesOutputs bool
}

// Controller starts the controller of k: named, with its --concurrent
// options, watching the kind, every served output kind, and namespaces
// whose labels or annotations change (a namespace moving to another mesh
// switches the provider; a BreakGlass engaging annotates it), and
// MeshInstalls whose spec changes (what a mesh can enforce depends on how
// it is installed, so a refusal is re-decided). The caller adds its own
// watches and completes the builder.
func Controller(mgr *manager.Manager, c client.Reader, k Kind) *builder.Builder {
	inNamespace := func(ctx context.Context, o client.Object) []reconcile.Request {
		return Requests(ctx, c, k.List, o.GetName(), nil)
	}
	b := ctrl.NewControllerManagedBy(mgr).Named(k.Name).
		WithOptions(mgr.ControllerOptions(k.Name)).
		For(k.Object, builder.WithPredicates(k.Predicate)).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(inNamespace),
			builder.WithPredicates(predicate.Or(predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&meshv1alpha1.MeshInstall{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request {
			return Requests(ctx, c, k.List, "", nil)
		}), builder.WithPredicates(predicate.GenerationChangedPredicate{}))
	served := apply.Served(mgr.GetRESTMapper(), mgr.GetScheme(), k.Outputs...)
	var missing []client.Object
	var outputEvents predicate.Predicate = ownWrites
	if k.ObservesOutputs {
		outputEvents = predicate.Funcs{}
	}
	for _, o := range k.Outputs {
		if contains(served, o) {
			b = b.Owns(o, builder.WithPredicates(outputEvents))
		} else {
			missing = append(missing, o)
		}
	}
	if len(missing) > 0 {
		// Watched once their CRDs appear (late.go).
		b = b.WatchesRawSource(lateOutputs(mgr, k, missing))
	}
	// Data-plane facts (Istio waypoints) decide the translation of every
	// object of their namespace.
	ofNamespace := func(ctx context.Context, o client.Object) []reconcile.Request {
		return Requests(ctx, c, k.List, o.GetNamespace(), nil)
	}
	for _, o := range apply.Served(mgr.GetRESTMapper(), mgr.GetScheme(), mgr.Registry.DataPlaneKinds()...) {
		b = b.Watches(o, handler.EnqueueRequestsFromMapFunc(ofNamespace), builder.WithPredicates(dataPlaneChanged(mgr.Registry)))
	}
	return b
}

// ownWrites drops the creation of an output: only its owner's reconcile
// creates an object with that owner reference, and that reconcile records
// it, so a reconcile on the creation would only read the owner again —
// from a cache that may not hold the status just written yet, making its
// status patch a Conflict and a retry. Changes and deletions by others are
// still seen.
// An update that changed the applied-hash annotation to a new value is the
// owner's own apply (the hash is of the desired state it wrote), dropped
// for the same reason; a change by another writer leaves the hash as it
// was (or removes it) and is seen, so drift is still repaired at once.
var ownWrites = predicate.Funcs{
	CreateFunc: func(event.CreateEvent) bool { return false },
	UpdateFunc: func(e event.UpdateEvent) bool {
		old, now := e.ObjectOld.GetAnnotations()[apply.HashAnnotation], e.ObjectNew.GetAnnotations()[apply.HashAnnotation]
		return now == "" || now == old
	},
}

// Requests lists the objects of list's kind in namespace ns and returns a
// request for each that keep accepts (every one when keep is nil). A
// failed List maps to no request; the next resync catches up.
func Requests(ctx context.Context, c client.Reader, list client.ObjectList, ns string, keep func(client.Object) bool) []reconcile.Request {
	l := list.DeepCopyObject().(client.ObjectList)
	// Read only: the cache's objects are not copied.
	if err := c.List(ctx, l, client.InNamespace(ns), client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	items, err := meta.ExtractList(l)
	if err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(items))
	for _, it := range items {
		o, ok := it.(client.Object)
		if !ok || (keep != nil && !keep(o)) {
			continue
		}
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)})
	}
	return out
}

// Record emits the one Event of a reconcile that wrote, a warning Event
// per drift fight it repaired, sets DriftDetected (MarkDrift) and logs the
// reconcile.
func (d *Deps) Record(ctx context.Context, obj status.Object, provider meshv1alpha1.Provider, res apply.Result, err error) {
	if res.Wrote() {
		d.Events.Eventf(obj, nil, corev1.EventTypeNormal, "Applied", "Apply", "%s", res.Note())
	}
	d.RecordDrift(obj, res, err)
	log.FromContext(ctx).V(1).Info("reconciled", "provider", provider, "wrote", res.Wrote(), "error", err)
}

// RecordDrift emits a warning Event (reason DriftFight) when a reconcile
// repaired outputs in a drift fight, and sets DriftDetected on obj:
// True naming the outputs, the other field managers and the fields while a
// fight goes on, removed once a reconcile ends without one.
func (d *Deps) RecordDrift(obj status.Object, res apply.Result, err error) {
	st := obj.GetCommonStatus()
	if len(res.Drift) == 0 {
		if w, ok := outcome.AsWait(err); !ok || w.Reason != meshv1alpha1.DriftFightReason {
			status.Remove(st, meshv1alpha1.DriftDetectedCondition)
		}
		return
	}
	notes := make([]string, 0, len(res.Drift))
	for _, dr := range res.Drift {
		notes = append(notes, dr.String())
	}
	msg := "drift fight: " + strings.Join(notes, "; ") +
		"; Meshplane owns these fields and repairs them with exponential back-off: stop the other writer or remove the fields from its configuration"
	if err == nil && res.Wrote() {
		d.Events.Eventf(obj, nil, corev1.EventTypeWarning, meshv1alpha1.DriftFightReason, "Repair", "%s", msg)
	}
	status.Set(st, obj.GetGeneration(), meshv1alpha1.DriftDetectedCondition, metav1.ConditionTrue, meshv1alpha1.DriftFightReason, msg)
}

// dataPlaneChanged passes the events of objects the data-plane facts
// depend on: created or deleted, or updated in labels or spec while they
// mattered before or after. Every other Service of a namespace is ignored,
// so creating Services does not enqueue the namespace's every object.
func dataPlaneChanged(reg *mesh.Registry) predicate.Predicate {
	return predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return reg.IsDataPlaneObject(e.Object) },
		DeleteFunc:  func(e event.DeleteEvent) bool { return reg.IsDataPlaneObject(e.Object) },
		GenericFunc: func(e event.GenericEvent) bool { return reg.IsDataPlaneObject(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool {
			if !reg.IsDataPlaneObject(e.ObjectOld) && !reg.IsDataPlaneObject(e.ObjectNew) {
				return false
			}
			return !maps.Equal(e.ObjectOld.GetLabels(), e.ObjectNew.GetLabels()) || e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration()
		},
	}
}
