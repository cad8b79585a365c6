// Package resiliencepolicy reconciles ResiliencePolicies: it resolves the
// mesh, reports per field and mesh what is enforced (status.support),
// decides overlaps (internal/overlap), translates the policy with the
// mesh's provider and server-side applies the outputs (internal/apply).
//
// Composition: when a TrafficSplit or a Canary routes the target Service,
// the policy's route-level fields (retries, request timeout, faults) are
// carried by its route (its controller composes them, internal/compose and
// mesh.RouteComposer) and the policy writes no route of its own, so one
// Service has one route per mesh. The composed route is owned by both
// (controller reference: the route owner; plain reference: the policy).
// The same field set by both is a Conflict on the younger. The route owner
// writes the composed route only once the policy's own route is gone, and
// the policy writes its own only once no composed route carries it (one
// whose route owner is gone is deleted), so a watcher never sees two.
//
// Shared fields: a mesh whose settings are annotations of the target
// Service (Linkerd) returns the Service among the outputs; the policy never
// creates or owns a Service, so it is applied as a shared object (only the
// annotations, apply.Owner.SharedKinds). Each annotation's previous value
// is recorded in status.sharedFields, with the finalizer, before the first
// write; deleting the policy restores them.
//
// BreakGlass: while a BreakGlass that relaxes policies covers the
// namespace, the policy is applied without fault injection, rate limits
// and outlier ejection (what can block traffic); when the BreakGlass goes,
// the namespace watch re-applies the policy as written. Outputs are owned
// and derived from the spec, so the restore is exact by construction; a
// lifted Service annotation gets its recorded previous value meanwhile.
//
// Shared fields: a mesh may set fields of the user's target Service (the
// lb-l7 annotations on Cilium). They are recorded with their previous
// values in status.sharedFields, with a finalizer, before the first write
// (outputs.ApplyShared), and restored when the policy drops them or is
// deleted (outputs.ReconcileShared).
//
// Trade-offs:
//   - A policy a mesh cannot fully enforce is refused whole
//     (UnsupportedFeature naming each field); the report says what each
//     mesh would do, so the user can drop fields or move.
//   - A switch between the policy's own route and a composed one leaves
//     the host without a route for a moment (the Service's default
//     routing) rather than with two.
package resiliencepolicy

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/compose"
	"github.com/meshplane/meshplane/internal/discovery"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/outputs"
	"github.com/meshplane/meshplane/internal/overlap"
	"github.com/meshplane/meshplane/internal/status"
)

// +kubebuilder:rbac:groups=meshplane.io,resources=resiliencepolicies,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=meshplane.io,resources=resiliencepolicies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=meshplane.io,resources=resiliencepolicies/finalizers,verbs=update
// +kubebuilder:rbac:groups=meshplane.io,resources=meshinstalls;trafficsplits;canaries,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=services;namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=services,verbs=patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Kind is the owner kind in labels and inventories.
const Kind = "ResiliencePolicy"

// controllerName is the controller's name: its --concurrent key and Event
// reporter.
const controllerName = "resiliencepolicy"

// Reconciler reconciles ResiliencePolicies.
type Reconciler struct {
	outputs.Deps
}

// Setup registers the controller with mgr.
func Setup(mgr *manager.Manager) error {
	r := &Reconciler{Deps: outputs.NewDeps(mgr.GetClient(), mgr, controllerName)}
	ofService := func(ctx context.Context, o client.Object) []reconcile.Request {
		return r.policiesFor(ctx, o.GetNamespace(), o.GetName())
	}
	ofPolicy := func(ctx context.Context, o client.Object) []reconcile.Request {
		return r.policiesFor(ctx, o.GetNamespace(), o.(*meshv1alpha1.ResiliencePolicy).Spec.TargetRef.Name)
	}
	ofRoute := func(ctx context.Context, o client.Object) []reconcile.Request {
		switch x := o.(type) {
		case *meshv1alpha1.TrafficSplit:
			return r.policiesFor(ctx, x.Namespace, x.Spec.Service.Name)
		case *meshv1alpha1.Canary:
			return r.policiesFor(ctx, x.Namespace, overlap.CanaryService(x))
		}
		return nil
	}
	return outputs.Controller(mgr, r.Client, outputs.Kind{
		Name: controllerName, Object: &meshv1alpha1.ResiliencePolicy{}, List: &meshv1alpha1.ResiliencePolicyList{},
		// A policy's deletion starting reconciles it (its finalizer
		// releases the fields it set on the target Service).
		Predicate: predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, outputs.DeletionStarted),
		Outputs:   mgr.Registry.ResilienceOutputKinds(),
	}).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(ofService)).
		// A route or another policy for the same Service decides
		// composition and Conflicts.
		Watches(&meshv1alpha1.TrafficSplit{}, handler.EnqueueRequestsFromMapFunc(ofRoute), builder.WithPredicates(overlap.Changes)).
		Watches(&meshv1alpha1.Canary{}, handler.EnqueueRequestsFromMapFunc(ofRoute), builder.WithPredicates(overlap.Changes)).
		Watches(&meshv1alpha1.ResiliencePolicy{}, handler.EnqueueRequestsFromMapFunc(ofPolicy), builder.WithPredicates(overlap.Changes)).
		Complete(r)
}

