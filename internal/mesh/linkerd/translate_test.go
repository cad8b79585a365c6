package linkerd

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// TestPolicyRoutesThatWouldShadowAreRefused pins the refusals of policies
// whose routes Linkerd would evaluate differently from the intent, with
// their exact messages.
func TestPolicyRoutesThatWouldShadowAreRefused(t *testing.T) {
	l7 := func(port int32, methods []meshv1alpha1.HTTPMethod, paths ...string) meshv1alpha1.AllowRule {
		return meshv1alpha1.AllowRule{From: []meshv1alpha1.TrafficSource{{ServiceAccounts: []string{"frontend"}}},
			To: []meshv1alpha1.TrafficDestination{{Ports: []int32{port}, Methods: methods, Paths: paths}}}
	}
	const tail = "; remove the feature from the spec or choose another provider (nothing was applied)"
	for _, tc := range []struct {
		name  string
		rules []meshv1alpha1.AllowRule
		want  string
	}{
		{"two rules narrow one port", []meshv1alpha1.AllowRule{l7(8080, []meshv1alpha1.HTTPMethod{"GET"}), l7(8080, nil, "/admin")},
			"feature AllowHTTPMethodPath is not supported by Linkerd: spec.rules[0] and spec.rules[1] both narrow port 8080 by method or path; " +
				"Linkerd authorizes a request only by the one route it matches, so one rule's sources would be refused on the other's requests: " +
				"narrow each port by method or path in one rule only, or use different ports" + tail},
		{"prefix inside a segment", []meshv1alpha1.AllowRule{l7(8080, nil, "/ap*")},
			`feature AllowHTTPMethodPath is not supported by Linkerd: spec.rules[0].to[0].paths: "/ap*": Linkerd matches path prefixes by whole segments; ` +
				`end the prefix with /* (e.g. "/ap/*")` + tail},
		{"one rule per port is fine", []meshv1alpha1.AllowRule{l7(8080, []meshv1alpha1.HTTPMethod{"GET"}, "/api/*"), l7(9090, nil, "/admin")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
				Spec: meshv1alpha1.ZeroTrustPolicySpec{Rules: tc.rules}}
			_, err := New().TranslateZeroTrustPolicy(p)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("want accepted, got %v", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Fatalf("got  %v\nwant %s", err, tc.want)
			}
		})
	}
}
