package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	istiotelemetry "istio.io/client-go/pkg/apis/telemetry/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/harness"
)

// TestTelemetryPolicy runs TelemetryPolicies on the simulated cluster with
// the Istio charts installed by a MeshInstall (profile Ambient, which also
// serves sidecar namespaces): in the sidecar namespace the policy becomes a
// Telemetry; in the ambient namespace it is refused (ztunnel has no L7
// telemetry); a BreakGlass over the sidecar namespace leaves the Telemetry
// untouched and, once deleted, the policy is Ready again without a write;
// deleting the policy lets the garbage collector delete the Telemetry.
func TestTelemetryPolicy(t *testing.T) {
	parallel(t)
	sim := cluster.UseSimulated(t, cluster.SimulatedOptions{Nodes: 1,
		CRDs: &cluster.CRDOptions{ThirdParty: []cluster.CRDSet{cluster.Istio, cluster.GatewayAPI}}})
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.28.1")
	repo := chartrepo.Serve(t, dir)
	c := harness.StartManager(t, sim.Config).Client

	const side, amb = "tel-sidecar", "tel-ambient"
	for ns, labels := range map[string]map[string]string{side: {"istio-injection": "enabled"}, amb: {"istio.io/dataplane-mode": "ambient"}} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1",
			Profile: meshv1alpha1.ProfileAmbient, Chart: &meshv1alpha1.ChartSource{Repository: repo.URL}}}
	if err := c.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	waitMI(t, c, "istio", 60*time.Second, "Ready", ready)

	policy := func(ns string) *meshv1alpha1.TelemetryPolicy {
		return &meshv1alpha1.TelemetryPolicy{ObjectMeta: metav1.ObjectMeta{Name: "telemetry", Namespace: ns},
			Spec: meshv1alpha1.TelemetryPolicySpec{
				Tracing:       &meshv1alpha1.TracingSettings{Enabled: true, SamplingPercentage: "10"},
				AccessLogging: &meshv1alpha1.AccessLogSettings{Enabled: true, Filter: &meshv1alpha1.AccessLogFilter{MinResponseCode: 500}}}}
	}
	sp, ap := policy(side), policy(amb)
	for _, p := range []*meshv1alpha1.TelemetryPolicy{sp, ap} {
		if err := c.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	tel := &istiotelemetry.Telemetry{}
	harness.Eventually(t, 30*time.Second, "sidecar policy Ready with its Telemetry", func() error {
		if err := readyAt(c, sp); err != nil {
			return err
		}
		return c.Get(ctx, client.ObjectKeyFromObject(sp), tel)
	})
	if got := tel.Spec.AccessLogging[0].GetFilter().GetExpression(); got != "response.code >= 500" {
		t.Fatalf("access-log filter %q", got)
	}
	harness.Eventually(t, 30*time.Second, "ambient policy refused", func() error {
		cur := &meshv1alpha1.TelemetryPolicy{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(ap), cur); err != nil {
			return err
		}
		r := apimeta.FindStatusCondition(cur.Status.Conditions, meshv1alpha1.ReadyCondition)
		if r == nil || r.Reason != meshv1alpha1.UnsupportedFeatureReason || !strings.Contains(r.Message, "ambient namespace "+amb) {
			return fmt.Errorf("Ready %+v", r)
		}
		return nil
	})
	if err := c.Get(ctx, client.ObjectKeyFromObject(ap), &istiotelemetry.Telemetry{}); !apierrors.IsNotFound(err) {
		t.Fatalf("Telemetry written in the ambient namespace: %v", err)
	}

	// A BreakGlass leaves telemetry alone.
	rv := tel.ResourceVersion
	bg := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "telemetry-stays"},
		Spec: meshv1alpha1.BreakGlassSpec{Reason: "istiod outage (INC-9)",
			Target: meshv1alpha1.BreakGlassTarget{MeshInstallRef: &meshv1alpha1.LocalObjectReference{Name: "istio"}},
			Scope:  &meshv1alpha1.BreakGlassScope{Namespaces: []string{side}}}}
	if err := c.Create(ctx, bg); err != nil {
		t.Fatal(err)
	}
	waitBG(t, c, bg, meshv1alpha1.BreakGlassEngaged)
	if err := c.Delete(ctx, bg); err != nil {
		t.Fatal(err)
	}
	waitGoneBG(t, c, bg)
	harness.Eventually(t, 30*time.Second, "sidecar policy Ready after the BreakGlass", func() error { return readyAt(c, sp) })
	if err := c.Get(ctx, client.ObjectKeyFromObject(sp), tel); err != nil || tel.ResourceVersion != rv {
		t.Fatalf("Telemetry written across the BreakGlass (resourceVersion %s -> %s): %v", rv, tel.ResourceVersion, err)
	}

	if err := c.Delete(ctx, sp); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 30*time.Second, "Telemetry garbage-collected", func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(sp), &istiotelemetry.Telemetry{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("Telemetry: %v", err)
		}
		return nil
	})
	t.Logf("done in %s", time.Since(start).Round(10*time.Millisecond))
}

// readyAt reports whether p is Ready at its current generation.
func readyAt(c client.Client, p *meshv1alpha1.TelemetryPolicy) error {
	cur := &meshv1alpha1.TelemetryPolicy{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(p), cur); err != nil {
		return err
	}
	r := apimeta.FindStatusCondition(cur.Status.Conditions, meshv1alpha1.ReadyCondition)
	if r == nil || r.Status != metav1.ConditionTrue || cur.Status.ObservedGeneration != cur.Generation {
		return fmt.Errorf("Ready %+v", r)
	}
	return nil
}
