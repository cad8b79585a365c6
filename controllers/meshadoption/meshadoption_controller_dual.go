package meshadoption

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/delivery"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/overlap"
)

// routedOutputs are the target mesh's outputs, for the namespace as it
// will be (sc), of its Canaries, ResiliencePolicies and EgressPolicies
// that name no provider, as their controllers write them beside the old
// mesh's during a move: the route of each Canary that routes (one still
// initializing has no route in either mesh), each ResiliencePolicy's own
// objects (its route-level fields carried by a TrafficSplit's or Canary's
// route when the target composes them), each EgressPolicy's objects. The target Service, a shared object a mesh
// annotates, exists already and is not waited for.
func (r *Reconciler) routedOutputs(ctx context.Context, ns string, provider meshv1alpha1.Provider, sc mesh.Scope) ([]output, error) {
	var cn meshv1alpha1.CanaryList
	var rp meshv1alpha1.ResiliencePolicyList
	var ep meshv1alpha1.EgressPolicyList
	for _, l := range []client.ObjectList{&cn, &rp, &ep} {
		if err := r.List(ctx, l, client.InNamespace(ns)); err != nil {
			return nil, err
		}
	}
	var out []output
	for i := range cn.Items {
		x := &cn.Items[i]
		if x.Spec.Provider != "" || x.Status.Phase == "" || x.Status.Phase == meshv1alpha1.CanaryPhaseInitializing {
			continue
		}
		t, err := r.Registry.TrafficTranslator(provider)
		if err != nil {
			return nil, err
		}
		objs, err := mesh.TranslateTrafficSplit(t, canaryRoute(x, delivery.Primary), sc.Namespace)
		if err != nil {
			return nil, fmt.Errorf("%s %s/%s: %w", "Canary", ns, x.Name, err)
		}
		for _, o := range objs {
			out = append(out, output{"Canary", x.Name, o})
		}
	}
	for i := range rp.Items {
		x := &rp.Items[i]
		if x.Spec.Provider != "" {
			continue
		}
		objs, err := r.resilienceOutputs(ctx, x, provider, sc)
		if err != nil {
			return nil, fmt.Errorf("%s %s/%s: %w", "ResiliencePolicy", ns, x.Name, err)
		}
		for _, o := range objs {
			if _, shared := o.(*corev1.Service); !shared {
				out = append(out, output{"ResiliencePolicy", x.Name, o})
			}
		}
	}
	for i := range ep.Items {
		x := &ep.Items[i]
		if x.Spec.Provider != "" {
			continue
		}
		t, err := r.Registry.EgressTranslator(provider)
		if err != nil {
			return nil, err
		}
		objs, err := t.TranslateEgressPolicy(x, sc.Namespace)
		if err != nil {
			return nil, fmt.Errorf("%s %s/%s: %w", "EgressPolicy", ns, x.Name, err)
		}
		for _, o := range objs {
			out = append(out, output{"EgressPolicy", x.Name, o})
		}
	}
	return out, nil
}

// resilienceOutputs translates one ResiliencePolicy for provider in sc, as
// its controller does (composition decided the same way); a missing
// target Service, or a route that cannot carry the policy's route-level
// fields, is none (the policy is Stalled in either mesh).
func (r *Reconciler) resilienceOutputs(ctx context.Context, rp *meshv1alpha1.ResiliencePolicy, provider meshv1alpha1.Provider, sc mesh.Scope) ([]client.Object, error) {
	t, err := r.Registry.ResilienceTranslator(provider)
	if err != nil {
		return nil, err
	}
	var svc corev1.Service
	if err := r.Get(ctx, client.ObjectKey{Namespace: rp.Namespace, Name: rp.Spec.TargetRef.Name}, &svc); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	routed, err := overlap.RouteOf(ctx, r.Client, rp.Namespace, svc.Name)
	if err != nil {
		return nil, err
	}
	in := mesh.ResilienceInput{Policy: rp, Service: &svc, Scope: sc, Routed: routed}
	if mesh.HasRouteFields(&rp.Spec) {
		owner, err := overlap.RouteOwnerOf(ctx, r.Client, rp.Namespace, svc.Name)
		if err != nil || owner == nil {
			return t.TranslateResiliencePolicy(in)
		}
		_, composes := r.Registry.RouteComposer(provider)
		if ts, ok := owner.(*meshv1alpha1.TrafficSplit); !composes || ok && ts.Spec.Output == meshv1alpha1.OutputGatewayAPI {
			// The policy is a Conflict in either mesh and writes nothing.
			return nil, nil
		}
		in.ComposedWith = &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: owner.GetName(), Namespace: rp.Namespace},
			Spec: meshv1alpha1.TrafficSplitSpec{Service: meshv1alpha1.ServiceReference{Name: svc.Name}}}
	}
	return t.TranslateResiliencePolicy(in)
}
