package zerotrustpolicy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	securityapi "istio.io/api/security/v1beta1"
	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/bgsim"
	"github.com/meshplane/meshplane/test/cluster"
)

func conditionOf(p *meshv1alpha1.ZeroTrustPolicy, typ string) string {
	c := status.Get(&p.Status.CommonStatus, typ)
	if c == nil {
		return "<none>"
	}
	return string(c.Status) + "/" + c.Reason + ": " + c.Message
}

func mtlsMode(pa *istiosecurity.PeerAuthentication) string {
	if pa.Spec.Mtls == nil {
		return "<unset>"
	}
	return pa.Spec.Mtls.Mode.String()
}

// TestZeroTrustPolicyBreakGlass checks the ZeroTrustPolicy side of the
// BreakGlass contract (internal/breakglass): while an active BreakGlass
// with relaxPolicies covers the namespace, the controller does not
// re-apply the outputs the BreakGlass relaxed — not on drift, not on a
// spec change — and says BreakGlassActive; once the BreakGlass lets go the
// policy is enforced again, including the spec change made meanwhile. The
// BreakGlass controller's own part (relaxing the PeerAuthentication,
// setting and removing the namespace annotation) is played by the test.
func TestZeroTrustPolicyBreakGlass(t *testing.T) {
	cfg := cluster.UseEnvtest(t, cluster.EnvtestOptions{})
	startManager(t, cfg)
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	must(t, err)
	ctx := context.Background()
	const ns = "incident"
	must(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"istio-injection": "enabled"}}}))
	must(t, c.Create(ctx, policy(ns, "web")))
	key := types.NamespacedName{Namespace: ns, Name: "web"}
	eventually(t, "Ready on Istio", func() (bool, string) { return ready(c, key) })
	pa := &istiosecurity.PeerAuthentication{}
	must(t, c.Get(ctx, key, pa))
	if mtlsMode(pa) != "STRICT" {
		t.Fatalf("mTLS before the incident: %s", mtlsMode(pa))
	}

	// Engage, as the BreakGlass controller does: BreakGlass active,
	// namespace annotated and detached, PeerAuthentication relaxed.
	bg := bgsim.Engage(t, c, "outage", meshv1alpha1.ProviderIstio, ns, "istio-injection")
	eventually(t, "policy held", func() (bool, string) {
		got := &meshv1alpha1.ZeroTrustPolicy{}
		_ = c.Get(ctx, key, got)
		a, r := conditionOf(got, meshv1alpha1.BreakGlassActiveCondition), conditionOf(got, meshv1alpha1.ReadyCondition)
		return strings.HasPrefix(a, "True/BreakGlassActive") && strings.HasPrefix(r, "False/BreakGlassActive"), a + "; " + r
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
	eventually(t, "spec change acknowledged while held", func() (bool, string) {
		got := &meshv1alpha1.ZeroTrustPolicy{}
		_ = c.Get(ctx, key, got)
		a := conditionOf(got, meshv1alpha1.BreakGlassActiveCondition)
		return got.Status.ObservedGeneration == got.Generation && strings.HasPrefix(a, "True/"), fmt.Sprintf("gen %d observed %d; %s", got.Generation, got.Status.ObservedGeneration, a)
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
	eventually(t, "policy enforced again", func() (bool, string) {
		got := &meshv1alpha1.ZeroTrustPolicy{}
		pa := &istiosecurity.PeerAuthentication{}
		ap := &istiosecurity.AuthorizationPolicy{}
		_ = c.Get(ctx, key, got)
		_ = c.Get(ctx, key, pa)
		_ = c.Get(ctx, key, ap)
		a := conditionOf(got, meshv1alpha1.BreakGlassActiveCondition)
		ok, r := ready(c, key)
		return ok && a == "<none>" && mtlsMode(pa) == "STRICT" && strings.Contains(ap.Spec.String(), "9090"),
			fmt.Sprintf("Ready %v %s; BreakGlassActive %s; mTLS %s", ok, r, a, mtlsMode(pa))
	})
}
