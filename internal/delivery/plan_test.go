package delivery

import (
	"reflect"
	"testing"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

func weights(p Plan) []int32 {
	var out []int32
	for _, r := range p {
		out = append(out, r.Weight)
	}
	return out
}

func TestPlanFor(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec meshv1alpha1.CanarySpec
		want Plan
	}{
		{"stepWeight up to the default maxWeight", meshv1alpha1.CanarySpec{Analysis: meshv1alpha1.CanaryAnalysis{StepWeight: ptr[int32](20)}},
			Plan{{Weight: 20}, {Weight: 40}, {Weight: 50}}},
		{"stepWeight up to maxWeight", meshv1alpha1.CanarySpec{Strategy: meshv1alpha1.StrategyCanary, Analysis: meshv1alpha1.CanaryAnalysis{StepWeight: ptr[int32](25), MaxWeight: ptr[int32](100)}},
			Plan{{Weight: 25}, {Weight: 50}, {Weight: 75}, {Weight: 100}}},
		{"stepWeight equal to maxWeight", meshv1alpha1.CanarySpec{Analysis: meshv1alpha1.CanaryAnalysis{StepWeight: ptr[int32](30), MaxWeight: ptr[int32](30)}},
			Plan{{Weight: 30}}},
		{"stepWeights", meshv1alpha1.CanarySpec{Analysis: meshv1alpha1.CanaryAnalysis{StepWeights: []int32{1, 5, 25, 80}, MaxWeight: ptr[int32](80)}},
			Plan{{Weight: 1}, {Weight: 5}, {Weight: 25}, {Weight: 80}}},
		{"stepWeights capped at the default maxWeight", meshv1alpha1.CanarySpec{Analysis: meshv1alpha1.CanaryAnalysis{StepWeights: []int32{10, 60, 90}}},
			Plan{{Weight: 10}, {Weight: 50}}},
		{"blue/green", meshv1alpha1.CanarySpec{Strategy: meshv1alpha1.StrategyBlueGreen, Analysis: meshv1alpha1.CanaryAnalysis{Iterations: ptr[int32](3)}},
			Plan{{}, {}, {}}},
		{"A/B", meshv1alpha1.CanarySpec{Strategy: meshv1alpha1.StrategyABTesting, Analysis: meshv1alpha1.CanaryAnalysis{Iterations: ptr[int32](2)}},
			Plan{{Match: true}, {Match: true}}},
		{"mirroring then steps", meshv1alpha1.CanarySpec{Strategy: meshv1alpha1.StrategyMirroring, Analysis: meshv1alpha1.CanaryAnalysis{Iterations: ptr[int32](2), StepWeight: ptr[int32](50), MaxWeight: ptr[int32](100)}},
			Plan{{Mirror: true}, {Mirror: true}, {Weight: 50}, {Weight: 100}}},
	} {
		if got := PlanFor(&tc.spec); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestPlanIncreases(t *testing.T) {
	p := Plan{{Mirror: true}, {Mirror: true}, {Weight: 50}, {Weight: 100}}
	want := []bool{false, false, true, true, false}
	for i, w := range want {
		if got := p.Increases(int32(i)); got != w {
			t.Errorf("Increases(%d) = %v, want %v", i, got, w)
		}
	}
	if !(Plan{{Match: true}}).Increases(0) || !(Plan{{Weight: 10}}).Increases(0) || (Plan{{}}).Increases(0) {
		t.Error("first step")
	}
	if w := weights(Plan{{Weight: 1}}); len(w) != 1 {
		t.Error(w)
	}
}

func TestRouteFor(t *testing.T) {
	p := Plan{{Weight: 10}, {Weight: 30}}
	for _, tc := range []struct {
		s    State
		want Route
	}{
		{State{Phase: meshv1alpha1.CanaryPhaseProgressing}, Primary},
		{State{Phase: meshv1alpha1.CanaryPhaseProgressing, Iterations: 2}, Route{Weight: 30}},
		{State{Phase: meshv1alpha1.CanaryPhaseProgressing, Iterations: 9}, Route{Weight: 30}},
		{State{Phase: meshv1alpha1.CanaryPhaseWaiting, Iterations: 1}, Primary},
		{State{Phase: meshv1alpha1.CanaryPhasePromoting, Iterations: 1}, Route{Weight: 100}},
		{State{Phase: meshv1alpha1.CanaryPhaseFinalising}, Primary},
		{State{Phase: meshv1alpha1.CanaryPhaseFailed, Iterations: 2}, Primary},
	} {
		if got := RouteFor(tc.s, p); got != tc.want {
			t.Errorf("RouteFor(%s, %d) = %+v, want %+v", tc.s.Phase, tc.s.Iterations, got, tc.want)
		}
	}
}
