// Package upgrade benchmarks a RevisionBased Istio upgrade on the simulated
// cluster against the bare time of restarting the same Deployments.
package upgrade

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/fakeistiod"
	"github.com/meshplane/meshplane/test/harness"
)

const (
	namespaces = 100
	batchSize  = 10
)

var ctx = context.Background()

// BenchmarkRevisionUpgrade prints the time to upgrade 100 namespaces (one
// Deployment each) with batch size 10, and the bare time to restart the
// same Deployments all at once and in the same batches without Meshplane.
func BenchmarkRevisionUpgrade(b *testing.B) {
	sim := cluster.UseSimulated(b, cluster.SimulatedOptions{Nodes: 3, CRDs: &cluster.CRDOptions{NoThirdParty: true}})
	inj := fakeistiod.Start(b)
	dir := b.TempDir()
	charts.StageIstio(b, dir, "1.28.1", "1.29.0")
	repo := chartrepo.Serve(b, dir)
	c := harness.StartManager(b, sim.Config).Client

	values := fmt.Sprintf(`{"injector":{"url":%q,"caBundle":%q}}`, inj.URL, inj.CABundle)
	mi := &meshv1alpha1.MeshInstall{
		ObjectMeta: metav1.ObjectMeta{Name: "istio"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1",
			Chart: &meshv1alpha1.ChartSource{Repository: repo.URL}, Values: &apiextensionsv1.JSON{Raw: []byte(values)},
			Upgrade: &meshv1alpha1.UpgradeSpec{Strategy: meshv1alpha1.UpgradeRevisionBased, RevisionRetention: &metav1.Duration{},
				Rollout: &meshv1alpha1.WorkloadRolloutPlan{BatchSize: batchSize, HealthTimeout: &metav1.Duration{Duration: 5 * time.Minute}}}},
	}
	if err := c.Create(ctx, mi); err != nil {
		b.Fatal(err)
	}
	waitMI(b, c, func(mi *meshv1alpha1.MeshInstall) bool { return readyMI(mi) })
	var nss []string
	for i := range namespaces {
		ns := fmt.Sprintf("bench-%03d", i)
		nss = append(nss, ns)
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"istio.io/rev": "1-28-1"}}}); err != nil {
			b.Fatal(err)
		}
		if err := c.Create(ctx, deployment(ns)); err != nil {
			b.Fatal(err)
		}
	}
	waitRolledOut(b, c, nss)

	b.ResetTimer()
	start := time.Now()
	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"version":"1.29.0"}}`))
	if err := c.Patch(ctx, &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"}}, patch); err != nil {
		b.Fatal(err)
	}
	waitMI(b, c, func(mi *meshv1alpha1.MeshInstall) bool {
		return readyMI(mi) && mi.Status.Upgrade != nil && mi.Status.Upgrade.Phase == meshv1alpha1.UpgradeCompleted
	})
	upgrade := time.Since(start)
	b.StopTimer()

	restart := func(batch []string, stamp string) {
		for _, ns := range batch {
			p := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"template":{"metadata":{"annotations":{"bench/restart":"`+stamp+`"}}}}}`))
			if err := c.Patch(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}}, p); err != nil {
				b.Fatal(err)
			}
		}
		waitRolledOut(b, c, batch)
	}
	start = time.Now()
	restart(nss, "all")
	all := time.Since(start)
	start = time.Now()
	for i := 0; i < len(nss); i += batchSize {
		restart(nss[i:min(i+batchSize, len(nss))], "batched")
	}
	batched := time.Since(start)

	b.ReportMetric(upgrade.Seconds(), "upgrade-s")
	b.ReportMetric(upgrade.Seconds()/all.Seconds(), "ratio-vs-restart-all")
	b.ReportMetric(upgrade.Seconds()/batched.Seconds(), "ratio-vs-restart-batched")
	b.Logf("RevisionBased upgrade of %d namespaces (batches of %d, new istiod, tag move, old revision removed): %s", namespaces, batchSize, upgrade.Round(10*time.Millisecond))
	b.Logf("bare restart of the same Deployments, all at once: %s (ratio %.2f×)", all.Round(10*time.Millisecond), upgrade.Seconds()/all.Seconds())
	b.Logf("bare restart in the same batches of %d: %s (ratio %.2f×)", batchSize, batched.Round(10*time.Millisecond), upgrade.Seconds()/batched.Seconds())
}

func deployment(ns string) *appsv1.Deployment {
	l := map[string]string{"app": "app"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: l},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}}}}},
	}
}

func waitRolledOut(b *testing.B, c client.Client, nss []string) {
	b.Helper()
	harness.Eventually(b, 10*time.Minute, "deployments rolled out", func() error {
		for _, ns := range nss {
			var d appsv1.Deployment
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, &d); err != nil {
				return err
			}
			if d.Status.ObservedGeneration < d.Generation || d.Status.UpdatedReplicas != 1 || d.Status.AvailableReplicas != 1 || d.Status.Replicas != 1 {
				return fmt.Errorf("%s not rolled out", ns)
			}
		}
		return nil
	})
}

func readyMI(mi *meshv1alpha1.MeshInstall) bool {
	cd := apimeta.FindStatusCondition(mi.Status.Conditions, meshv1alpha1.ReadyCondition)
	return cd != nil && cd.Status == metav1.ConditionTrue && mi.Status.ObservedGeneration == mi.Generation
}

func waitMI(b *testing.B, c client.Client, ok func(*meshv1alpha1.MeshInstall) bool) {
	b.Helper()
	harness.Eventually(b, 10*time.Minute, "MeshInstall istio", func() error {
		var mi meshv1alpha1.MeshInstall
		if err := c.Get(ctx, client.ObjectKey{Name: "istio"}, &mi); err != nil {
			return err
		}
		if !ok(&mi) {
			return fmt.Errorf("conditions %+v upgrade %+v", mi.Status.Conditions, mi.Status.Upgrade)
		}
		return nil
	})
}
