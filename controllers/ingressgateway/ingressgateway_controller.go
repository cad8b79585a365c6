// Package ingressgateway reconciles IngressGateways: a meshed ingress
// through Gateway API. It resolves the mesh, translates the gateway with
// the mesh's IngressTranslator (a Gateway of the mesh's class, or on
// Linkerd of the user's class with the proxy injected into its pods),
// decides for the mesh as installed, checks the GatewayClass exists and is
// accepted, and server-side applies the Gateway (internal/apply), dry-run
// first. It then reads back what the class's controller reports (Accepted,
// Programmed, addresses) and, per mesh, whether the gateway reaches its
// backends over mTLS.
//
// The Gateway is namespaced and carries an owner reference: the garbage
// collector deletes it with the IngressGateway, so no finalizer is needed.
// A Gateway of the same name that Meshplane did not write is a Conflict,
// never taken over.
//
// # Trade-offs
//
//   - Ready means programmed: the IngressGateway is Ready only once the
//     class's controller reports the Gateway Programmed; until then it is
//     Reconciling (GatewayNotProgrammed) at its current generation. The
//     Gateway is watched, so its status changes reconcile.
//   - Linkerd's answer on mTLS comes from the gateway's pods (labelled by
//     Meshplane through spec.infrastructure.labels), read without the cache
//     (one List per reconcile, Linkerd only) so no pod informer is kept;
//     pods are not watched, so the answer is re-read every podRecheck while
//     it is not Yes, and on every Gateway change.
//   - BreakGlass relaxes nothing here: an ingress gateway blocks no traffic
//     that a BreakGlass would need to let through. It keeps serving during
//     an incident, on the mesh that served it even when the BreakGlass
//     removed the namespace's marks; see docs/ingress.md.
package ingressgateway

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outputs"
	"github.com/meshplane/meshplane/internal/status"
)

// +kubebuilder:rbac:groups=meshplane.io,resources=ingressgateways,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=meshplane.io,resources=ingressgateways/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=meshplane.io,resources=ingressgateways/finalizers,verbs=update
// +kubebuilder:rbac:groups=meshplane.io,resources=meshinstalls,verbs=get;list;watch
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gateways,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gatewayclasses,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods,verbs=list
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

const (
	// Kind is the owner kind in labels and inventories.
	Kind = "IngressGateway"
	// controllerName is the controller's name: its --concurrent key and
	// Event reporter.
	controllerName = "ingressgateway"
	// podRecheck is how often a gateway whose pods decide the mTLS answer
	// is re-read while the answer is not Yes.
	podRecheck = 5 * time.Minute
)

// Reconciler reconciles IngressGateways.
type Reconciler struct{ outputs.Deps }

// Setup registers the controller with mgr: the gateways (spec changes),
// their Gateways (status changes included: they decide Ready), and the
// GatewayClasses, whose appearance or acceptance re-decides a refusal.
func Setup(mgr *manager.Manager) error {
	r := &Reconciler{outputs.NewDeps(mgr.GetClient(), mgr, controllerName)}
	kind := outputs.Kind{Name: controllerName, Object: &meshv1alpha1.IngressGateway{}, List: &meshv1alpha1.IngressGatewayList{},
		Predicate: predicate.GenerationChangedPredicate{}, Outputs: mgr.Registry.IngressOutputKinds(), ObservesOutputs: true}
	b := outputs.Controller(mgr, r.Client, kind)
	class := &gatewayv1.GatewayClass{TypeMeta: metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: "GatewayClass"}}
	if len(apply.Served(mgr.GetRESTMapper(), mgr.GetScheme(), class)) == 1 {
		b = b.Watches(class, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request {
			return outputs.Requests(ctx, r.Client, kind.List, "", nil)
		}))
	}
	return b.Complete(r)
}

// Reconcile brings one IngressGateway's Gateway to its spec and reports
// what serves it.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	g := &meshv1alpha1.IngressGateway{}
	patcher, err := status.Begin(ctx, r.Client, r.Client, req.NamespacedName, g)
	if patcher == nil || !g.DeletionTimestamp.IsZero() {
		// Deleting: the garbage collector deletes the Gateway.
		return ctrl.Result{}, err
	}
	out, err := r.reconcile(ctx, g)
	r.Record(ctx, g, out.provider, out.applied, err)
	return status.Finish(ctx, patcher, g, setStatus(g, out, err), err, meshv1alpha1.ApplyFailedReason)
}

// result is what the phases found and did.
type result struct {
	provider meshv1alpha1.Provider
	class    string
	applied  apply.Result
	// observed is what the class's controller reports, nil before the
	// Gateway is in the cache.
	observed *gatewayv1.Gateway
	mtls     mesh.MTLSReport
	// readsPods says the mTLS answer comes from the gateway's pods.
	readsPods bool
}

