package e2e

import (
	"fmt"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/fakeistiod"
	"github.com/meshplane/meshplane/test/fakeprom"
	"github.com/meshplane/meshplane/test/harness"
)

// TestAuditPromotion enrols two namespaces (one wave) into Istio sidecar
// with an audit window of 2 s against a scripted metrics server. Their
// ZeroTrustPolicies run in Audit (each AuthorizationPolicy carries
// istio.io/dry-run) before the namespaces are labelled. With 4 would-be
// denials in au-1 the wave is held in Audit with the count in status;
// once the server reports 0 and the spec changes (the documented retry)
// the wave is audited again, promoted to Enforce, and the dry-run marker
// is gone from every AuthorizationPolicy. The policies' specs are never
// written (enforcement stays unset).
func TestAuditPromotion(t *testing.T) {
	parallel(t)
	sim := cluster.UseSimulated(t, cluster.SimulatedOptions{Nodes: 2, CRDs: &cluster.CRDOptions{NoThirdParty: true}})
	inj := fakeistiod.Start(t)
	prom := fakeprom.Start(t)
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.28.1")
	repo := chartrepo.Serve(t, dir)
	m := harness.StartManager(t, sim.Config)
	c := m.Client
	values := fmt.Sprintf(`{"injector":{"url":%q,"caBundle":%q}}`, inj.URL, inj.CABundle)
	if err := c.Create(ctx, &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1",
			Chart: &meshv1alpha1.ChartSource{Repository: repo.URL}, Values: &apiextensionsv1.JSON{Raw: []byte(values)}}}); err != nil {
		t.Fatal(err)
	}
	waitMI(t, c, "istio", 60*time.Second, "Ready", ready)
	nss := []string{"au-1", "au-2"}
	makeApps(t, c, nss, nil, 1)
	for _, ns := range nss {
		if err := c.Create(ctx, &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: meshv1alpha1.ZeroTrustPolicySpec{Rules: []meshv1alpha1.AllowRule{{
				From: []meshv1alpha1.TrafficSource{{ServiceAccounts: []string{"frontend"}}},
				To:   []meshv1alpha1.TrafficDestination{{Ports: []int32{8080}}}}}}}); err != nil {
			t.Fatal(err)
		}
	}
	harness.Eventually(t, 60*time.Second, "apps available", func() error { return allAvailable(c, nss) })
	prom.Set(`namespace="au-1"`, 4)
	prom.Set(`namespace="au-2"`, 0)

	ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: "audit"},
		Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "istio"}, Namespaces: nss,
			Waves: meshv1alpha1.AdoptionWaves{Size: 2, HealthTimeout: &metav1.Duration{Duration: 30 * time.Second},
				Audit: &meshv1alpha1.AdoptionAudit{Window: metav1.Duration{Duration: 2 * time.Second},
					MetricsServer: meshv1alpha1.MetricsServer{Address: prom.URL}}}}}
	start := time.Now()
	if err := c.Create(ctx, ma); err != nil {
		t.Fatal(err)
	}
	got := waitAdoption(t, c, "audit", 45*time.Second, "held by would-be denials", func(ma *meshv1alpha1.MeshAdoption) bool {
		return adoptionCond(ma, meshv1alpha1.StalledCondition, meshv1alpha1.WouldBeDeniedReason)
	})
	held := time.Since(start)
	if w := got.Status.Waves; len(w) != 1 || w[0].Phase != meshv1alpha1.WaveAuditing || w[0].WouldBeDenied == nil || *w[0].WouldBeDenied != 4 {
		t.Fatalf("held wave: %+v", w)
	}
	for _, ns := range nss {
		if dryRun(t, c, ns) != "true" {
			t.Fatalf("%s: AuthorizationPolicy web not in dry run while the wave audits", ns)
		}
	}

	prom.Set(`namespace="au-1"`, 0)
	resumed := time.Now()
	got.Spec.Paused = true
	if err := c.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 10*time.Second, "unpause", func() error {
		if err := c.Get(ctx, client.ObjectKey{Name: "audit"}, got); err != nil {
			return err
		}
		got.Spec.Paused = false
		return c.Update(ctx, got)
	})
	got = waitAdoption(t, c, "audit", 45*time.Second, "promoted and completed", func(ma *meshv1alpha1.MeshAdoption) bool {
		return adoptionCond(ma, meshv1alpha1.ReadyCondition, "") && ma.Status.Phase == meshv1alpha1.AdoptionCompleted
	})
	t.Logf("held with 4 would-be denials after %s; promoted and completed %s after the retry; waves: %s",
		held.Round(10*time.Millisecond), time.Since(resumed).Round(10*time.Millisecond), waveTimes(got))
	if w := got.Status.Waves[len(got.Status.Waves)-1]; w.PromotionTime == nil || w.WouldBeDenied == nil || *w.WouldBeDenied != 0 {
		t.Fatalf("promoted wave: %+v", w)
	}
	harness.Eventually(t, 20*time.Second, "dry-run marker removed", func() error {
		for _, ns := range nss {
			if v := dryRun(t, c, ns); v != "" {
				return fmt.Errorf("%s: AuthorizationPolicy web still has istio.io/dry-run=%q", ns, v)
			}
		}
		return nil
	})
	for _, ns := range nss {
		var p meshv1alpha1.ZeroTrustPolicy
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &p); err != nil || p.Spec.Enforcement != "" || p.Generation != 1 {
			t.Fatalf("%s: policy spec written (enforcement %q, generation %d, %v)", ns, p.Spec.Enforcement, p.Generation, err)
		}
	}
}

// dryRun is the istio.io/dry-run annotation of AuthorizationPolicy web in
// ns.
func dryRun(t *testing.T, c client.Client, ns string) string {
	t.Helper()
	return getU(t, c, "security.istio.io", "v1", "AuthorizationPolicy", ns, "web").GetAnnotations()["istio.io/dry-run"]
}
