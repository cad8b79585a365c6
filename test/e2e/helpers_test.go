package e2e

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/harness"
)

var ctx = context.Background()

// readyWatch records, from a pod informer, whether any watched namespace
// ever had zero Ready pods after it was armed.
type readyWatch struct {
	mu         sync.Mutex
	ready      map[string]map[string]bool // ns -> pod -> ready
	watched    map[string]bool
	armed      bool
	violations []string
	events     int
}

func watchReadiness(t *testing.T, cfg *rest.Config, namespaces []string) *readyWatch {
	t.Helper()
	cs := kubernetes.NewForConfigOrDie(cfg)
	rw := &readyWatch{ready: map[string]map[string]bool{}, watched: map[string]bool{}}
	for _, ns := range namespaces {
		rw.watched[ns] = true
	}
	f := informers.NewSharedInformerFactory(cs, 0)
	inf := f.Core().V1().Pods().Informer()
	upd := func(obj any, deleted bool) {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				p, _ = d.Obj.(*corev1.Pod)
			}
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
			m[p.Name] = podReady(p)
		}
		if rw.armed {
			n := 0
			for _, r := range m {
				if r {
					n++
				}
			}
			if n == 0 {
				rw.violations = append(rw.violations, fmt.Sprintf("%s had no Ready pod after event on %s", p.Namespace, p.Name))
			}
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { upd(o, false) },
		UpdateFunc: func(_, o any) { upd(o, false) },
		DeleteFunc: func(o any) { upd(o, true) },
	})
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	f.Start(stop)
	f.WaitForCacheSync(stop)
	return rw
}

func (rw *readyWatch) arm() {
	rw.mu.Lock()
	rw.armed = true
	rw.mu.Unlock()
}

func (rw *readyWatch) check(t *testing.T) {
	t.Helper()
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if len(rw.violations) > 0 {
		t.Fatalf("%d moments with a namespace without Ready pods, first: %v", len(rw.violations), rw.violations[:min(3, len(rw.violations))])
	}
	t.Logf("pod informer saw %d events in watched namespaces; no namespace was ever without a Ready pod", rw.events)
}

func podReady(p *corev1.Pod) bool {
	if !p.DeletionTimestamp.IsZero() {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// makeApps creates namespaces with labels and n single-replica Deployments
// in each.
func makeApps(t *testing.T, c client.Client, names []string, labels map[string]string, n int) {
	t.Helper()
	for _, ns := range names {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			name := fmt.Sprintf("d-%d", i)
			d := &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
				Spec: appsv1.DeploymentSpec{
					Replicas: ptr.To[int32](1),
					Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
						Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}}},
					},
				},
			}
			if err := c.Create(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// podRevisions counts Ready, non-terminating pods per istio.io/rev label
// in the namespaces.
func podRevisions(t *testing.T, c client.Client, names []string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, ns := range names {
		var pods corev1.PodList
		if err := c.List(ctx, &pods, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		for i := range pods.Items {
			if p := &pods.Items[i]; p.DeletionTimestamp.IsZero() {
				out[p.Labels["istio.io/rev"]]++
			}
		}
	}
	return out
}

func allAvailable(c client.Client, names []string) error {
	for _, ns := range names {
		var deps appsv1.DeploymentList
		if err := c.List(ctx, &deps, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, d := range deps.Items {
			if d.Status.ObservedGeneration < d.Generation || d.Status.UpdatedReplicas != 1 || d.Status.AvailableReplicas != 1 || d.Status.Replicas != 1 {
				return fmt.Errorf("%s/%s not rolled out: %+v", ns, d.Name, d.Status)
			}
		}
	}
	return nil
}

func getMI(c client.Client, name string) (*meshv1alpha1.MeshInstall, error) {
	mi := &meshv1alpha1.MeshInstall{}
	return mi, c.Get(ctx, client.ObjectKey{Name: name}, mi)
}

func waitMI(t *testing.T, c client.Client, name string, timeout time.Duration, what string, ok func(*meshv1alpha1.MeshInstall) bool) *meshv1alpha1.MeshInstall {
	t.Helper()
	var mi *meshv1alpha1.MeshInstall
	harness.Eventually(t, timeout, name+": "+what, func() error {
		var err error
		if mi, err = getMI(c, name); err != nil {
			return err
		}
		if !ok(mi) {
			return fmt.Errorf("status: %s", describe(mi))
		}
		return nil
	})
	return mi
}

func describe(mi *meshv1alpha1.MeshInstall) string {
	s := fmt.Sprintf("gen=%d observed=%d installed=%s active=%s", mi.Generation, mi.Status.ObservedGeneration, mi.Status.InstalledVersion, mi.Status.ActiveRevision)
	if u := mi.Status.Upgrade; u != nil {
		s += fmt.Sprintf(" upgrade{%s %d/%d batch=%v %s}", u.Phase, u.MigratedNamespaces, u.TotalNamespaces, u.CurrentBatch, u.Message)
	}
	conds := mi.Status.Conditions
	sort.Slice(conds, func(i, j int) bool { return conds[i].Type < conds[j].Type })
	for _, c := range conds {
		s += fmt.Sprintf(" %s=%s(%s: %.200s)", c.Type, c.Status, c.Reason, c.Message)
	}
	return s
}

func ready(mi *meshv1alpha1.MeshInstall) bool {
	c := apimeta.FindStatusCondition(mi.Status.Conditions, meshv1alpha1.ReadyCondition)
	return c != nil && c.Status == metav1.ConditionTrue && mi.Status.ObservedGeneration == mi.Generation
}

func stalled(mi *meshv1alpha1.MeshInstall, reason string) bool {
	c := apimeta.FindStatusCondition(mi.Status.Conditions, meshv1alpha1.StalledCondition)
	return c != nil && c.Status == metav1.ConditionTrue && c.Reason == reason && c.ObservedGeneration == mi.Generation
}

var _ runtime.Object = (*corev1.Pod)(nil)
