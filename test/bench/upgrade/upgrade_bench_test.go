// Package upgrade benchmarks a RevisionBased Istio upgrade of 300
// namespaces in batches of 30 on the simulated cluster against the bare
// time of restarting the same Deployments in the same batches, and checks
// that no namespace is ever without a Ready pod during the upgrade.
// MESHPLANE_BENCH_SCALE scales the namespaces (and batch) down.
package upgrade

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/bench/report"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/fakeistiod"
	"github.com/meshplane/meshplane/test/harness"
)

var (
	namespaces = report.Count(300)
	batchSize  = report.Count(30)
)

var ctx = context.Background()

// BenchmarkRevisionUpgrade prints the time to upgrade 300 namespaces (one
// Deployment each) with batch size 30, and the bare time to restart the
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
				Rollout: &meshv1alpha1.WorkloadRolloutPlan{BatchSize: int32(batchSize), HealthTimeout: &metav1.Duration{Duration: 5 * time.Minute}}}},
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
	rw := watchReadiness(b, sim.Config, nss)
	rw.arm()

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
	violations, events := rw.result()

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

	report.Print(fmt.Sprintf("RevisionBased upgrade, %d namespaces in batches of %d", namespaces, batchSize),
		report.Goal{Name: "upgrade / bare batched restart", Value: upgrade.Seconds() / batched.Seconds(), Limit: 1.2, Unit: "×",
			Raw: fmt.Sprintf("upgrade %s (new istiod, tag move, old revision removed) vs bare restart in the same batches %s; all at once %s",
				report.Seconds(upgrade), report.Seconds(batched), report.Seconds(all))},
		report.Goal{Name: "moments with a namespace without Ready pods", Value: float64(len(violations)), Limit: 0,
			Raw: fmt.Sprintf("%d pod events seen; first: %v", events, violations[:min(3, len(violations))])},
	)
	b.ReportMetric(upgrade.Seconds(), "upgrade-s")
	b.ReportMetric(upgrade.Seconds()/all.Seconds(), "ratio-vs-restart-all")
	b.ReportMetric(upgrade.Seconds()/batched.Seconds(), "ratio-vs-restart-batched")
}

// readyWatch records, from a pod informer, every moment a watched
// namespace had no Ready pod once armed.
type readyWatch struct {
	mu         sync.Mutex
	ready      map[string]map[string]bool // ns -> pod -> ready
	watched    map[string]bool
	armed      bool
	violations []string
	events     int
}

func watchReadiness(b *testing.B, cfg *rest.Config, namespaces []string) *readyWatch {
	rw := &readyWatch{ready: map[string]map[string]bool{}, watched: map[string]bool{}}
	for _, ns := range namespaces {
		rw.watched[ns] = true
	}
	f := informers.NewSharedInformerFactory(kubernetes.NewForConfigOrDie(cfg), 0)
	inf := f.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { rw.update(o, false) },
		UpdateFunc: func(_, o any) { rw.update(o, false) },
		DeleteFunc: func(o any) { rw.update(o, true) },
	}); err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	b.Cleanup(func() { close(stop) })
	f.Start(stop)
	f.WaitForCacheSync(stop)
	return rw
}

func (rw *readyWatch) update(obj any, deleted bool) {
	p, _ := obj.(*corev1.Pod)
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		p, _ = d.Obj.(*corev1.Pod)
	}
	if p == nil || !rw.watched[p.Namespace] {
		return
	}
	rw.mu.Lock()
	defer rw.mu.Unlock()
	rw.events++
	m := rw.ready[p.Namespace]
	if m == nil {
		m = map[string]bool{}
		rw.ready[p.Namespace] = m
	}
	if deleted {
		delete(m, p.Name)
	} else {
		m[p.Name] = p.DeletionTimestamp.IsZero() && podReady(p)
	}
	if !rw.armed {
		return
	}
	for _, r := range m {
		if r {
			return
		}
	}
	rw.violations = append(rw.violations, fmt.Sprintf("%s had no Ready pod after an event on %s", p.Namespace, p.Name))
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (rw *readyWatch) arm() {
	rw.mu.Lock()
	rw.armed = true
	rw.mu.Unlock()
}

func (rw *readyWatch) result() ([]string, int) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	return append([]string(nil), rw.violations...), rw.events
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
