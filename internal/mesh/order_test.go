package mesh

import (
	"testing"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

func pathRule(name string, typ meshv1alpha1.PathMatchType, v string, method meshv1alpha1.HTTPMethod) meshv1alpha1.TrafficRule {
	return meshv1alpha1.TrafficRule{Name: name, Matches: []meshv1alpha1.HTTPMatch{{Path: &meshv1alpha1.HTTPPathMatch{Type: typ, Value: v}, Method: method}}}
}

func headerRule(name string, headers ...meshv1alpha1.HTTPHeaderMatch) meshv1alpha1.TrafficRule {
	return meshv1alpha1.TrafficRule{Name: name, Matches: []meshv1alpha1.HTTPMatch{{Headers: headers}}}
}

func TestRuleOrderConflict(t *testing.T) {
	prefix, exact := meshv1alpha1.PathMatchPathPrefix, meshv1alpha1.PathMatchExact
	for _, tc := range []struct {
		name     string
		rules    []meshv1alpha1.TrafficRule
		conflict bool
	}{
		{"more specific first is fine", []meshv1alpha1.TrafficRule{pathRule("a", prefix, "/api/v1", ""), pathRule("b", prefix, "/api", "")}, false},
		{"longer prefix later conflicts", []meshv1alpha1.TrafficRule{pathRule("a", prefix, "/api", ""), pathRule("b", prefix, "/api/v1", "")}, true},
		{"disjoint prefixes never conflict", []meshv1alpha1.TrafficRule{pathRule("a", prefix, "/api", ""), pathRule("b", prefix, "/static/img", "")}, false},
		{"segment-wise: /api does not cover /apix", []meshv1alpha1.TrafficRule{pathRule("a", prefix, "/api", ""), pathRule("b", exact, "/apix", "")}, false},
		{"exact under an earlier prefix conflicts", []meshv1alpha1.TrafficRule{pathRule("a", prefix, "/api", ""), pathRule("b", exact, "/api/x", "")}, true},
		{"different methods never conflict", []meshv1alpha1.TrafficRule{pathRule("a", prefix, "/", "GET"), pathRule("b", prefix, "/api", "POST")}, false},
		{"more headers later conflicts", []meshv1alpha1.TrafficRule{
			headerRule("a", meshv1alpha1.HTTPHeaderMatch{Name: "x-a", Value: "1"}),
			headerRule("b", meshv1alpha1.HTTPHeaderMatch{Name: "x-a", Value: "1"}, meshv1alpha1.HTTPHeaderMatch{Name: "x-b", Value: "2"})}, true},
		{"different exact header values never conflict", []meshv1alpha1.TrafficRule{
			headerRule("a", meshv1alpha1.HTTPHeaderMatch{Name: "x-a", Value: "1"}),
			headerRule("b", meshv1alpha1.HTTPHeaderMatch{Name: "X-A", Value: "2"}, meshv1alpha1.HTTPHeaderMatch{Name: "x-b", Value: "2"})}, false},
		{"equal specificity keeps list order", []meshv1alpha1.TrafficRule{
			headerRule("a", meshv1alpha1.HTTPHeaderMatch{Name: "x-a", Value: "1"}),
			headerRule("b", meshv1alpha1.HTTPHeaderMatch{Name: "x-b", Value: "1"})}, false},
	} {
		if got := RuleOrderConflict(tc.rules); (got != "") != tc.conflict {
			t.Errorf("%s: RuleOrderConflict = %q, want conflict=%v", tc.name, got, tc.conflict)
		}
	}
}