// reconcile runs the phases: the mesh, the translation (its refusals name
// a field), the decision for the mesh as installed, the class, the apply
// and the observation.
func (r *Reconciler) reconcile(ctx context.Context, g *meshv1alpha1.IngressGateway) (result, error) {
	var out result
	provider, err := r.provider(ctx, g)
	if err != nil {
		return out, err
	}
	found, err := r.Resolver.Resolve(ctx, g.Namespace, provider)
	if err != nil {
		return out, err
	}
	out.provider = found.Provider
	tr, err := r.Registry.IngressTranslator(found.Provider)
	if err != nil {
		return out, err
	}
	scope, err := r.Scope(ctx, g.Namespace, found)
	if err != nil {
		return out, err
	}
	objs, class, err := r.Registry.TranslateIngress(g, scope, func(name string) (mesh.GatewayClassFacts, error) {
		return r.readClass(ctx, name)
	})
	if err != nil {
		return out, err
	}
	out.class = class
	plan, err := r.PrepareToCommit(ctx, apply.Owner{Object: g, Kind: Kind}, objs, g.Status.Inventory)
	if err != nil {
		out.applied = plan.Failed()
		return out, err
	}
	if out.applied, err = plan.Commit(ctx); err != nil {
		return out, err
	}
	return r.observe(ctx, g, tr, scope, out)
}

// provider is spec.provider, except while a BreakGlass covers the
// namespace for the mesh that last served the gateway: the BreakGlass may
// have removed the namespace's marks (injection labels), and the gateway
// keeps that mesh, so its Gateway stays in force and reconciled through
// the incident (an ingress gateway relaxes nothing).
func (r *Reconciler) provider(ctx context.Context, g *meshv1alpha1.IngressGateway) (meshv1alpha1.Provider, error) {
	if g.Spec.Provider != "" || g.Status.Provider == "" {
		return g.Spec.Provider, nil
	}
	bg, err := incident.ForNamespace(ctx, r.Client, g.Namespace)
	if err != nil || bg == nil || !incident.Covers(bg, g.Status.Provider) {
		return g.Spec.Provider, err
	}
	return g.Status.Provider, nil
}

// readClass reads the GatewayClass through the cache.
func (r *Reconciler) readClass(ctx context.Context, name string) (mesh.GatewayClassFacts, error) {
	facts := mesh.GatewayClassFacts{Name: name}
	gc := &gatewayv1.GatewayClass{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: name}, gc); err != nil {
		if apierrors.IsNotFound(err) {
			return facts, nil
		}
		return facts, fmt.Errorf("reading GatewayClass %s: %w", name, err)
	}
	facts.Exists, facts.Controller = true, string(gc.Spec.ControllerName)
	if c := apimeta.FindStatusCondition(gc.Status.Conditions, string(gatewayv1.GatewayClassConditionStatusAccepted)); c != nil {
		facts.Accepted, facts.Reason, facts.Message = c.Status == metav1.ConditionTrue, c.Reason, c.Message
	}
	return facts, nil
}

// observe reads the Gateway back from the cache (absent right after its
// creation: its watch event reconciles again) and, where the mesh asks,
// the gateway's pods, and answers the mTLS question.
func (r *Reconciler) observe(ctx context.Context, g *meshv1alpha1.IngressGateway, tr mesh.IngressTranslator, s mesh.Scope, out result) (result, error) {
	gw := &gatewayv1.Gateway{}
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(g), gw); err == nil {
		out.observed = gw
	} else if !apierrors.IsNotFound(err) {
		return out, fmt.Errorf("reading Gateway %s: %w", g.Name, err)
	}
	obs := mesh.GatewayObservation{Programmed: conditionTrue(out.observed, gatewayv1.GatewayConditionProgrammed)}
	if out.readsPods = tr.IngressReadsPods(); out.readsPods {
		pods := &corev1.PodList{}
		if err := r.APIReader.List(ctx, pods, client.MatchingLabels{
			mesh.IngressGatewayLabel: g.Name, mesh.IngressGatewayNamespaceLabel: g.Namespace}); err != nil {
			return out, fmt.Errorf("listing the pods of gateway %s: %w", g.Name, err)
		}
		obs.Pods = pods.Items
	}
	out.mtls = tr.BackendMTLS(g, s, obs)
	return out, nil
}

// gatewayCondition returns the Gateway's condition typ when it describes
// the Gateway's current generation, nil otherwise.
func gatewayCondition(gw *gatewayv1.Gateway, typ gatewayv1.GatewayConditionType) *metav1.Condition {
	if gw == nil {
		return nil
	}
	c := apimeta.FindStatusCondition(gw.Status.Conditions, string(typ))
	if c == nil || c.ObservedGeneration < gw.Generation {
		return nil
	}
	return c
}

func conditionTrue(gw *gatewayv1.Gateway, typ gatewayv1.GatewayConditionType) bool {
	c := gatewayCondition(gw, typ)
	return c != nil && c.Status == metav1.ConditionTrue
}
