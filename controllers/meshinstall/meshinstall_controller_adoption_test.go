package meshinstall_test

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/testenv"
)

// TestUpgradeWaitsForAdoptionWave: an in-place upgrade asked for while a
// MeshAdoption wave is enrolling into the mesh waits (Reconciling, reason
// AdoptionInProgress, naming the adoption and the wave) and moves no
// release; once the wave passed its gate the upgrade runs.
func TestUpgradeWaitsForAdoptionWave(t *testing.T) {
	cfg := env.Cfg(t)
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.28.1", "1.29.0")
	repo := chartrepo.Serve(t, dir)
	m := startManager(t, cfg)
	c := m.Client
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio-interlock"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1", Namespace: "istio-interlock",
			Chart: &meshv1alpha1.ChartSource{Repository: repo.URL}, DeletionPolicy: meshv1alpha1.DeletionUninstall}}
	testenv.Must(t, c.Create(ctx, mi))
	t.Cleanup(func() { _ = c.Delete(ctx, mi) })
	waitCondition(t, c, "istio-interlock", meshv1alpha1.ComponentsReadyCondition, metav1.ConditionFalse, meshv1alpha1.ComponentsNotReadyReason)
	testenv.MarkAvailable(t, c, "istio-interlock")
	waitCondition(t, c, "istio-interlock", meshv1alpha1.ReadyCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason)
	rev := func() int {
		info, err := mustEngine(t, m).Get(ctx, "istiod", "istio-interlock")
		testenv.Must(t, err)
		return info.Revision
	}
	before := rev()

	now := metav1.Now()
	ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: "onboard-interlock"},
		Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "istio-interlock"}, Namespaces: []string{"shop-a"}}}
	testenv.Must(t, c.Create(ctx, ma))
	t.Cleanup(func() { _ = c.Delete(ctx, ma) })
	ma.Status.Phase = meshv1alpha1.AdoptionEnrolling
	ma.Status.Waves = []meshv1alpha1.AdoptionWaveStatus{{Index: 2, Namespaces: []string{"shop-a"}, Phase: meshv1alpha1.WaveEnrolling, StartTime: &now}}
	testenv.Must(t, c.Status().Update(ctx, ma))

	patchSpec(t, c, "istio-interlock", func(s *meshv1alpha1.MeshInstallSpec) { s.Version = "1.29.0" })
	want := "upgrade 1.28.1 → 1.29.0 waits for MeshAdoption onboard-interlock: wave 2 [shop-a] is enrolling into this mesh"
	testenv.Eventually(t, 30*time.Second, "upgrade waits", func() error {
		got := getMI(t, c, "istio-interlock")
		r := cond(got, meshv1alpha1.ReconcilingCondition)
		if r == nil || r.Reason != meshv1alpha1.AdoptionInProgressReason || !strings.HasPrefix(r.Message, want) {
			return testenv.Errorf("Reconciling: %+v", r)
		}
		return nil
	})
	time.Sleep(time.Second)
	if got := getMI(t, c, "istio-interlock"); rev() != before || got.Status.InstalledVersion != "1.28.1" || got.Status.Upgrade != nil {
		t.Fatalf("the upgrade started during the wave: revision %d→%d, status %+v", before, rev(), got.Status.Upgrade)
	}

	// The wave passes its gate: the upgrade runs.
	testenv.Must(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(ma), ma); err != nil {
			return err
		}
		ma.Status.Waves[0].Phase = meshv1alpha1.WaveEnrolled
		return c.Status().Update(ctx, ma)
	}))
	testenv.Eventually(t, 60*time.Second, "upgraded", func() error {
		testenv.MarkAvailable(t, c, "istio-interlock")
		if got := getMI(t, c, "istio-interlock"); got.Status.InstalledVersion != "1.29.0" {
			return testenv.Errorf("installed %s, upgrade %+v", got.Status.InstalledVersion, got.Status.Upgrade)
		}
		return nil
	})
}
