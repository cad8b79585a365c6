package e2e

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/helm"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/fakeistiod"
	"github.com/meshplane/meshplane/test/harness"
)

// TestIstioRevisionUpgrade installs Istio revision-based, meshes 10
// namespaces × 3 Deployments, upgrades 1.28.1 → 1.29.0 in batches of 3 and
// checks every pod ends on the new revision, the old revision is removed,
// and no namespace is ever without a Ready pod. Then an upgrade to 1.30.0
// whose second batch cannot become Ready fails its health gate, is moved
// back and held; abort returns everything to 1.29.0.
func TestIstioRevisionUpgrade(t *testing.T) {
	parallel(t)
	sim := cluster.UseSimulated(t, cluster.SimulatedOptions{Nodes: 2, CRDs: &cluster.CRDOptions{NoThirdParty: true}})
	inj := fakeistiod.Start(t)
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.28.1", "1.29.0", "1.30.0")
	repo := chartrepo.Serve(t, dir)
	m := harness.StartManager(t, sim.Config)
	c := m.Client

	values := fmt.Sprintf(`{"injector":{"url":%q,"caBundle":%q}}`, inj.URL, inj.CABundle)
	mi := &meshv1alpha1.MeshInstall{
		ObjectMeta: metav1.ObjectMeta{Name: "istio"},
		Spec: meshv1alpha1.MeshInstallSpec{
			Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1",
			Chart:  &meshv1alpha1.ChartSource{Repository: repo.URL},
			Values: &apiextensionsv1.JSON{Raw: []byte(values)},
			Upgrade: &meshv1alpha1.UpgradeSpec{
				Strategy:          meshv1alpha1.UpgradeRevisionBased,
				RevisionRetention: &metav1.Duration{Duration: time.Second},
				Rollout:           &meshv1alpha1.WorkloadRolloutPlan{BatchSize: 3, HealthTimeout: &metav1.Duration{Duration: 60 * time.Second}},
			},
		},
	}
	start := time.Now()
	if err := c.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	got := waitMI(t, c, "istio", 60*time.Second, "Ready on 1.28.1", ready)
	if got.Status.ActiveRevision != "1-28-1" {
		t.Fatalf("active revision %q, want 1-28-1", got.Status.ActiveRevision)
	}
	t.Logf("Istio 1.28.1 (revision 1-28-1) Ready in %s", time.Since(start).Round(10*time.Millisecond))

	var nss []string
	for i := range 10 {
		nss = append(nss, fmt.Sprintf("app-%02d", i))
	}
	// Half select the revision explicitly, half follow the default tag.
	makeApps(t, c, nss[:5], map[string]string{"istio.io/rev": "1-28-1"}, 3)
	makeApps(t, c, nss[5:], map[string]string{"istio-injection": "enabled"}, 3)
	harness.Eventually(t, 60*time.Second, "apps available", func() error { return allAvailable(c, nss) })
	if revs := podRevisions(t, c, nss); revs["1-28-1"] != 30 {
		t.Fatalf("pods per revision before the upgrade: %v, want 30 on 1-28-1", revs)
	}
	rw := watchReadiness(t, sim.Config, nss)
	rw.arm()

	start = time.Now()
	setVersion(t, c, "1.29.0", nil)
	got = waitMI(t, c, "istio", 3*time.Minute, "upgrade to 1.29.0 completed", func(mi *meshv1alpha1.MeshInstall) bool {
		return ready(mi) && mi.Status.Upgrade != nil && mi.Status.Upgrade.Phase == meshv1alpha1.UpgradeCompleted
	})
	t.Logf("RevisionBased upgrade 1.28.1 → 1.29.0 of 10 namespaces × 3 Deployments in batches of 3: %s", time.Since(start).Round(10*time.Millisecond))
	if got.Status.ActiveRevision != "1-29-0" || got.Status.Upgrade.MigratedNamespaces != 10 {
		t.Fatalf("after the upgrade: %s", describe(got))
	}
	harness.Eventually(t, 30*time.Second, "every pod on 1-29-0", func() error {
		if revs := podRevisions(t, c, nss); revs["1-29-0"] != 30 || len(revs) != 1 {
			return fmt.Errorf("pods per revision: %v", revs)
		}
		return nil
	})
	for _, ns := range nss[:5] {
		var n corev1.Namespace
		if err := c.Get(ctx, client.ObjectKey{Name: ns}, &n); err != nil || n.Labels["istio.io/rev"] != "1-29-0" {
			t.Fatalf("namespace %s labels %v (%v)", ns, n.Labels, err)
		}
	}
	if err := c.Get(ctx, client.ObjectKey{Name: "1-28-1"}, &meshv1alpha1.MeshRevision{}); !apierrors.IsNotFound(err) {
		t.Fatalf("MeshRevision 1-28-1: %v, want removed", err)
	}
	engine, err := helm.New(sim.Config, helm.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Get(ctx, "istiod-1-28-1", "istio-system"); err == nil {
		t.Fatal("istiod-1-28-1 is still installed")
	}
	rw.check(t)

	// A Deployment that cannot become Ready on 1.30.0 fails the second
	// batch's health gate.
	inj.FailWhen(func(rev string, _ *corev1.Pod, ns string) bool { return rev == "1-30-0" && ns == "app-04" })
	start = time.Now()
	setVersion(t, c, "1.30.0", &metav1.Duration{Duration: 8 * time.Second})
	got = waitMI(t, c, "istio", 3*time.Minute, "health gate failed", func(mi *meshv1alpha1.MeshInstall) bool {
		return stalled(mi, meshv1alpha1.HealthGateFailedReason)
	})
	t.Logf("health gate failed after %s: %s", time.Since(start).Round(10*time.Millisecond), got.Status.Upgrade.Message)
	if got.Status.Upgrade.Phase != meshv1alpha1.UpgradeFailed || got.Status.Upgrade.MigratedNamespaces < 3 {
		t.Fatalf("after the failed gate: %s", describe(got))
	}
	harness.Eventually(t, 60*time.Second, "failed batch moved back", func() error {
		// Which namespaces share the failing batch depends on timing (a
		// tag follower whose pods already moved counts as migrated); the
		// failing namespace itself must be back on the old revision.
		var n corev1.Namespace
		if err := c.Get(ctx, client.ObjectKey{Name: "app-04"}, &n); err != nil {
			return err
		}
		if n.Labels["istio.io/rev"] != "1-29-0" {
			return fmt.Errorf("namespace app-04 on %q, want 1-29-0", n.Labels["istio.io/rev"])
		}
		return allAvailable(c, nss)
	})
	// Held: nothing moves while the spec is unchanged.
	time.Sleep(3 * time.Second)
	if again, _ := getMI(c, "istio"); again.Status.Upgrade.Phase != meshv1alpha1.UpgradeFailed || !stalled(again, meshv1alpha1.HealthGateFailedReason) {
		t.Fatalf("the upgrade did not hold: %s", describe(again))
	}

	start = time.Now()
	cur, _ := getMI(c, "istio")
	base := cur.DeepCopy()
	cur.Spec.Upgrade.Abort = true
	if err := c.Patch(ctx, cur, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
	got = waitMI(t, c, "istio", 2*time.Minute, "aborted", func(mi *meshv1alpha1.MeshInstall) bool {
		return stalled(mi, meshv1alpha1.UpgradeAbortedReason)
	})
	t.Logf("abort moved everything back in %s", time.Since(start).Round(10*time.Millisecond))
	if got.Status.ActiveRevision != "1-29-0" {
		t.Fatalf("after abort: %s", describe(got))
	}
	harness.Eventually(t, 60*time.Second, "every pod back on 1-29-0", func() error {
		if revs := podRevisions(t, c, nss); revs["1-29-0"] != 30 || len(revs) != 1 {
			return fmt.Errorf("pods per revision: %v", revs)
		}
		return allAvailable(c, nss)
	})
	rw.check(t)
}

func setVersion(t *testing.T, c client.Client, v string, healthTimeout *metav1.Duration) {
	t.Helper()
	cur, err := getMI(c, "istio")
	if err != nil {
		t.Fatal(err)
	}
	base := cur.DeepCopy()
	cur.Spec.Version = v
	if healthTimeout != nil {
		cur.Spec.Upgrade.Rollout.HealthTimeout = healthTimeout
	}
	if err := c.Patch(ctx, cur, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
}