// policiesFor maps an object to the policies of namespace ns that target
// Service svc.
func (r *Reconciler) policiesFor(ctx context.Context, ns, svc string) []reconcile.Request {
	return outputs.Requests(ctx, r.Client, &meshv1alpha1.ResiliencePolicyList{}, ns, func(o client.Object) bool {
		return o.(*meshv1alpha1.ResiliencePolicy).Spec.TargetRef.Name == svc
	})
}

// Reconcile brings one ResiliencePolicy's outputs to its spec. A policy
// being deleted releases the fields it set on its target Service
// (restoring their previous values); owned outputs are left to the garbage
// collector (owner references), and a TrafficSplit that composed the
// policy recomposes without it (its watch).
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return outputs.ReconcileShared(ctx, &r.Deps, req.NamespacedName, &meshv1alpha1.ResiliencePolicy{}, Kind, record, r.reconcile,
		func(out result) outputs.Outcome { return outputs.Outcome{Provider: out.provider, Applied: out.applied} }, setStatus)
}

// result is what the phases found and did.
type result struct {
	provider meshv1alpha1.Provider
	// support is the per-field report; nil until the scope is known.
	support []meshv1alpha1.FieldSupport
	// composedWith is the TrafficSplit whose route carries the policy's
	// route-level fields.
	composedWith string
	applied      apply.Result
	// relaxedBy is the BreakGlass the policy is relaxed for.
	relaxedBy *meshv1alpha1.BreakGlass
}

func (r *Reconciler) reconcile(ctx context.Context, rp *meshv1alpha1.ResiliencePolicy, patcher *status.Patcher) (result, error) {
	var out result
	bg, err := incident.ForNamespace(ctx, r.Client, rp.Namespace)
	if err != nil {
		return out, err
	}
	found, err := r.Resolver.Resolve(ctx, rp.Namespace, rp.Spec.Provider)
	if err != nil {
		if bg == nil || rp.Status.Provider == "" || !incident.Covers(bg, rp.Status.Provider) {
			return out, err
		}
		// Detaching injection removes the labels discovery reads.
		found.Provider = rp.Status.Provider
	}
	out.provider = found.Provider
	objs, err := r.outputsFor(ctx, rp, found, bg, &out)
	if clash := (*mesh.RouteClashError)(nil); errors.As(err, &clash) {
		// The route stays, the policy's outputs go: the Service never
		// has both.
		if perr := r.pruneAll(ctx, rp); perr != nil {
			return out, perr
		}
		return out, err
	}
	if err != nil {
		return out, err
	}
	// While a MeshAdoption moves the namespace to another mesh, the other
	// mesh's outputs are written beside these, in the same apply
	// (internal/outputs).
	objs, err = r.Alongside(ctx, rp.Namespace, rp.Spec.Provider, found, objs, func(other discovery.Result) ([]client.Object, error) {
		return r.outputsFor(ctx, rp, other, bg, &result{})
	})
	if err != nil {
		return out, err
	}
	// Fields of the target Service (the lb-l7 annotations) are recorded
	// with their previous values before the first write.
	out.applied, err = r.ApplyShared(ctx, rp, Kind, record(rp), patcher, objs)
	return out, err
}

