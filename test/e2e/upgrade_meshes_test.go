package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/upgrade"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/fakeistiod"
	"github.com/meshplane/meshplane/test/harness"
)

// TestLinkerdInPlaceUpgrade installs the real Linkerd charts (the module
// cache's, staged as edge-26.1.1 and edge-26.1.2), meshes 4 namespaces × 2
// Deployments and upgrades in place: the control plane rolls to the new
// version, then the data plane restarts in batches of 2 namespaces, each
// workload once, and no namespace is ever without a Ready pod.
func TestLinkerdInPlaceUpgrade(t *testing.T) {
	parallel(t)
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

// TestCiliumUpgrade installs the real cilium chart (the module cache's
// 1.19.5) on a two-node simulated cluster and upgrades it in place to a
// 1.19.6 built from it (its images retagged): the agent DaemonSet rolls
// out on every node, which is the whole upgrade (no namespace restarts).
func TestCiliumUpgrade(t *testing.T) {
	parallel(t)
	// Cilium's operator creates its CRDs at run time; nothing runs it here.
	sim := cluster.UseSimulated(t, cluster.SimulatedOptions{Nodes: 2, CRDs: &cluster.CRDOptions{ThirdParty: []cluster.CRDSet{cluster.Cilium}}})
	dir := t.TempDir()
	charts.Stage(t, dir, charts.Chart{Name: charts.Cilium, Version: "1.19.5", Unpacked: true},
		charts.Chart{Name: charts.Cilium, Version: "1.19.6", Unpacked: true})
	retag(t, filepath.Join(dir, "cilium-1.19.6", "values.yaml"), `tag: "v1.19.5"`, `tag: "v1.19.6"`)
	c := harness.StartManager(t, sim.Config).Client
	mi := &meshv1alpha1.MeshInstall{
		ObjectMeta: metav1.ObjectMeta{Name: "cilium"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderCilium, Version: "1.19.5",
			Chart:  &meshv1alpha1.ChartSource{Path: dir},
			Values: &apiextensionsv1.JSON{Raw: []byte(`{"k8sServiceHost":"127.0.0.1","k8sServicePort":6443}`)}},
	}
	start := time.Now()
	if err := c.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	got := waitMI(t, c, "cilium", 55*time.Second, "Cilium 1.19.5 Ready", ready)
	t.Logf("Cilium 1.19.5 Ready in %s", time.Since(start).Round(10*time.Millisecond))
	agent := func() *appsv1.DaemonSet {
		t.Helper()
		ds := &appsv1.DaemonSet{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: got.Status.Namespace, Name: "cilium"}, ds); err != nil {
			t.Fatal(err)
		}
		return ds
	}
	if ds := agent(); ds.Status.NumberAvailable != 2 || !strings.Contains(ds.Spec.Template.Spec.Containers[0].Image, "v1.19.5") {
		t.Fatalf("agent before the upgrade: image %s, %d available", ds.Spec.Template.Spec.Containers[0].Image, ds.Status.NumberAvailable)
	}

	start = time.Now()
	cur, err := getMI(c, "cilium")
	if err != nil {
		t.Fatal(err)
	}
	base := cur.DeepCopy()
	cur.Spec.Version = "1.19.6"
	if err := c.Patch(ctx, cur, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
	got = waitMI(t, c, "cilium", 55*time.Second, "upgrade to 1.19.6 completed", func(mi *meshv1alpha1.MeshInstall) bool {
		return ready(mi) && mi.Status.InstalledVersion == "1.19.6" && mi.Status.Upgrade != nil && mi.Status.Upgrade.Phase == meshv1alpha1.UpgradeCompleted
	})
	t.Logf("Cilium in-place upgrade 1.19.5 → 1.19.6 (agent DaemonSet on 2 nodes): %s", time.Since(start).Round(10*time.Millisecond))
	ds := agent()
	if !strings.Contains(ds.Spec.Template.Spec.Containers[0].Image, "v1.19.6") || ds.Status.UpdatedNumberScheduled != 2 || ds.Status.NumberAvailable != 2 ||
		ds.Status.ObservedGeneration != ds.Generation {
		t.Fatalf("agent after the upgrade: image %s, status %+v", ds.Spec.Template.Spec.Containers[0].Image, ds.Status)
	}
	if got.Status.Upgrade.TotalNamespaces != 0 {
		t.Errorf("a node data plane restarted namespaces: %s", describe(got))
	}
}

// retag replaces old with new in a staged chart file.
func retag(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s has no %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(b), old, new)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestIstioUpgradeTo132 upgrades a RevisionBased Istio install from 1.30.0
// to 1.32.0 (fixture charts at those versions; the operator built against
// Istio 1.32's API types) with 4 meshed namespaces × 2 Deployments in
// batches of 2: every pod ends on revision 1-32-0, the default tag and its
// istiod-default-validator point at it, and no namespace is ever without a
// Ready pod.
func TestIstioUpgradeTo132(t *testing.T) {
	parallel(t)
	sim := cluster.UseSimulated(t, cluster.SimulatedOptions{Nodes: 1, CRDs: &cluster.CRDOptions{NoThirdParty: true}})
	inj := fakeistiod.Start(t)
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.30.0", "1.32.0")
	c := harness.StartManager(t, sim.Config).Client
	values := fmt.Sprintf(`{"injector":{"url":%q,"caBundle":%q}}`, inj.URL, inj.CABundle)
	mi := &meshv1alpha1.MeshInstall{
		ObjectMeta: metav1.ObjectMeta{Name: "istio"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.30.0",
			Chart: &meshv1alpha1.ChartSource{Path: dir}, Values: &apiextensionsv1.JSON{Raw: []byte(values)},
			Upgrade: &meshv1alpha1.UpgradeSpec{Strategy: meshv1alpha1.UpgradeRevisionBased,
				RevisionRetention: &metav1.Duration{Duration: time.Second},
				Rollout:           &meshv1alpha1.WorkloadRolloutPlan{BatchSize: 2, HealthTimeout: &metav1.Duration{Duration: 40 * time.Second}}}},
	}
	start := time.Now()
	if err := c.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	waitMI(t, c, "istio", 50*time.Second, "Ready on 1.30.0", ready)
	t.Logf("Istio 1.30.0 (revision 1-30-0) Ready in %s", time.Since(start).Round(10*time.Millisecond))
	nss := []string{"is-00", "is-01", "is-02", "is-03"}
	makeApps(t, c, nss[:2], map[string]string{"istio.io/rev": "1-30-0"}, 2)
	makeApps(t, c, nss[2:], map[string]string{"istio-injection": "enabled"}, 2)
	harness.Eventually(t, 40*time.Second, "apps available", func() error { return allAvailable(c, nss) })
	rw := watchReadiness(t, sim.Config, nss)
	rw.arm()

	start = time.Now()
	setVersion(t, c, "1.32.0", nil)
	got := waitMI(t, c, "istio", 55*time.Second, "upgrade to 1.32.0 completed", func(mi *meshv1alpha1.MeshInstall) bool {
		return ready(mi) && mi.Status.Upgrade != nil && mi.Status.Upgrade.Phase == meshv1alpha1.UpgradeCompleted
	})
	t.Logf("Istio RevisionBased upgrade 1.30.0 → 1.32.0 of 4 namespaces × 2 Deployments in batches of 2: %s", time.Since(start).Round(10*time.Millisecond))
	if got.Status.ActiveRevision != "1-32-0" || got.Status.InstalledVersion != "1.32.0" || got.Status.Upgrade.MigratedNamespaces != 4 {
		t.Fatalf("after the upgrade: %s", describe(got))
	}
	if revs := podRevisions(t, c, nss); revs["1-32-0"] != 8 || len(revs) != 1 {
		t.Fatalf("pods per revision: %v", revs)
	}
	var v admissionregistrationv1.ValidatingWebhookConfiguration
	if err := c.Get(ctx, client.ObjectKey{Name: "istiod-default-validator"}, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Webhooks) != 1 || v.Labels["istio.io/rev"] != "1-32-0" {
		t.Fatalf("istiod-default-validator after the upgrade: labels %v", v.Labels)
	}
	rw.check(t)
}
