package delivery

import (
	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// DefaultMaxWeight is the highest canary weight of the Canary and
// Mirroring strategies when analysis.maxWeight is unset.
const DefaultMaxWeight int32 = 50

// Route is the routing of one moment of a delivery: the share of the
// default route sent to the canary, and whether the A/B cohort or a
// mirror of the traffic goes to the canary.
type Route struct {
	// Weight is the canary's percentage of the requests no rule matches.
	Weight int32
	// Match routes the requests matching analysis.match to the canary.
	Match bool
	// Mirror copies analysis.mirrorPercent of the requests to the canary.
	Mirror bool
}

// Primary is the route sending every request to the primary.
var Primary = Route{}

// IsPrimary reports whether r sends every request, and no copy, to the
// primary.
func (r Route) IsPrimary() bool { return r == Primary }

// Plan is the ordered list of routes an analysis walks through; one
// passed analysis interval moves to the next route. After the last, the
// canary is promoted.
type Plan []Route

// PlanFor returns the steps of spec's strategy:
//
//   - Canary: stepWeight, 2×stepWeight, … up to maxWeight (the last step is
//     maxWeight even when it is not a multiple), or the explicit
//     stepWeights (capped at maxWeight);
//   - BlueGreen: iterations steps at 0%;
//   - ABTesting: iterations steps routing the match cohort;
//   - Mirroring: iterations mirrored steps at 0%, then the Canary steps.
func PlanFor(spec *meshv1alpha1.CanarySpec) Plan {
	a := &spec.Analysis
	iterations := int32(1)
	if a.Iterations != nil && *a.Iterations > 0 {
		iterations = *a.Iterations
	}
	repeat := func(r Route, n int32) Plan {
		p := make(Plan, 0, n)
		for range n {
			p = append(p, r)
		}
		return p
	}
	switch spec.Strategy {
	case meshv1alpha1.StrategyBlueGreen:
		return repeat(Route{}, iterations)
	case meshv1alpha1.StrategyABTesting:
		return repeat(Route{Match: true}, iterations)
	case meshv1alpha1.StrategyMirroring:
		return append(repeat(Route{Mirror: true}, iterations), weightSteps(a)...)
	default:
		return weightSteps(a)
	}
}

func weightSteps(a *meshv1alpha1.CanaryAnalysis) Plan {
	maxWeight := DefaultMaxWeight
	if a.MaxWeight != nil {
		maxWeight = *a.MaxWeight
	}
	var p Plan
	if len(a.StepWeights) > 0 {
		for _, w := range a.StepWeights {
			if w > maxWeight {
				w = maxWeight
			}
			if len(p) > 0 && p[len(p)-1].Weight >= w {
				continue
			}
			p = append(p, Route{Weight: w})
		}
		return p
	}
	step := int32(10)
	if a.StepWeight != nil && *a.StepWeight > 0 {
		step = *a.StepWeight
	}
	if step > maxWeight {
		step = maxWeight
	}
	for w := step; ; w += step {
		if w >= maxWeight {
			return append(p, Route{Weight: maxWeight})
		}
		p = append(p, Route{Weight: w})
	}
}

// At returns the route of step i; the last step when i is past the end,
// and the primary route for an empty plan.
func (p Plan) At(i int32) Route {
	if len(p) == 0 {
		return Primary
	}
	if i < 0 {
		i = 0
	}
	if int(i) >= len(p) {
		return p[len(p)-1]
	}
	return p[i]
}

// Increases reports whether entering step i (0-based) sends more of the
// live traffic to the canary than the step before it (the primary route
// before step 0): a confirm-traffic-increase gate applies. Turning off a
// mirror to start shifting weight is an increase; repeating the same
// route is not.
func (p Plan) Increases(i int32) bool {
	if int(i) >= len(p) || i < 0 {
		return false
	}
	prev := Primary
	if i > 0 {
		prev = p[i-1]
	}
	next := p[i]
	return next.Weight > prev.Weight || (next.Match && !prev.Match)
}
