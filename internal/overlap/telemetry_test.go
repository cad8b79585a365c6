package overlap

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

func TestTelemetryConflict(t *testing.T) {
	tp := func(sel *metav1.LabelSelector) *meshv1alpha1.TelemetryPolicy {
		return &meshv1alpha1.TelemetryPolicy{Spec: meshv1alpha1.TelemetryPolicySpec{Selector: sel}}
	}
	labels := func(kv ...string) *metav1.LabelSelector {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return &metav1.LabelSelector{MatchLabels: m}
	}
	for _, tc := range []struct {
		name string
		a, b *meshv1alpha1.TelemetryPolicy
		want bool
	}{
		{"two namespace-wide", tp(nil), tp(nil), true},
		{"empty selector is namespace-wide", tp(&metav1.LabelSelector{}), tp(nil), true},
		{"namespace and workload compose", tp(nil), tp(labels("app", "web")), false},
		{"same workloads", tp(labels("app", "web")), tp(labels("app", "web")), true},
		{"overlapping workloads", tp(labels("app", "web")), tp(labels("tier", "front")), true},
		{"disjoint workloads", tp(labels("app", "web")), tp(labels("app", "db")), false},
	} {
		if got := TelemetryConflict(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: TelemetryConflict = %v, want %v", tc.name, got, tc.want)
		}
	}
}
