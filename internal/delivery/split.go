package delivery

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Split is the in-memory TrafficSplit a Canary's route r is translated
// from (the same translation as a TrafficSplit's): named name, the routed
// Service service split between <service>-primary and <service>-canary,
// with the A/B match as a rule and the mirror as a mirror policy. The
// Canary controller writes it; a MeshAdoption checks every route of the
// strategy against the mesh a namespace moves to.
func Split(cn *meshv1alpha1.Canary, name, service string, provider meshv1alpha1.Provider, r Route) *meshv1alpha1.TrafficSplit {
	port := cn.Spec.Service.Port
	primary, canary := service+"-primary", service+"-canary"
	ts := &meshv1alpha1.TrafficSplit{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: cn.Namespace},
		Spec: meshv1alpha1.TrafficSplitSpec{
			MeshSelection: meshv1alpha1.MeshSelection{Provider: provider},
			Service:       meshv1alpha1.ServiceReference{Name: service, Port: &port},
			Backends: []meshv1alpha1.WeightedBackend{
				{Name: primary, Weight: 100 - r.Weight},
				{Name: canary, Weight: r.Weight},
			},
			StableBackend: primary,
			Retries:       cn.Spec.Service.Retries,
			Timeout:       cn.Spec.Service.Timeout,
		},
	}
	if r.Match {
		ts.Spec.Rules = []meshv1alpha1.TrafficRule{{Name: "canary-cohort", Matches: cn.Spec.Analysis.Match,
			Backends: []meshv1alpha1.WeightedBackend{{Name: canary, Weight: 100}}}}
	}
	if r.Mirror {
		pct := int32(100)
		if cn.Spec.Analysis.MirrorPercent != nil {
			pct = *cn.Spec.Analysis.MirrorPercent
		}
		ts.Spec.Mirror = &meshv1alpha1.MirrorPolicy{Backend: meshv1alpha1.ServiceReference{Name: canary}, Percent: &pct}
	}
	return ts
}

// Routes lists every distinct route a Canary with plan may apply: the
// primary, each step of the plan and the promotion route. Translating
// them all before anything is applied refuses a strategy the mesh cannot
// express up front.
func Routes(plan Plan) []Route {
	out := []Route{Primary, {Weight: 100}}
	for _, r := range plan {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}
