package hostile

import (
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Canary spec cases: contradictory or unusable analysis settings the API
// server refuses on every mesh, an immutable target, and a missing target
// the controller reports without writing anything.

// GoodCanary is a valid Canary of Deployment name in ns: steps of 50 to 100,
// a 1 s interval, two failed checks to roll back.
func GoodCanary(ns, name string, m Mesh) *meshv1alpha1.Canary {
	cn := &meshv1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: meshv1alpha1.CanarySpec{
			TargetRef: meshv1alpha1.CanaryTargetReference{Name: name},
			Service:   meshv1alpha1.CanaryService{Port: 8080},
			Strategy:  meshv1alpha1.StrategyCanary,
			Analysis: meshv1alpha1.CanaryAnalysis{Interval: &metav1.Duration{Duration: time.Second}, Threshold: 2,
				StepWeight: ptrTo[int32](50), MaxWeight: ptrTo[int32](100)},
		}}
	cn.Spec.Provider = Provider(m)
	return cn
}

var canaryEdits = []struct {
	name string
	edit func(cn *meshv1alpha1.Canary)
	want []string
}{
	{"stepWeight and stepWeights", func(cn *meshv1alpha1.Canary) { cn.Spec.Analysis.StepWeights = []int32{10, 20} },
		[]string{"stepWeight and stepWeights are mutually exclusive"}},
	{"stepWeights descending", func(cn *meshv1alpha1.Canary) {
		cn.Spec.Analysis.StepWeight, cn.Spec.Analysis.StepWeights = nil, []int32{50, 10}
	}, []string{"stepWeights must be in ascending order"}},
	{"stepWeights repeated", func(cn *meshv1alpha1.Canary) {
		cn.Spec.Analysis.StepWeight, cn.Spec.Analysis.StepWeights = nil, []int32{10, 10}
	}, []string{"stepWeights must not repeat a weight"}},
	{"stepWeights over maxWeight", func(cn *meshv1alpha1.Canary) {
		cn.Spec.Analysis.StepWeight, cn.Spec.Analysis.StepWeights = nil, []int32{10, 60}
		cn.Spec.Analysis.MaxWeight = ptrTo[int32](50)
	}, []string{"stepWeights must not exceed maxWeight"}},
	{"stepWeight over maxWeight", func(cn *meshv1alpha1.Canary) { cn.Spec.Analysis.MaxWeight = ptrTo[int32](40) },
		[]string{"stepWeight must not exceed maxWeight"}},
	{"canary strategy without steps", func(cn *meshv1alpha1.Canary) { cn.Spec.Analysis.StepWeight = nil },
		[]string{"strategy Canary needs analysis.stepWeight or analysis.stepWeights"}},
	{"blue-green without iterations", func(cn *meshv1alpha1.Canary) { cn.Spec.Strategy = meshv1alpha1.StrategyBlueGreen },
		[]string{"strategy BlueGreen needs analysis.iterations"}},
	{"ab-testing without match", func(cn *meshv1alpha1.Canary) {
		cn.Spec.Strategy, cn.Spec.Analysis.Iterations = meshv1alpha1.StrategyABTesting, ptrTo[int32](3)
	}, []string{"strategy ABTesting needs analysis.iterations and analysis.match"}},
	{"mirrorPercent outside Mirroring", func(cn *meshv1alpha1.Canary) { cn.Spec.Analysis.MirrorPercent = ptrTo[int32](50) },
		[]string{"analysis.mirrorPercent is only used by strategy Mirroring"}},
	{"target name too long for suffixes", func(cn *meshv1alpha1.Canary) { cn.Spec.TargetRef.Name = strings.Repeat("a", 60) },
		[]string{"targetRef.name is not usable as a Service name with -primary/-canary suffixes", "set service.name"}},
	{"thresholdRange min over max", func(cn *meshv1alpha1.Canary) {
		cn.Spec.Analysis.Metrics = []meshv1alpha1.CanaryMetric{{Name: "request-success-rate",
			ThresholdRange: meshv1alpha1.ThresholdRange{Min: ptrTo("99"), Max: ptrTo("50")}}}
	}, []string{"thresholdRange.min must not exceed max"}},
	{"custom metric without query", func(cn *meshv1alpha1.Canary) {
		cn.Spec.Analysis.Metrics = []meshv1alpha1.CanaryMetric{{Name: "error-budget",
			ThresholdRange: meshv1alpha1.ThresholdRange{Max: ptrTo("1")}}}
	}, []string{"needs a query"}},
	{"interval under a second", func(cn *meshv1alpha1.Canary) {
		cn.Spec.Analysis.Interval = &metav1.Duration{Duration: 10 * time.Millisecond}
	}, []string{"interval must be between 1s and 24h"}},
}

func init() {
	for _, m := range Meshes {
		for _, e := range canaryEdits {
			Register(Case{Category: "spec", Kind: "Canary", Mesh: m, Name: "create " + e.name,
				Run: func(h *H) {
					ns := h.Namespace(m)
					before := h.Inventory(ns)
					cn := GoodCanary(ns, "web", m)
					e.edit(cn)
					h.Refused(cn, e.want...)
					h.Same(ns, before)
				}})
		}
		Register(Case{Category: "missing-ref", Kind: "Canary", Mesh: m, Name: "target Deployment missing",
			Run: func(h *H) {
				ns := h.Namespace(m)
				before := h.Inventory(ns)
				cn := GoodCanary(ns, "web", m)
				h.Create(cn)
				h.Stalled(cn, meshv1alpha1.ReferenceNotFoundReason, "Deployment "+ns+"/web (spec.targetRef) does not exist")
				after := h.Inventory(ns)
				for k := range after {
					if _, ok := before[k]; !ok {
						h.Fatalf("%s written for a Canary whose target is missing", k)
					}
				}
			}})
		Register(Case{Category: "refused-update", Kind: "Canary", Mesh: m, Name: "update target name",
			Run: func(h *H) {
				ns := h.Namespace(m)
				cn := GoodCanary(ns, "web", m)
				h.Create(cn)
				h.Rejected(h.Update(cn, func() { cn.Spec.TargetRef.Name = "other" }), "targetRef.name is immutable")
			}})
	}
}