// outputsFor decides and translates the policy for the mesh found,
// recording in out what its status reports.
func (r *Reconciler) outputsFor(ctx context.Context, rp *meshv1alpha1.ResiliencePolicy, found discovery.Result, bg *meshv1alpha1.BreakGlass, out *result) ([]client.Object, error) {
	scope, err := r.Scope(ctx, rp.Namespace, found)
	if err != nil {
		return nil, err
	}
	prov, err := r.Registry.Get(found.Provider)
	if err != nil {
		return nil, err
	}
	// The waypoints that exist decide ambient namespaces.
	if scope.Namespace, err = mesh.ReadNamespaceFacts(ctx, r.Client, prov, rp.Namespace); err != nil {
		return nil, err
	}
	out.support = r.Registry.ResilienceReport(scope, &rp.Spec)
	// Each refused field is named, also by a mesh without a translator.
	if s, ok := prov.(mesh.ResilienceSupporter); ok {
		if err := mesh.DecideResilience(s, scope, &rp.Spec); err != nil {
			return nil, err
		}
	}
	translator, err := r.Registry.ResilienceTranslator(found.Provider)
	if err != nil {
		return nil, err
	}
	if err := overlap.Resilience(ctx, r.Client, rp); err != nil {
		return nil, err
	}
	svc, err := r.target(ctx, rp)
	if err != nil {
		return nil, err
	}
	composed, err := r.route(ctx, rp, found.Provider)
	if err != nil {
		return nil, err
	}
	if composed != nil {
		out.composedWith = composed.Name
	}
	effective := rp
	if incident.RelaxesPolicies(bg) && incident.Covers(bg, found.Provider) {
		effective, out.relaxedBy = incident.RelaxResilience(rp), bg
	}
	routed, err := overlap.RouteOf(ctx, r.Client, rp.Namespace, rp.Spec.TargetRef.Name)
	if err != nil {
		return nil, err
	}
	in := mesh.ResilienceInput{Policy: effective, Service: svc, Scope: scope, ComposedWith: composed, Routed: routed}
	if in.InboundTargets, err = r.inboundTargets(ctx, translator, effective); err != nil {
		return nil, err
	}
	return translator.TranslateResiliencePolicy(in)
}

// inboundTargets returns the namespace's inbound policy targets when the
// mesh attaches a rate limit to them and the policy sets one.
func (r *Reconciler) inboundTargets(ctx context.Context, t mesh.ResilienceTranslator, rp *meshv1alpha1.ResiliencePolicy) ([]unstructured.Unstructured, error) {
	reader, ok := t.(mesh.InboundTargetReader)
	if !ok || rp.Spec.RateLimit == nil {
		return nil, nil
	}
	return reader.ReadInboundTargets(ctx, r.APIReader, rp.Namespace)
}

// target returns the target Service; missing, or without the port, is
// terminal (the Service watch re-checks it).
func (r *Reconciler) target(ctx context.Context, rp *meshv1alpha1.ResiliencePolicy) (*corev1.Service, error) {
	svc := &corev1.Service{}
	ref := rp.Spec.TargetRef
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: rp.Namespace, Name: ref.Name}, svc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, outcome.Stalled(meshv1alpha1.ReferenceNotFoundReason, "spec.targetRef.name: Service %s/%s does not exist; create it or fix spec.targetRef.name (re-checked when it appears)", rp.Namespace, ref.Name)
		}
		return nil, err
	}
	if ref.Port != nil && !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == *ref.Port }) {
		var ports []int32
		for _, p := range svc.Spec.Ports {
			ports = append(ports, p.Port)
		}
		return nil, outcome.Stalled(meshv1alpha1.InvalidSpecReason, "spec.targetRef.port: Service %s has no port %d; set it to one of %v or leave it unset for every port", svc.Name, *ref.Port, ports)
	}
	return svc, nil
}

