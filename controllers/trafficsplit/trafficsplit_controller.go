// Package trafficsplit reconciles TrafficSplits: it resolves the mesh,
// checks the referenced Services, translates the split with the mesh's
// provider and server-side applies the outputs (internal/apply).
//
// Outputs carry an owner reference, so the garbage collector deletes them
// with the split and no finalizer is needed. A spec the mesh cannot express
// leaves the outputs of the last good generation in place (traffic keeps
// flowing as before) and reports UnsupportedFeature; nothing of the new
// generation is applied. A split whose Service another TrafficSplit or a
// Canary already routes is a Conflict (internal/overlap).
package trafficsplit

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/discovery"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/outputs"
	"github.com/meshplane/meshplane/internal/overlap"
	"github.com/meshplane/meshplane/internal/status"
)

// +kubebuilder:rbac:groups=meshplane.io,resources=trafficsplits,verbs=get;list;watch
// +kubebuilder:rbac:groups=meshplane.io,resources=trafficsplits/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=meshplane.io,resources=meshinstalls;canaries,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=services;namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// The output kinds' rules are beside the providers (internal/mesh/<mesh>).

// Kind is the owner kind in labels and inventories.
const Kind = "TrafficSplit"

// controllerName is the controller's name: its --concurrent key and Event reporter.
const controllerName = "trafficsplit"

// Reconciler reconciles TrafficSplits.
type Reconciler struct {
	outputs.Deps
}

// Setup registers the controller with mgr.
func Setup(mgr *manager.Manager) error {
	r := &Reconciler{Deps: outputs.NewDeps(mgr.GetClient(), mgr, controllerName)}
	return outputs.Controller(mgr, r.Client, outputs.Kind{
		Name: controllerName, Object: &meshv1alpha1.TrafficSplit{}, List: &meshv1alpha1.TrafficSplitList{},
		Predicate: predicate.GenerationChangedPredicate{}, Outputs: mgr.Registry.TrafficOutputKinds(),
	}).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.splitsForService)).
		// Another route of the same Service appearing, changing or going
		// away may decide a Conflict (internal/overlap).
		Watches(&meshv1alpha1.TrafficSplit{}, overlap.EnqueueRoutes(r.Client, &meshv1alpha1.TrafficSplitList{}), builder.WithPredicates(overlap.Changes)).
		Watches(&meshv1alpha1.Canary{}, overlap.EnqueueRoutes(r.Client, &meshv1alpha1.TrafficSplitList{}), builder.WithPredicates(overlap.Changes)).
		// A ResiliencePolicy for the split's Service is composed into its
		// route (trafficsplit_controller_resilience.go).
		Watches(&meshv1alpha1.ResiliencePolicy{}, handler.EnqueueRequestsFromMapFunc(r.splitsForPolicy), builder.WithPredicates(overlap.Changes)).
		Complete(r)
}

// splitsForService maps a Service to the splits of its namespace that
// reference it (root, backend or mirror).
func (r *Reconciler) splitsForService(ctx context.Context, o client.Object) []reconcile.Request {
	return outputs.Requests(ctx, r.Client, &meshv1alpha1.TrafficSplitList{}, o.GetNamespace(), func(ts client.Object) bool {
		return slices.Contains(serviceNames(&ts.(*meshv1alpha1.TrafficSplit).Spec), o.GetName())
	})
}

// Reconcile brings one TrafficSplit's outputs to its spec.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ts := &meshv1alpha1.TrafficSplit{}
	patcher, err := status.Begin(ctx, r.Client, r.Client, req.NamespacedName, ts)
	if patcher == nil || !ts.DeletionTimestamp.IsZero() {
		// Gone, or being deleted: the garbage collector deletes the
		// outputs (owner references).
		return ctrl.Result{}, err
	}
	out, err := r.reconcile(ctx, ts)
	sum := setStatus(ts, out, err)
	r.Record(ctx, ts, out.provider, out.applied, err)
	return status.Finish(ctx, patcher, ts, sum, err, meshv1alpha1.ApplyFailedReason)
}

