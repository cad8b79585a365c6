package e2e

import (
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/upgrade"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/harness"
)

// TestLinkerdInPlaceUpgrade installs the real Linkerd charts (the module
// cache's, staged as edge-26.1.1 and edge-26.1.2), meshes 4 namespaces × 2
// Deployments and upgrades in place: the control plane rolls to the new
// version, then the data plane restarts in batches of 2 namespaces, each
// workload once, and no namespace is ever without a Ready pod.
func TestLinkerdInPlaceUpgrade(t *testing.T) {
	sim := cluster.UseSimulated(t, cluster.SimulatedOptions{Nodes: 1, CRDs: &cluster.CRDOptions{NoThirdParty: true}})
	dir := t.TempDir()
	charts.StageLinkerd(t, dir, "2026.1.1", "2026.1.2")
	c := harness.StartManager(t, sim.Config).Client
	mi := &meshv1alpha1.MeshInstall{
		ObjectMeta: metav1.ObjectMeta{Name: "linkerd"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderLinkerd, Version: "edge-26.1.1",
			Chart: &meshv1alpha1.ChartSource{Path: dir},
			Upgrade: &meshv1alpha1.UpgradeSpec{Strategy: meshv1alpha1.UpgradeInPlace,
				Rollout: &meshv1alpha1.WorkloadRolloutPlan{BatchSize: 2, HealthTimeout: &metav1.Duration{Duration: 40 * time.Second}}}},
	}
	start := time.Now()
	if err := c.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	waitMI(t, c, "linkerd", 50*time.Second, "Linkerd edge-26.1.1 Ready", ready)
	t.Logf("Linkerd edge-26.1.1 Ready in %s", time.Since(start).Round(10*time.Millisecond))

	var nss []string
	for i := range 4 {
		ns := fmt.Sprintf("lk-%02d", i)
		nss = append(nss, ns)
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
			Annotations: map[string]string{"linkerd.io/inject": "enabled"}}}); err != nil {
			t.Fatal(err)
		}
		makeAppsIn(t, c, ns, 2)
	}
	harness.Eventually(t, 40*time.Second, "apps available", func() error { return allAvailable(c, nss) })
	rw := watchReadiness(t, sim.Config, nss)
	rw.arm()

	start = time.Now()
	cur, err := getMI(c, "linkerd")
	if err != nil {
		t.Fatal(err)
	}
	base := cur.DeepCopy()
	cur.Spec.Version = "edge-26.1.2"
	if err := c.Patch(ctx, cur, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
	got := waitMI(t, c, "linkerd", 55*time.Second, "in-place upgrade to edge-26.1.2 completed", func(mi *meshv1alpha1.MeshInstall) bool {
		return ready(mi) && mi.Status.Upgrade != nil && mi.Status.Upgrade.Phase == meshv1alpha1.UpgradeCompleted
	})
	t.Logf("Linkerd in-place upgrade edge-26.1.1 → edge-26.1.2 of 4 namespaces × 2 Deployments in batches of 2: %s", time.Since(start).Round(10*time.Millisecond))
	if got.Status.InstalledVersion != "edge-26.1.2" || got.Status.Upgrade.MigratedNamespaces != 4 || got.Status.Upgrade.TotalNamespaces != 4 {
		t.Fatalf("after the upgrade: %s", describe(got))
	}
	var cp appsv1.DeploymentList
	if err := c.List(ctx, &cp, client.InNamespace(got.Status.Namespace)); err != nil {
		t.Fatal(err)
	}
	for _, d := range cp.Items {
		if v := d.Labels["linkerd.io/control-plane-version"]; v != "" && v != "edge-26.1.2" {
			t.Errorf("control-plane Deployment %s runs %s, want edge-26.1.2", d.Name, v)
		}
	}
	for _, ns := range nss {
		var deps appsv1.DeploymentList
		if err := c.List(ctx, &deps, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		for _, d := range deps.Items {
			if d.Generation != 2 {
				t.Errorf("Deployment %s/%s generation %d: restarted %d times, want once", ns, d.Name, d.Generation, d.Generation-1)
			}
			if s := d.Spec.Template.Annotations[upgrade.DataPlaneAnnotation]; len(s) < len("edge-26.1.2") || s[:len("edge-26.1.2")] != "edge-26.1.2" {
				t.Errorf("Deployment %s/%s data-plane stamp %q, want edge-26.1.2…", ns, d.Name, s)
			}
		}
	}
	rw.check(t)
}
