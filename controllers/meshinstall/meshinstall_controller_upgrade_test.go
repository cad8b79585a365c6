package meshinstall_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/meshinstall"
	"github.com/meshplane/meshplane/internal/controlplane"
	"github.com/meshplane/meshplane/internal/upgrade"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/testenv"
)

// rolloutPlayer plays the deployment controller for the namespaces it
// watches: a Deployment whose template changed (generation ahead of
// observedGeneration) rolls out for rolloutTime, then becomes Available.
// It records the namespaces rolling out at once.
type rolloutPlayer struct {
	c           client.Client
	rolloutTime time.Duration
	mu          sync.Mutex
	namespaces  []string
	pendingAt   map[string]time.Time // ns/name -> when first seen rolling out
	maxInFlight int
	inFlightAt  []string // the namespaces rolling out when maxInFlight was reached
}

func (p *rolloutPlayer) watch(nss ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.namespaces = append(p.namespaces, nss...)
}

func (p *rolloutPlayer) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
		p.tick(ctx)
	}
}

func (p *rolloutPlayer) tick(ctx context.Context) {
	p.mu.Lock()
	nss := append([]string(nil), p.namespaces...)
	p.mu.Unlock()
	inFlight := map[string]bool{}
	for _, ns := range nss {
		var deps appsv1.DeploymentList
		if err := p.c.List(ctx, &deps, client.InNamespace(ns)); err != nil {
			continue
		}
		for i := range deps.Items {
			d := &deps.Items[i]
			if d.Status.ObservedGeneration == d.Generation {
				continue
			}
			key := ns + "/" + d.Name
			p.mu.Lock()
			first, seen := p.pendingAt[key]
			if !seen {
				first = time.Now()
				p.pendingAt[key] = first
			}
			p.mu.Unlock()
			if time.Since(first) < p.rolloutTime {
				inFlight[ns] = true
				continue
			}
			d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
				Conditions: []appsv1.DeploymentCondition{
					{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"},
					{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"}}}
			if err := p.c.Status().Update(ctx, d); err == nil {
				p.mu.Lock()
				delete(p.pendingAt, key)
				p.mu.Unlock()
			}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(inFlight) > p.maxInFlight {
		p.maxInFlight = len(inFlight)
		p.inFlightAt = nil
		for ns := range inFlight {
			p.inFlightAt = append(p.inFlightAt, ns)
		}
	}
}

// TestRevisionUpgradeRestartsEachWorkloadOnce upgrades a RevisionBased
// Istio install with 9 namespaces × 2 Deployments in batches of 3 while
// the Deployments take a moment to roll out (each status change triggers
// a reconcile that may read a cache behind the controller's own status
// write) and a second reconciler hammers the same MeshInstall every 10 ms: every Deployment is restarted exactly once (its generation goes
// from 1 to 2, stamped with its batch attempt), and never more than 3
// namespaces roll out at once.
func TestRevisionUpgradeRestartsEachWorkloadOnce(t *testing.T) {
	cfg := env.Cfg(t)
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.28.1", "1.29.0")
	repo := chartrepo.Serve(t, dir)
	m := startManager(t, cfg)
	c := m.Client
	cp := testenv.Namespace(t, c, nil)
	player := &rolloutPlayer{c: c, rolloutTime: 300 * time.Millisecond, pendingAt: map[string]time.Time{}}
	player.watch(cp)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go player.run(pctx)

	mi := &meshv1alpha1.MeshInstall{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-batches"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1", Namespace: cp,
			Chart: &meshv1alpha1.ChartSource{Repository: repo.URL}, DeletionPolicy: meshv1alpha1.DeletionUninstall,
			Upgrade: &meshv1alpha1.UpgradeSpec{Strategy: meshv1alpha1.UpgradeRevisionBased,
				RevisionRetention: &metav1.Duration{Duration: time.Second},
				Rollout: &meshv1alpha1.WorkloadRolloutPlan{BatchSize: 3, RestartWorkloads: ptr.To(true),
					HealthTimeout: &metav1.Duration{Duration: time.Minute}}}},
	}
	testenv.Must(t, c.Create(ctx, mi))
	removeAtEnd(t, c, mi.Name)
	waitCondition(t, c, mi.Name, meshv1alpha1.ReadyCondition, metav1.ConditionTrue, "")

	var apps []string
	for i := range 9 {
		ns := testenv.Namespace(t, c, map[string]string{"istio.io/rev": "1-28-1"})
		apps = append(apps, ns)
		for j := range 2 {
			d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("app-%d-%d", i, j)},
				Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}},
					Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "a"}},
						Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Image: "a"}}}}}}
			testenv.Must(t, c.Create(ctx, d))
		}
		testenv.MarkAvailable(t, c, ns)
	}
	player.watch(apps...)

	patchSpec(t, c, mi.Name, func(s *meshv1alpha1.MeshInstallSpec) { s.Version = "1.29.0" })
	start := time.Now()
	// A second reconciler on the manager's cache, requeued every 10 ms
	// once the migration runs: concurrent and stale reconciles of one
	// MeshInstall.
	testenv.Eventually(t, 60*time.Second, "migration started", func() error {
		if u := getMI(t, c, mi.Name).Status.Upgrade; u == nil || u.Phase != meshv1alpha1.UpgradeMigrating {
			return testenv.Errorf("upgrade %+v", u)
		}
		return nil
	})
	fast := &meshinstall.Reconciler{Deps: controlplane.Deps{Client: m.GetClient(), APIReader: m.GetAPIReader(), Registry: m.Registry,
		Helm: mustEngine(t, m), Events: events.NewFakeRecorder(10000), Clock: clock.RealClock{}, OperatorNamespace: testenv.OperatorNamespace}}
	var hammered sync.WaitGroup
	hammered.Add(1)
	go func() {
		defer hammered.Done()
		for pctx.Err() == nil {
			_, _ = fast.Reconcile(pctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: mi.Name}})
			time.Sleep(10 * time.Millisecond)
		}
	}()
	defer hammered.Wait()
	defer cancel()
	testenv.Eventually(t, 90*time.Second, "every namespace migrated to 1-29-0", func() error {
		got := getMI(t, c, mi.Name)
		if u := got.Status.Upgrade; u == nil || u.TargetRevision != "1-29-0" || u.MigratedNamespaces != 9 || len(u.CurrentBatch) != 0 ||
			(u.Phase != meshv1alpha1.UpgradeCleaningUp && u.Phase != meshv1alpha1.UpgradeCompleted) {
			return testenv.Errorf("upgrade %+v", got.Status.Upgrade)
		}
		return nil
	})
	t.Logf("9 namespaces migrated in %s", time.Since(start).Round(10*time.Millisecond))
	// Let stragglers (a stale reconcile) show themselves.
	time.Sleep(2 * time.Second)

	for _, ns := range apps {
		var deps appsv1.DeploymentList
		testenv.Must(t, c.List(ctx, &deps, client.InNamespace(ns)))
		for _, d := range deps.Items {
			if d.Generation != 2 {
				t.Errorf("Deployment %s/%s has generation %d: restarted %d times, want exactly once", ns, d.Name, d.Generation, d.Generation-1)
			}
			stamp := d.Spec.Template.Annotations[upgrade.DataPlaneAnnotation]
			if len(stamp) < len("1-29-0@") || stamp[:len("1-29-0@")] != "1-29-0@" {
				t.Errorf("Deployment %s/%s data-plane stamp %q, want 1-29-0@<attempt>", ns, d.Name, stamp)
			}
		}
		var n corev1.Namespace
		testenv.Must(t, c.Get(ctx, client.ObjectKey{Name: ns}, &n))
		if n.Labels["istio.io/rev"] != "1-29-0" {
			t.Errorf("namespace %s on revision %q, want 1-29-0", ns, n.Labels["istio.io/rev"])
		}
	}
	player.mu.Lock()
	defer player.mu.Unlock()
	if player.maxInFlight > 3 {
		t.Errorf("%d namespaces rolled out at once (%v), want at most batchSize 3", player.maxInFlight, player.inFlightAt)
	}
}
