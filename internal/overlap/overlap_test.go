package overlap

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

func sel(labels map[string]string, exprs ...metav1.LabelSelectorRequirement) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: labels, MatchExpressions: exprs}
}

func expr(key string, op metav1.LabelSelectorOperator, values ...string) metav1.LabelSelectorRequirement {
	return metav1.LabelSelectorRequirement{Key: key, Operator: op, Values: values}
}

func TestSelectorsOverlap(t *testing.T) {
	web := map[string]string{"app": "web"}
	for _, tc := range []struct {
		name string
		a, b *metav1.LabelSelector
		want bool
	}{
		{"both namespace-wide", nil, nil, true},
		{"namespace-wide and selector", nil, sel(web), true},
		{"empty selector is namespace-wide", sel(nil), sel(web), true},
		{"same labels", sel(web), sel(web), true},
		{"different values of one key", sel(web), sel(map[string]string{"app": "db"}), false},
		{"different keys", sel(web), sel(map[string]string{"tier": "front"}), true},
		{"superset", sel(web), sel(map[string]string{"app": "web", "tier": "front"}), true},
		{"In sets intersect", sel(nil, expr("app", metav1.LabelSelectorOpIn, "web", "api")), sel(nil, expr("app", metav1.LabelSelectorOpIn, "api", "db")), true},
		{"In sets disjoint", sel(nil, expr("app", metav1.LabelSelectorOpIn, "web")), sel(nil, expr("app", metav1.LabelSelectorOpIn, "db")), false},
		{"label against NotIn of its value", sel(web), sel(nil, expr("app", metav1.LabelSelectorOpNotIn, "web")), false},
		{"label against NotIn of others", sel(web), sel(nil, expr("app", metav1.LabelSelectorOpNotIn, "db")), true},
		{"Exists against DoesNotExist", sel(nil, expr("app", metav1.LabelSelectorOpExists)), sel(nil, expr("app", metav1.LabelSelectorOpDoesNotExist)), false},
		{"label against DoesNotExist", sel(web), sel(nil, expr("app", metav1.LabelSelectorOpDoesNotExist)), false},
		{"NotIn against DoesNotExist", sel(nil, expr("app", metav1.LabelSelectorOpNotIn, "web")), sel(nil, expr("app", metav1.LabelSelectorOpDoesNotExist)), true},
		{"In minus NotIn empty", sel(nil, expr("app", metav1.LabelSelectorOpIn, "web", "db")), sel(nil, expr("app", metav1.LabelSelectorOpNotIn, "web", "db")), false},
		{"invalid selector overlaps", sel(nil, expr("app", "Bogus")), sel(web), true},
	} {
		if got := SelectorsOverlap(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: SelectorsOverlap = %v, want %v", tc.name, got, tc.want)
		}
		if got := SelectorsOverlap(tc.b, tc.a); got != tc.want {
			t.Errorf("%s (swapped): SelectorsOverlap = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func ztp(mode meshv1alpha1.MTLSMode, action meshv1alpha1.PolicyAction, s *metav1.LabelSelector) *meshv1alpha1.ZeroTrustPolicy {
	p := &meshv1alpha1.ZeroTrustPolicy{Spec: meshv1alpha1.ZeroTrustPolicySpec{Selector: s, DefaultAction: action}}
	if mode != "" {
		p.Spec.MTLS = &meshv1alpha1.MTLSSettings{Mode: mode}
	}
	return p
}

func TestPoliciesConflict(t *testing.T) {
	web := sel(map[string]string{"app": "web"})
	db := sel(map[string]string{"app": "db"})
	for _, tc := range []struct {
		name string
		a, b *meshv1alpha1.ZeroTrustPolicy
		want bool
	}{
		{"strict vs permissive namespace-wide", ztp(meshv1alpha1.MTLSStrict, "", nil), ztp(meshv1alpha1.MTLSPermissive, "", nil), true},
		{"default mode is strict", ztp("", "", nil), ztp(meshv1alpha1.MTLSStrict, meshv1alpha1.ActionDeny, web), false},
		{"strict vs permissive on one app", ztp(meshv1alpha1.MTLSStrict, "", web), ztp(meshv1alpha1.MTLSPermissive, "", web), true},
		{"strict vs permissive on disjoint apps", ztp(meshv1alpha1.MTLSStrict, "", web), ztp(meshv1alpha1.MTLSPermissive, "", db), false},
		{"namespace-wide strict vs one app permissive", ztp(meshv1alpha1.MTLSStrict, "", nil), ztp(meshv1alpha1.MTLSPermissive, "", db), true},
		{"deny vs allow", ztp("", meshv1alpha1.ActionDeny, web), ztp("", meshv1alpha1.ActionAllow, web), true},
		{"same mode and action compose", ztp(meshv1alpha1.MTLSPermissive, meshv1alpha1.ActionDeny, nil), ztp(meshv1alpha1.MTLSPermissive, "", web), false},
	} {
		if got := PoliciesConflict(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: PoliciesConflict = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestBefore(t *testing.T) {
	t0 := metav1.NewTime(time.Unix(1000, 0))
	t1 := metav1.NewTime(time.Unix(2000, 0))
	old := contender{kind: "TrafficSplit", name: "b", created: t0}
	young := contender{kind: "TrafficSplit", name: "a", created: t1}
	if before(old, young) >= 0 {
		t.Fatal("older must win")
	}
	sameTime := contender{kind: "TrafficSplit", name: "a", created: t0}
	if before(sameTime, old) >= 0 {
		t.Fatal("ties broken by name")
	}
	young.inForce = true
	if before(young, old) >= 0 {
		t.Fatal("the object in force must win over an older one that is not")
	}
}
