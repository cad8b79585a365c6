package trafficsplit

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

func TestPin(t *testing.T) {
	port := int32(8080)
	base := meshv1alpha1.TrafficSplit{Spec: meshv1alpha1.TrafficSplitSpec{
		Service: meshv1alpha1.ServiceReference{Name: "web"},
		Backends: []meshv1alpha1.WeightedBackend{
			{Name: "web-v1", Weight: 80},
			{Name: "web-v2", Weight: 20, Port: &port},
		},
		Rules:  []meshv1alpha1.TrafficRule{{Backends: []meshv1alpha1.WeightedBackend{{Name: "web-v2", Weight: 100}}}},
		Mirror: &meshv1alpha1.MirrorPolicy{Backend: meshv1alpha1.ServiceReference{Name: "web-v2"}},
	}}
	cases := []struct {
		name   string
		stable string
		want   []meshv1alpha1.WeightedBackend
	}{
		{"first backend by default", "", []meshv1alpha1.WeightedBackend{{Name: "web-v1", Weight: 100}}},
		{"named stable backend keeps its port", "web-v2", []meshv1alpha1.WeightedBackend{{Name: "web-v2", Weight: 100, Port: &port}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := base.DeepCopy()
			ts.Spec.StableBackend = tc.stable
			got := Pin(ts)
			if diff := cmp.Diff(tc.want, got.Spec.Backends); diff != "" {
				t.Errorf("backends (-want +got):\n%s", diff)
			}
			if got.Spec.Rules != nil || got.Spec.Mirror != nil {
				t.Errorf("rules and mirror must be dropped, got %v / %v", got.Spec.Rules, got.Spec.Mirror)
			}
			if len(ts.Spec.Backends) != 2 || ts.Spec.Rules == nil {
				t.Error("Pin changed its input")
			}
		})
	}
}
