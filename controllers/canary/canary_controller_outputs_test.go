package canary

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/delivery"
	"github.com/meshplane/meshplane/internal/mesh/providers"
)

// TestRoutesPerMesh translates every route of every strategy for every
// mesh and reads the canary's share back from the result with the mesh's
// RouteReader (the readers' own cases are table tests beside them, in
// internal/mesh/istio and internal/mesh/gamma).
func TestRoutesPerMesh(t *testing.T) {
	reg := providers.Registry()
	strategies := map[meshv1alpha1.CanaryStrategy]meshv1alpha1.CanaryAnalysis{
		meshv1alpha1.StrategyCanary:    {StepWeight: ptr[int32](30)},
		meshv1alpha1.StrategyBlueGreen: {Iterations: ptr[int32](2)},
		meshv1alpha1.StrategyABTesting: {Iterations: ptr[int32](2), Match: []meshv1alpha1.HTTPMatch{{Headers: []meshv1alpha1.HTTPHeaderMatch{{Name: "x-canary", Value: "1"}}}}},
		meshv1alpha1.StrategyMirroring: {Iterations: ptr[int32](1), StepWeight: ptr[int32](50), MirrorPercent: ptr[int32](20)},
	}
	for _, p := range meshv1alpha1.Providers {
		tr, err := reg.TrafficTranslator(p)
		if err != nil {
			t.Fatal(err)
		}
		for st, a := range strategies {
			cn := &meshv1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
				Spec: meshv1alpha1.CanarySpec{TargetRef: meshv1alpha1.CanaryTargetReference{Name: "web"}, Service: meshv1alpha1.CanaryService{Port: 8080},
					Strategy: st, Analysis: a}}
			for _, r := range delivery.Routes(delivery.PlanFor(&cn.Spec)) {
				objs, err := tr.TranslateTrafficSplit(trafficSplit(cn, namesOf(cn), p, r))
				if p == meshv1alpha1.ProviderLinkerd && r.Mirror {
					if err == nil || !strings.Contains(err.Error(), "Mirroring") {
						t.Errorf("Linkerd mirroring: %v, want UnsupportedFeature", err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s %s %+v: %v", p, st, r, err)
				}
				m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(objs[0])
				if err != nil {
					t.Fatal(err)
				}
				u := &unstructured.Unstructured{Object: m}
				u.SetGroupVersionKind(objs[0].GetObjectKind().GroupVersionKind())
				rr, err := reg.RouteReader(p)
				if err != nil {
					t.Fatal(err)
				}
				w, mirrored, err := rr.CanaryShare(u, "web-canary")
				if err != nil {
					t.Fatal(err)
				}
				want := int64(r.Weight)
				if r.Match {
					want = 100 // the cohort rule sends everything to the canary
				}
				if w != want || mirrored != r.Mirror {
					t.Errorf("%s %s %+v: read back weight %d mirrored %v", p, st, r, w, mirrored)
				}
			}
		}
	}
}

func TestSelectors(t *testing.T) {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "tier": "front"}}}}
	tgt, prim, err := selectors(d)
	if err != nil || tgt["app"] != "web" || prim["app"] != "web-primary" || prim["tier"] != "front-primary" {
		t.Fatalf("%v %v %v", tgt, prim, err)
	}
	d.Spec.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "x", Operator: metav1.LabelSelectorOpExists}}
	if _, _, err := selectors(d); err == nil || !strings.Contains(err.Error(), "matchExpressions") {
		t.Fatalf("matchExpressions: %v", err)
	}
	d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": strings.Repeat("a", 60)}}
	if _, _, err := selectors(d); err == nil {
		t.Fatal("a 60-character value took the suffix")
	}
}
