package meshadoption

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/delivery"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/overlap"
)

// httpRouteGK is Gateway API's HTTPRoute, whose being served is an install
// fact.
var httpRouteGK = schema.GroupKind{Group: "gateway.networking.k8s.io", Kind: "HTTPRoute"}

// object is one Meshplane object of a namespace, checked against a scope.
type object struct {
	kind, name string
	// express returns why the mesh cannot express the object in s, or nil.
	express func(reg *mesh.Registry, s mesh.Scope) error
}

// objectsOf lists the namespace's TrafficSplits, ZeroTrustPolicies,
// Canaries, ResiliencePolicies, EgressPolicies and TelemetryPolicies that
// resolve to provider (those naming another provider are not moved),
// each with the same decision and translation its controller makes.
func (r *Reconciler) objectsOf(ctx context.Context, ns string, provider meshv1alpha1.Provider) ([]object, error) {
	mine := func(p meshv1alpha1.Provider) bool { return p == "" || p == provider }
	var out []object
	var ts meshv1alpha1.TrafficSplitList
	var ztp meshv1alpha1.ZeroTrustPolicyList
	var cn meshv1alpha1.CanaryList
	var rp meshv1alpha1.ResiliencePolicyList
	var ep meshv1alpha1.EgressPolicyList
	var tp meshv1alpha1.TelemetryPolicyList
	for _, l := range []client.ObjectList{&ts, &ztp, &cn, &rp, &ep, &tp} {
		if err := r.List(ctx, l, client.InNamespace(ns)); err != nil {
			return nil, fmt.Errorf("listing %T of namespace %s: %w", l, ns, err)
		}
	}
	for i := range ts.Items {
		if x := &ts.Items[i]; mine(x.Spec.Provider) {
			x, err := r.withPort(ctx, x)
			if err != nil {
				return nil, err
			}
			out = append(out, object{"TrafficSplit", x.Name, func(reg *mesh.Registry, s mesh.Scope) error { return expressSplit(reg, s, x) }})
		}
	}
	for i := range ztp.Items {
		if x := &ztp.Items[i]; mine(x.Spec.Provider) {
			out = append(out, object{"ZeroTrustPolicy", x.Name, func(reg *mesh.Registry, s mesh.Scope) error { return expressPolicy(reg, s, x) }})
		}
	}
	for i := range cn.Items {
		if x := &cn.Items[i]; mine(x.Spec.Provider) {
			out = append(out, object{"Canary", x.Name, func(reg *mesh.Registry, s mesh.Scope) error { return expressCanary(reg, s, x) }})
		}
	}
	for i := range rp.Items {
		if x := &rp.Items[i]; mine(x.Spec.Provider) {
			out = append(out, object{"ResiliencePolicy", x.Name, func(reg *mesh.Registry, s mesh.Scope) error {
				if err := expressResilience(reg, s, x); err != nil {
					return err
				}
				// As its controller translates it: composition decided,
				// a route it cannot share refused.
				_, err := r.resilienceOutputs(ctx, x, s.Install.Provider, s)
				return err
			}})
		}
	}
	for i := range ep.Items {
		if x := &ep.Items[i]; mine(x.Spec.Provider) {
			out = append(out, object{"EgressPolicy", x.Name, func(reg *mesh.Registry, s mesh.Scope) error {
				return decideThen(reg, s, mesh.EgressPolicyRequirements(&x.Spec), func() error {
					t, err := reg.EgressTranslator(s.Install.Provider)
					if err != nil {
						return err
					}
					_, err = t.TranslateEgressPolicy(x, s.Namespace)
					return err
				})
			}})
		}
	}
	for i := range tp.Items {
		if x := &tp.Items[i]; mine(x.Spec.Provider) {
			out = append(out, object{"TelemetryPolicy", x.Name, func(reg *mesh.Registry, s mesh.Scope) error {
				return decideThen(reg, s, mesh.TelemetryPolicyRequirements(&x.Spec), func() error {
					t, err := reg.TelemetryTranslator(s.Install.Provider)
					if err != nil {
						return err
					}
					_, err = t.TranslateTelemetryPolicy(x, s.Namespace)
					return err
				})
			}})
		}
	}
	return out, nil
}

func decideThen(reg *mesh.Registry, s mesh.Scope, required []mesh.Capability, translate func() error) error {
	if err := reg.Decide(s, required...); err != nil {
		return err
	}
	return translate()
}

func expressSplit(reg *mesh.Registry, s mesh.Scope, ts *meshv1alpha1.TrafficSplit) error {
	return decideThen(reg, s, mesh.TrafficSplitRequirements(&ts.Spec), func() error {
		t, err := reg.TrafficTranslator(s.Install.Provider)
		if err != nil {
			return err
		}
		_, err = mesh.TranslateTrafficSplit(t, ts, s.Namespace)
		return err
	})
}

// expressPolicy checks the policy as it will run: held in Audit while
// the namespace carries an audit hold.
func expressPolicy(reg *mesh.Registry, s mesh.Scope, p *meshv1alpha1.ZeroTrustPolicy) error {
	return decideThen(reg, s, mesh.ZeroTrustPolicyRequirements(&p.Spec), func() error {
		t, err := reg.PolicyTranslator(s.Install.Provider)
		if err != nil {
			return err
		}
		_, err = mesh.TranslateZeroTrustPolicy(t, p, s.Namespace)
		return err
	})
}

func expressResilience(reg *mesh.Registry, s mesh.Scope, rp *meshv1alpha1.ResiliencePolicy) error {
	p, err := reg.Get(s.Install.Provider)
	if err != nil {
		return err
	}
	sup, ok := p.(mesh.ResilienceSupporter)
	if !ok {
		return fmt.Errorf("%s does not implement ResiliencePolicy", s.Install.Provider)
	}
	return mesh.DecideResilience(sup, s, &rp.Spec)
}

// expressCanary checks every route the Canary's strategy may apply (the
// primary, each step with its A/B match or mirror, the promotion), as
// the Canary controller builds them (delivery.Split).
func expressCanary(reg *mesh.Registry, s mesh.Scope, cn *meshv1alpha1.Canary) error {
	for _, r := range delivery.Routes(delivery.PlanFor(&cn.Spec)) {
		if err := expressSplit(reg, s, canaryRoute(cn, r)); err != nil {
			return fmt.Errorf("strategy %s: %w", cn.Spec.Strategy, err)
		}
	}
	return nil
}

// canaryRoute is the Canary's route r, as the Canary controller builds it.
func canaryRoute(cn *meshv1alpha1.Canary, r delivery.Route) *meshv1alpha1.TrafficSplit {
	return delivery.Split(cn, cn.Name, overlap.CanaryService(cn), cn.Spec.Provider, r)
}

// withPort returns ts with spec.service.port filled in, as the TrafficSplit
// controller does, when it is unset and the root Service has one port (a
// Gateway API route needs it); otherwise ts.
func (r *Reconciler) withPort(ctx context.Context, ts *meshv1alpha1.TrafficSplit) (*meshv1alpha1.TrafficSplit, error) {
	if ts.Spec.Service.Port != nil {
		return ts, nil
	}
	var svc corev1.Service
	if err := r.Get(ctx, client.ObjectKey{Namespace: ts.Namespace, Name: ts.Spec.Service.Name}, &svc); err != nil {
		return ts, client.IgnoreNotFound(err)
	}
	if len(svc.Spec.Ports) != 1 {
		return ts, nil
	}
	out := ts.DeepCopy()
	p := svc.Spec.Ports[0].Port
	out.Spec.Service.Port = &p
	return out, nil
}
