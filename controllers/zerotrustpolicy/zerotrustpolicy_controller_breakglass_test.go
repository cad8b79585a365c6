package zerotrustpolicy

import (
	"strings"
	"testing"

	securityapi "istio.io/api/security/v1beta1"
	istiosecurity "istio.io/client-go/pkg/apis/security/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/bgsim"
	"github.com/meshplane/meshplane/test/testenv"
)

func mtlsMode(pa *istiosecurity.PeerAuthentication) string {
	if pa.Spec.Mtls == nil {
		return "<unset>"
	}
	return pa.Spec.Mtls.Mode.String()
}

// TestZeroTrustPolicyBreakGlass checks the ZeroTrustPolicy side of the
// BreakGlass contract (internal/incident): while an active BreakGlass
// with relaxPolicies covers the namespace, the controller does not
// re-apply the outputs the BreakGlass relaxed — not on drift, not on a
// spec change — and says BreakGlassActive; once the BreakGlass lets go the
// policy is enforced again, including the spec change made meanwhile. The
// BreakGlass controller's own part (relaxing the PeerAuthentication,
// setting and removing the namespace annotation) is played by the test.
func TestZeroTrustPolicyBreakGlass(t *testing.T) {
	_, c := start(t)
	ns := istioNamespace(t, c)
	key := readyPolicy(t, c, ns, "Istio")
	pa := &istiosecurity.PeerAuthentication{}
	must(t, c.Get(ctx, key, pa))
	if mtlsMode(pa) != "STRICT" {
		t.Fatalf("mTLS before the incident: %s", mtlsMode(pa))
	}

	// Engage, as the BreakGlass controller does: BreakGlass active,
	// namespace annotated and detached, PeerAuthentication relaxed.
	bg := bgsim.Engage(t, c, "outage-"+ns, meshv1alpha1.ProviderIstio, ns, "istio-injection")
	testenv.Eventually(t, testenv.DefaultTimeout, "policy held", func() error {
		got := &meshv1alpha1.ZeroTrustPolicy{}
		_ = c.Get(ctx, key, got)
		a, r := conditionOf(got, meshv1alpha1.BreakGlassActiveCondition), conditionOf(got, meshv1alpha1.ReadyCondition)
		if !strings.HasPrefix(a, "True/BreakGlassActive") || !strings.HasPrefix(r, "False/BreakGlassActive") {
			return testenv.Errorf("%s; %s", a, r)
		}
		return nil
	})
	must(t, c.Get(ctx, key, pa))
	pa.Spec.Mtls = &securityapi.PeerAuthentication_MutualTLS{Mode: securityapi.PeerAuthentication_MutualTLS_PERMISSIVE}
	must(t, c.Update(ctx, pa))

	// A spec change during the incident is acknowledged (observedGeneration)
	// but applies nothing: the relaxed PeerAuthentication stays.
	p := &meshv1alpha1.ZeroTrustPolicy{}
	must(t, c.Get(ctx, key, p))
	p.Spec.Rules[0].To[0].Ports = []int32{8080, 9090}
	must(t, c.Update(ctx, p))
	testenv.Eventually(t, testenv.DefaultTimeout, "spec change acknowledged while held", func() error {
		got := &meshv1alpha1.ZeroTrustPolicy{}
		_ = c.Get(ctx, key, got)
		a := conditionOf(got, meshv1alpha1.BreakGlassActiveCondition)
		if got.Status.ObservedGeneration != got.Generation || !strings.HasPrefix(a, "True/") {
			return testenv.Errorf("gen %d observed %d; %s", got.Generation, got.Status.ObservedGeneration, a)
		}
		return nil
	})
	must(t, c.Get(ctx, key, pa))
	if mtlsMode(pa) != "PERMISSIVE" {
		t.Fatalf("the controller re-applied the relaxed PeerAuthentication during the incident: %s", mtlsMode(pa))
	}
	ap := &istiosecurity.AuthorizationPolicy{}
	must(t, c.Get(ctx, key, ap))
	if strings.Contains(ap.Spec.String(), "9090") {
		t.Fatalf("the spec change was applied during the incident: %s", ap.Spec.String())
	}

	// Restore: the namespace is put back, the BreakGlass finishes; the
	// policy is enforced again with the change made meanwhile.
	bg.Release()
	testenv.Eventually(t, testenv.DefaultTimeout, "policy enforced again", func() error {
		got := &meshv1alpha1.ZeroTrustPolicy{}
		pa := &istiosecurity.PeerAuthentication{}
		ap := &istiosecurity.AuthorizationPolicy{}
		_ = c.Get(ctx, key, got)
		_ = c.Get(ctx, key, pa)
		_ = c.Get(ctx, key, ap)
		a := conditionOf(got, meshv1alpha1.BreakGlassActiveCondition)
		rerr := ready(c, key)
		if rerr != nil || a != "<none>" || mtlsMode(pa) != "STRICT" || !strings.Contains(ap.Spec.String(), "9090") {
			return testenv.Errorf("Ready: %v; BreakGlassActive %s; mTLS %s", rerr, a, mtlsMode(pa))
		}
		return nil
	})
}
