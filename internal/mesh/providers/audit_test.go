package providers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/test/cluster"
)

// auditCases are ZeroTrustPolicies in audit (spec.enforcement Audit), one
// golden file per mesh: audit-<case>.<mesh>.golden.yaml.
var auditCases = []struct {
	name string
	spec meshv1alpha1.ZeroTrustPolicySpec
}{
	{"ztp-audit-deny", meshv1alpha1.ZeroTrustPolicySpec{}},
	{"ztp-audit-rules", meshv1alpha1.ZeroTrustPolicySpec{Rules: []meshv1alpha1.AllowRule{
		{Name: "frontend", From: []meshv1alpha1.TrafficSource{{ServiceAccounts: []string{"frontend"}}},
			To: []meshv1alpha1.TrafficDestination{{Ports: []int32{8080}, Methods: []meshv1alpha1.HTTPMethod{"GET"}, Paths: []string{"/api/*"}}}},
		rule([]meshv1alpha1.TrafficSource{{Namespaces: []string{"monitoring"}}}, meshv1alpha1.TrafficDestination{Ports: []int32{9090}}),
	}}},
}

func translateAudit(t *testing.T) []translation {
	t.Helper()
	reg := Registry()
	var out []translation
	for _, p := range meshv1alpha1.Providers {
		pt, err := reg.PolicyTranslator(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range auditCases {
			spec := tc.spec
			spec.Enforcement, spec.DefaultAction = meshv1alpha1.EnforcementAudit, meshv1alpha1.ActionDeny
			pol := &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: spec}
			objs, err := pt.TranslateZeroTrustPolicy(pol)
			out = append(out, translation{golden: "audit-" + tc.name + "." + strings.ToLower(string(p)), objs: objs, err: err})
		}
	}
	return out
}

// TestAuditGolden pins the audit translations: Istio AuthorizationPolicies
// with istio.io/dry-run and PERMISSIVE mTLS, Linkerd audit default and
// Servers, Cilium refused with the reason.
func TestAuditGolden(t *testing.T) {
	for _, tr := range translateAudit(t) {
		t.Run(tr.golden, func(t *testing.T) {
			got := render(t, tr)
			path := filepath.Join("testdata", tr.golden+".golden.yaml")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/mesh/providers -update)", err)
			}
			if got != string(want) {
				t.Fatalf("%s differs from the golden file (run with -update and review the diff):\n%s", path, got)
			}
		})
	}
}

// TestAuditSemantics checks what the goldens promise, output by output:
// nothing in an audit translation blocks.
func TestAuditSemantics(t *testing.T) {
	for _, tr := range translateAudit(t) {
		switch {
		case strings.HasSuffix(tr.golden, ".cilium"):
			var uf *mesh.UnsupportedFeatureError
			if !errors.As(tr.err, &uf) || uf.Features[0] != mesh.CapPolicyAudit || !strings.Contains(tr.err.Error(), "cilium/cilium#9580") ||
				!strings.Contains(tr.err.Error(), "set spec.enforcement to Enforce") {
				t.Errorf("%s: want PolicyAudit refused with the reason, got %v", tr.golden, tr.err)
			}
			continue
		case tr.err != nil:
			t.Errorf("%s: %v", tr.golden, tr.err)
			continue
		}
		for _, o := range tr.objs {
			u := render(t, translation{golden: tr.golden, objs: []client.Object{o}})
			kind := o.GetObjectKind().GroupVersionKind().Kind
			switch {
			case kind == "AuthorizationPolicy" && strings.HasSuffix(tr.golden, ".istio"):
				if o.GetAnnotations()["istio.io/dry-run"] != "true" {
					t.Errorf("%s: AuthorizationPolicy %s without istio.io/dry-run", tr.golden, o.GetName())
				}
			case kind == "PeerAuthentication" && !strings.Contains(u, "mode: PERMISSIVE"):
				t.Errorf("%s: PeerAuthentication not PERMISSIVE:\n%s", tr.golden, u)
			case kind == "Server" && !strings.Contains(u, "accessPolicy: audit"):
				t.Errorf("%s: Server %s not audit:\n%s", tr.golden, o.GetName(), u)
			case kind == "Namespace" && o.GetAnnotations()["config.linkerd.io/default-inbound-policy"] != "audit":
				t.Errorf("%s: namespace default-inbound-policy %v", tr.golden, o.GetAnnotations())
			}
		}
	}
}

// TestAuditAmbientRefused: audit in an ambient namespace is refused with
// the reason, whatever the waypoints.
func TestAuditAmbientRefused(t *testing.T) {
	pt, err := Registry().PolicyTranslator(meshv1alpha1.ProviderIstio)
	if err != nil {
		t.Fatal(err)
	}
	pol := &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec: meshv1alpha1.ZeroTrustPolicySpec{Enforcement: meshv1alpha1.EnforcementAudit, DefaultAction: meshv1alpha1.ActionDeny}}
	for _, f := range []mesh.NamespaceFacts{ambientNoWaypoint, ambientNSWaypoint} {
		objs, err := mesh.TranslateZeroTrustPolicy(pt, pol, f)
		if len(objs) != 0 || err == nil || !strings.Contains(err.Error(), "spec.enforcement is Audit but namespace shop is ambient") {
			t.Errorf("waypoint %q: objs %d, err %v", f.Waypoint, len(objs), err)
		}
	}
	// Sidecar mode is the audit path.
	if _, err := mesh.TranslateZeroTrustPolicy(pt, pol, mesh.NamespaceFacts{Name: "shop", Mode: mesh.Sidecar}); err != nil {
		t.Fatal(err)
	}
}

// TestAuditOutputsAcceptedByRealCRDs applies the audit outputs to the real
// Istio and Linkerd CRDs with strict field validation.
func TestAuditOutputsAcceptedByRealCRDs(t *testing.T) {
	cfg := cluster.UseEnvtest(t, cluster.EnvtestOptions{})
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, tr := range translateAudit(t) {
		if tr.err != nil {
			continue
		}
		ns := fmt.Sprintf("audit-%d", i)
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
		for _, o := range tr.objs {
			if err := ApplyStrict(ctx, c, o, ns); err != nil {
				t.Errorf("%s: %s %s refused: %v", tr.golden, o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
			}
		}
	}
}