// route returns the TrafficSplit or Canary whose route carries the
// policy's route-level fields (as the TrafficSplit the translation is told
// about: a Canary's route is a TrafficSplit's translation), nil when the
// policy writes its own route. A composed route whose route owner is gone
// is deleted first, so the Service never has two. A route that cannot
// carry the fields (an HTTPRoute of output GatewayAPI; a mesh that does
// not compose) is a Conflict, and the policy's own route of an earlier
// generation is pruned first.
func (r *Reconciler) route(ctx context.Context, rp *meshv1alpha1.ResiliencePolicy, provider meshv1alpha1.Provider) (*meshv1alpha1.TrafficSplit, error) {
	if !mesh.HasRouteFields(&rp.Spec) {
		return nil, nil
	}
	svc := rp.Spec.TargetRef.Name
	owner, err := overlap.RouteOwnerOf(ctx, r.Client, rp.Namespace, svc)
	if err != nil {
		return nil, err
	}
	_, composes := r.Registry.RouteComposer(provider)
	ts, isSplit := owner.(*meshv1alpha1.TrafficSplit)
	gatewayAPI := isSplit && ts.Spec.Output == meshv1alpha1.OutputGatewayAPI
	// ownerLoses: the route owner sets a field this policy sets and is
	// the younger, so it is the Conflict and writes nothing.
	ownerLoses := owner != nil && len(mesh.ClashingRouteFields(overlap.RouteFieldsOf(owner), &rp.Spec)) > 0 && !overlap.YoungerThan(rp, owner)
	if owner != nil && composes && !gatewayAPI && !ownerLoses {
		return asRoute(owner), nil
	}
	if t, err := r.Registry.ResilienceTranslator(provider); err == nil {
		carrier, err := compose.CarriedBy(ctx, r.Client, rp, t.ResilienceOutputKinds())
		if err != nil || carrier != nil {
			// A route owner's route still carries the fields (it
			// recomposes without them when it reconciles).
			return asRoute(carrier), err
		}
	}
	if owner == nil || ownerLoses {
		// None routes the Service, or the route owner lost the Conflict:
		// the policy keeps its own route.
		return nil, nil
	}
	kind := "Canary"
	if isSplit {
		kind = "TrafficSplit"
	}
	blocker := fmt.Sprintf("%s %s routes Service %s and Meshplane does not compose its route with a ResiliencePolicy on %s; move retries, timeouts.request and faultInjection out of this policy while it exists",
		kind, owner.GetName(), svc, provider)
	if gatewayAPI {
		blocker = fmt.Sprintf("TrafficSplit %s routes Service %s with a Gateway API HTTPRoute, which cannot carry retries and faults; set its spec.output to Native", ts.Name, svc)
	}
	if err := r.pruneOwnRoutes(ctx, rp); err != nil {
		return nil, err
	}
	return nil, outcome.Conflict("%s (the policy's own route was removed so the Service has one route; re-checked when the route changes or goes away)", blocker)
}

// pruneAll removes every output of the policy (deleting owned ones,
// restoring the fields of the Service), for a policy whose outputs cannot
// apply next to another object's route.
func (r *Reconciler) pruneAll(ctx context.Context, rp *meshv1alpha1.ResiliencePolicy) error {
	if len(rp.Status.Inventory) == 0 {
		return nil
	}
	if _, err := r.Applier.Prune(ctx, owner(rp), rp.Status.Inventory); err != nil {
		return err
	}
	rp.Status.Inventory, rp.Status.SharedFields = nil, nil
	controllerutil.RemoveFinalizer(rp, outputs.SharedFieldsFinalizer)
	return nil
}

// asRoute returns the TrafficSplit a route owner's route is translated
// from: the split itself, or for a Canary one named as its route; nil for
// nil.
func asRoute(owner client.Object) *meshv1alpha1.TrafficSplit {
	switch x := owner.(type) {
	case *meshv1alpha1.TrafficSplit:
		return x
	case *meshv1alpha1.Canary:
		return &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: x.Name, Namespace: x.Namespace},
			Spec: meshv1alpha1.TrafficSplitSpec{Service: meshv1alpha1.ServiceReference{Name: overlap.CanaryService(x)}}}
	}
	return nil
}

// pruneOwnRoutes deletes the policy's own VirtualService of an earlier
// generation and drops it from the inventory.
func (r *Reconciler) pruneOwnRoutes(ctx context.Context, rp *meshv1alpha1.ResiliencePolicy) error {
	var routes, keep []meshv1alpha1.ObjectReference
	for _, ref := range rp.Status.Inventory {
		if ref.Kind == "VirtualService" || ref.Kind == "HTTPRoute" {
			routes = append(routes, ref)
		} else {
			keep = append(keep, ref)
		}
	}
	if len(routes) == 0 {
		return nil
	}
	if _, err := r.Applier.Prune(ctx, apply.Owner{Object: rp, Kind: Kind}, routes); err != nil {
		return err
	}
	rp.Status.Inventory = keep
	return nil
}