// result is what the phases found.
type result struct {
	provider     meshv1alpha1.Provider
	refsResolved bool
	// refErr is why a reference could not be resolved (terminal).
	refErr  error
	applied apply.Result
	// pinnedBy is the BreakGlass that pinned the split to its stable
	// backend, if any.
	pinnedBy *meshv1alpha1.BreakGlass
}

func (r *Reconciler) reconcile(ctx context.Context, ts *meshv1alpha1.TrafficSplit) (result, error) {
	var out result
	bg, err := incident.ForNamespace(ctx, r.Client, ts.Namespace)
	if err != nil {
		return out, err
	}
	found, err := r.provider(ctx, ts, bg)
	if err != nil {
		return out, err
	}
	out.provider = found.Provider
	// Another TrafficSplit or Canary routing the same Service wins.
	if err := overlap.Route(ctx, r.Client, ts); err != nil {
		return out, err
	}
	objs, err := r.outputsFor(ctx, ts, found, bg, &out)
	if err != nil {
		return out, err
	}
	// While a MeshAdoption moves the namespace to another mesh, the other
	// mesh's outputs are written beside these (internal/outputs).
	objs, err = r.Alongside(ctx, ts.Namespace, ts.Spec.Provider, found, objs, func(other discovery.Result) ([]client.Object, error) {
		return r.outputsFor(ctx, ts, other, bg, &result{})
	})
	if err != nil {
		return out, err
	}
	out.applied, err = r.Apply(ctx, apply.Owner{Object: ts, Kind: Kind}, objs, ts.Status.Inventory)
	return out, err
}

// outputsFor translates the split for the mesh found, recording in out
// what its status reports.
func (r *Reconciler) outputsFor(ctx context.Context, ts *meshv1alpha1.TrafficSplit, found discovery.Result, bg *meshv1alpha1.BreakGlass, out *result) ([]client.Object, error) {
	provider := found.Provider
	translator, err := r.Registry.TrafficTranslator(provider)
	if err != nil {
		return nil, err
	}
	resolved, err := r.resolveRefs(ctx, ts, provider)
	if err != nil {
		if outcome.IsTerminal(err) {
			out.refErr = err
		}
		return nil, err
	}
	out.refsResolved = true
	if incident.PinsTraffic(bg) && incident.Covers(bg, provider) {
		resolved, out.pinnedBy = Pin(resolved), bg
	}
	// What the mesh can enforce depends on how it was installed and on the
	// namespace's data plane, not on the provider alone.
	scope, err := r.Decide(ctx, ts.Namespace, found, mesh.TrafficSplitRequirements(&resolved.Spec)...)
	if err != nil {
		return nil, err
	}
	facts, err := mesh.ReadNamespaceFacts(ctx, r.Client, translator, ts.Namespace)
	if err != nil {
		return nil, err
	}
	objs, err := mesh.TranslateTrafficSplit(translator, resolved, facts)
	if err != nil {
		return nil, err
	}
	return r.composeResilience(ctx, ts, scope, bg, objs)
}

// provider resolves the split's mesh. Detaching injection removes the
// namespace labels discovery reads, so while a BreakGlass covers the
// namespace the provider last resolved is kept.
func (r *Reconciler) provider(ctx context.Context, ts *meshv1alpha1.TrafficSplit, bg *meshv1alpha1.BreakGlass) (discovery.Result, error) {
	found, err := r.Resolver.Resolve(ctx, ts.Namespace, ts.Spec.Provider)
	if err == nil {
		return found, nil
	}
	if bg != nil && ts.Status.Provider != "" && incident.Covers(bg, ts.Status.Provider) {
		return discovery.Result{Provider: ts.Status.Provider}, nil
	}
	return discovery.Result{}, err
}

// serviceField is the first field of spec that names Service name.
func serviceField(spec *meshv1alpha1.TrafficSplitSpec, name string) string {
	if spec.Service.Name == name {
		return "spec.service.name"
	}
	for i, b := range spec.Backends {
		if b.Name == name {
			return fmt.Sprintf("spec.backends[%d].name", i)
		}
	}
	for i, r := range spec.Rules {
		for j, b := range r.Backends {
			if b.Name == name {
				return fmt.Sprintf("spec.rules[%d].backends[%d].name", i, j)
			}
		}
	}
	return "spec.mirror.backend.name"
}

