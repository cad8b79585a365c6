package zerotrustpolicy

import (
	"strings"
	"testing"

	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/test/testenv"
)

// TestAuditHold: while its namespace carries a MeshAdoption's audit hold,
// an enforcing policy is translated in Audit (Istio: the
// AuthorizationPolicy is a dry run) and reports the holder in
// status.auditHeldBy and its Ready message; its spec is never written.
// Releasing the hold enforces it again.
func TestAuditHold(t *testing.T) {
	_, c := start(t)
	ns := istioNamespace(t, c)
	key := readyPolicy(t, c, ns, "Istio")
	ap := types.NamespacedName{Namespace: ns, Name: "web"}
	dryRun := func(want string, holder string) {
		t.Helper()
		testenv.Eventually(t, testenv.DefaultTimeout, "dry-run "+want, func() error {
			a := &istiosecurity.AuthorizationPolicy{}
			if err := c.Get(ctx, ap, a); err != nil {
				return err
			}
			if got := a.Annotations["istio.io/dry-run"]; got != want {
				return testenv.Errorf("istio.io/dry-run %q, want %q", got, want)
			}
			p := &meshv1alpha1.ZeroTrustPolicy{}
			if err := c.Get(ctx, key, p); err != nil {
				return err
			}
			if p.Status.AuditHeldBy != holder {
				return testenv.Errorf("auditHeldBy %q, want %q", p.Status.AuditHeldBy, holder)
			}
			return ready(c, key)
		})
	}
	setHold := func(v string) {
		t.Helper()
		must(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var n corev1.Namespace
			if err := c.Get(ctx, client.ObjectKey{Name: ns}, &n); err != nil {
				return err
			}
			if v == "" {
				delete(n.Annotations, mesh.AuditHoldAnnotation)
			} else {
				if n.Annotations == nil {
					n.Annotations = map[string]string{}
				}
				n.Annotations[mesh.AuditHoldAnnotation] = v
			}
			return c.Update(ctx, &n)
		}))
	}
	dryRun("", "")
	setHold("onboard")
	dryRun("true", "onboard")
	if r := reason(c, key); !strings.Contains(r, "held in Audit by MeshAdoption onboard until its wave is promoted (namespace annotation meshplane.io/audit-hold)") {
		t.Fatalf("Ready message: %s", r)
	}
	p := &meshv1alpha1.ZeroTrustPolicy{}
	must(t, c.Get(ctx, key, p))
	if p.Generation != 1 || p.Spec.Enforcement != "" {
		t.Fatalf("the spec was written: generation %d, enforcement %q", p.Generation, p.Spec.Enforcement)
	}
	setHold("")
	dryRun("", "")
}
