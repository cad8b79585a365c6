package meshinstall_test

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/meshinstall"
	"github.com/meshplane/meshplane/controllers/meshrevision"
	"github.com/meshplane/meshplane/internal/helm"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/testenv"
)

// readCountingHelm counts the release reads (Helm storage) of releases in one
// namespace: one per release per reconcile of an install there.
type readCountingHelm struct {
	helm.Releaser
	ns    string
	reads *atomic.Int64
}

func (h readCountingHelm) Get(ctx context.Context, name, namespace string) (*helm.ReleaseInfo, error) {
	if namespace == h.ns {
		h.reads.Add(1)
	}
	return h.Releaser.Get(ctx, name, namespace)
}

// TestWorkloadEventsReachTheirInstall: a Ready install is not reconciled
// (no Helm storage read) when workloads elsewhere in the cluster change
// status; a change of its own control plane's workload is seen. (Helm
// storage reads count reconciles only while the release Secrets change.)
func TestWorkloadEventsReachTheirInstall(t *testing.T) {
	cfg := env.Cfg(t)
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.28.1")
	repo := chartrepo.Serve(t, dir)
	c0 := testenv.NewClient(t, cfg)
	cp := testenv.Namespace(t, c0, nil)
	var reads atomic.Int64
	o := testenv.ManagerOptions{}
	o.Options.SyncPeriod = 10 * time.Minute
	m := testenv.StartManager(t, cfg, o, func(m *manager.Manager) error {
		hd, err := os.MkdirTemp("", "meshinstall-helm")
		if err != nil {
			return err
		}
		t.Cleanup(func() { _ = os.RemoveAll(hd) })
		e, err := helm.New(m.GetConfig(), helm.Options{CacheDir: hd})
		if err != nil {
			return err
		}
		h := readCountingHelm{Releaser: e, ns: cp, reads: &reads}
		if err := meshinstall.Setup(m, h); err != nil {
			return err
		}
		return meshrevision.Setup(m, h)
	})
	c := m.Client
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio-events"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1", Namespace: cp,
			Chart: &meshv1alpha1.ChartSource{Repository: repo.URL}, DeletionPolicy: meshv1alpha1.DeletionUninstall}}
	testenv.Must(t, c.Create(ctx, mi))
	removeAtEnd(t, c, mi.Name)
	waitCondition(t, c, mi.Name, meshv1alpha1.InstalledCondition, metav1.ConditionTrue, "")
	testenv.MarkAvailable(t, c, cp)
	waitCondition(t, c, mi.Name, meshv1alpha1.ReadyCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason)
	other := testenv.Namespace(t, c, nil) // a new namespace is one reconcile of every install
	time.Sleep(2 * time.Second)           // let the reconciles of the install's own writes settle
	settled := reads.Load()

	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "app"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "a"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}}}}}
	testenv.Must(t, c.Create(ctx, d))
	for i := range 20 {
		d.Status.Replicas, d.Status.ObservedGeneration = int32(i%3), d.Generation
		testenv.Must(t, c.Status().Update(ctx, d))
	}
	time.Sleep(2 * time.Second)
	if got := reads.Load() - settled; got != 0 {
		t.Fatalf("21 status changes of a Deployment in another namespace caused %d Helm release reads of install %s", got, mi.Name)
	}

	var istiod appsv1.Deployment
	testenv.Must(t, c.Get(ctx, client.ObjectKey{Namespace: cp, Name: "istiod"}, &istiod))
	istiod.Status.UnavailableReplicas, istiod.Status.AvailableReplicas, istiod.Status.ReadyReplicas = 1, 0, 0
	testenv.Must(t, c.Status().Update(ctx, &istiod))
	// The install is reconciled (its release is not read again: its
	// storage Secrets did not change) and sees its istiod unavailable.
	waitCondition(t, c, mi.Name, meshv1alpha1.ComponentsReadyCondition, metav1.ConditionFalse, meshv1alpha1.ComponentsNotReadyReason)
}