func serviceNames(spec *meshv1alpha1.TrafficSplitSpec) []string {
	names := []string{spec.Service.Name}
	for _, b := range spec.Backends {
		names = append(names, b.Name)
	}
	for _, r := range spec.Rules {
		for _, b := range r.Backends {
			names = append(names, b.Name)
		}
	}
	if spec.Mirror != nil {
		names = append(names, spec.Mirror.Backend.Name)
	}
	return names
}

// resolveRefs checks that every Service exists and has the ports used (a
// missing one is terminal: the Service watch re-checks it), and
// returns a copy of ts whose spec.service.port is filled in when the root
// Service has a single port.
func (r *Reconciler) resolveRefs(ctx context.Context, ts *meshv1alpha1.TrafficSplit, provider meshv1alpha1.Provider) (*meshv1alpha1.TrafficSplit, error) {
	out := ts.DeepCopy()
	services := map[string]*corev1.Service{}
	for _, name := range serviceNames(&ts.Spec) {
		if services[name] != nil {
			continue
		}
		svc := &corev1.Service{}
		if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ts.Namespace, Name: name}, svc); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, outcome.Stalled(meshv1alpha1.ReferenceNotFoundReason, "%s: Service %s/%s does not exist; create it or fix %[1]s (re-checked when it appears)", serviceField(&ts.Spec, name), ts.Namespace, name)
			}
			return nil, err
		}
		services[name] = svc
	}
	root := services[ts.Spec.Service.Name]
	switch {
	case ts.Spec.Service.Port != nil:
		if !hasPort(root, *ts.Spec.Service.Port) {
			return nil, outcome.Stalled(meshv1alpha1.InvalidSpecReason, "Service %s has no port %d; set spec.service.port to one of %v", root.Name, *ts.Spec.Service.Port, ports(root))
		}
	case len(root.Spec.Ports) == 1:
		p := root.Spec.Ports[0].Port
		out.Spec.Service.Port = &p
	default:
		return nil, outcome.Stalled(meshv1alpha1.InvalidSpecReason, "Service %s has ports %v; set spec.service.port to the one to split", root.Name, ports(root))
	}
	rootPort := *out.Spec.Service.Port
	// A UDP-only port is refused: HTTP routing would apply to nothing.
	if err := mesh.CheckServicePort(provider, "spec.service.port", root, rootPort); err != nil {
		return nil, err
	}
	check := func(b meshv1alpha1.WeightedBackend, where string) error {
		port := rootPort
		if b.Port != nil {
			port = *b.Port
		}
		if !hasPort(services[b.Name], port) {
			return outcome.Stalled(meshv1alpha1.InvalidSpecReason, "%s: Service %s has no port %d (ports %v); set the backend's port", where, b.Name, port, ports(services[b.Name]))
		}
		return mesh.CheckServicePort(provider, where+".port", services[b.Name], port)
	}
	for i, b := range ts.Spec.Backends {
		if err := check(b, fmt.Sprintf("spec.backends[%d]", i)); err != nil {
			return nil, err
		}
	}
	for i, rule := range ts.Spec.Rules {
		for j, b := range rule.Backends {
			if err := check(b, fmt.Sprintf("spec.rules[%d].backends[%d]", i, j)); err != nil {
				return nil, err
			}
		}
	}
	if m := ts.Spec.Mirror; m != nil {
		if err := check(meshv1alpha1.WeightedBackend{Name: m.Backend.Name, Port: m.Backend.Port}, "spec.mirror.backend"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func hasPort(svc *corev1.Service, port int32) bool {
	return slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == port })
}

func ports(svc *corev1.Service) []int32 {
	var out []int32
	for _, p := range svc.Spec.Ports {
		out = append(out, p.Port)
	}
	return out
}
