package meshadoption_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/adoption"
	"github.com/meshplane/meshplane/internal/upgrade"
	"github.com/meshplane/meshplane/test/testenv"
)

// TestWavesMoveBackAndResume enrols five namespaces in waves of two on
// Istio sidecar. The second wave contains a namespace whose workload never
// becomes Ready: that wave is moved back exactly (labels from the record,
// workloads restarted out), the adoption holds with observedGeneration
// current and writes nothing more, and the fifth namespace is untouched.
// A spec change retries the wave, which then passes, and deleting the
// adoption removes only its records.
func TestWavesMoveBackAndResume(t *testing.T) {
	cfg := env.Cfg(t)
	counted, writes, _ := testenv.CountRequests(cfg)
	m := startManager(t, counted)
	c := m.Client
	readyInstall(t, c, "istio", meshv1alpha1.ProviderIstio, "")
	names := []string{"wa-1", "wa-2", "wa-3", "wa-4", "wa-5"}
	for _, n := range names {
		app(t, c, n, map[string]string{"team": "a"})
	}
	// wa-3 had injection disabled by its team; its move back must restore it.
	ns3 := nsOf(t, c, "wa-3")
	ns3.Labels["istio-injection"] = "disabled"
	testenv.Must(t, c.Update(ctx, ns3))

	var failing atomic.Bool
	failing.Store(true)
	stop := make(chan struct{})
	defer close(stop)
	go playDeploymentController(c, names, &failing, stop)

	ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: "waves"},
		Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "istio"}, Namespaces: names,
			Waves: meshv1alpha1.AdoptionWaves{Size: 2, HealthTimeout: &metav1.Duration{Duration: 3 * time.Second}}}}
	testenv.Must(t, c.Create(ctx, ma))
	got := waitAdoption(t, c, "waves", "held by the failed gate", 30*time.Second, func(ma *meshv1alpha1.MeshAdoption) error {
		return condIs(ma, meshv1alpha1.StalledCondition, "True", meshv1alpha1.HealthGateFailedReason)
	})
	if got.Status.Phase != meshv1alpha1.AdoptionHeld || len(got.Status.Waves) != 2 ||
		got.Status.Waves[0].Phase != meshv1alpha1.WaveEnrolled || got.Status.Waves[1].Phase != meshv1alpha1.WaveMovedBack ||
		!slices.Equal(got.Status.Waves[1].Namespaces, []string{"wa-3", "wa-4"}) || got.Status.EnrolledNamespaces != 2 {
		t.Fatalf("after the failed gate: %+v", got.Status)
	}
	msg := apimeta.FindStatusCondition(got.Status.Conditions, meshv1alpha1.StalledCondition).Message
	if !strings.Contains(msg, "wave 2 [wa-3 wa-4] failed its health gate after 3s: wa-3/Deployment/web") ||
		!strings.Contains(msg, "set spec.paused to true and back to false") {
		t.Fatalf("Stalled message: %s", msg)
	}
	for _, n := range []string{"wa-1", "wa-2"} {
		if ns := nsOf(t, c, n); ns.Labels["istio-injection"] != "enabled" || ns.Annotations[adoption.OwnerAnnotation] != "waves" {
			t.Fatalf("%s not enrolled: %v %v", n, ns.Labels, ns.Annotations)
		}
	}
	// Moved back exactly: prior labels, no record, restarted out.
	want := map[string]map[string]string{"wa-3": {"team": "a", "istio-injection": "disabled"}, "wa-4": {"team": "a"}}
	for n, l := range want {
		ns := nsOf(t, c, n)
		delete(ns.Labels, "kubernetes.io/metadata.name")
		if !maps.Equal(ns.Labels, l) || ns.Annotations[adoption.PriorAnnotation] != "" || ns.Annotations[adoption.OwnerAnnotation] != "" {
			t.Fatalf("%s after the move back: labels %v annotations %v, want labels %v and no record", n, ns.Labels, ns.Annotations, l)
		}
		if v := deployment(t, c, n).Spec.Template.Annotations[upgrade.DataPlaneAnnotation]; !strings.HasPrefix(v, "adoption-waves-back@") {
			t.Fatalf("%s not restarted out of the mesh: %q", n, v)
		}
	}
	if ns := nsOf(t, c, "wa-5"); ns.Labels["istio-injection"] != "" || deployment(t, c, "wa-5").Spec.Template.Annotations[upgrade.DataPlaneAnnotation] != "" {
		t.Fatalf("wa-5 was touched: %v", ns.Labels)
	}

	// Held: no writes while nothing changes (a resync included).
	time.Sleep(time.Second)
	writes.Reset()
	time.Sleep(2 * time.Second)
	if n := adoptionWrites(writes); n != 0 {
		t.Fatalf("%d writes while held: %v", n, writes.Log())
	}

	// Fix the workload, then change the spec: the wave is retried and the
	// adoption completes.
	failing.Store(false)
	testenv.Must(t, c.Get(ctx, client.ObjectKey{Name: "waves"}, got))
	got.Spec.Waves.HealthTimeout = &metav1.Duration{Duration: 20 * time.Second}
	testenv.Must(t, c.Update(ctx, got))
	got = waitAdoption(t, c, "waves", "Ready", 30*time.Second, func(ma *meshv1alpha1.MeshAdoption) error {
		return condIs(ma, meshv1alpha1.ReadyCondition, "True", "")
	})
	if got.Status.Phase != meshv1alpha1.AdoptionCompleted || got.Status.EnrolledNamespaces != 5 || got.Status.TotalNamespaces != 5 {
		t.Fatalf("completed: %+v", got.Status)
	}
	if ns := nsOf(t, c, "wa-3"); ns.Labels["istio-injection"] != "enabled" {
		t.Fatalf("wa-3 not enrolled on the retry: %v", ns.Labels)
	}

	// Completed: zero writes on a no-op.
	time.Sleep(time.Second)
	writes.Reset()
	time.Sleep(2 * time.Second)
	if n := adoptionWrites(writes); n != 0 {
		t.Fatalf("%d writes on a no-op: %v", n, writes.Log())
	}

	// Deletion keeps the namespaces in the mesh and removes the records.
	testenv.Must(t, c.Delete(ctx, got))
	testenv.Eventually(t, 20*time.Second, "adoption gone", func() error {
		if _, err := get(c, "waves"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there: %v", err)
		}
		return nil
	})
	for _, n := range names {
		ns := nsOf(t, c, n)
		if ns.Labels["istio-injection"] != "enabled" || ns.Annotations[adoption.PriorAnnotation] != "" || ns.Annotations[adoption.OwnerAnnotation] != "" {
			t.Fatalf("%s after deletion: %v %v", n, ns.Labels, ns.Annotations)
		}
	}
}

// adoptionWrites counts the writes of the controller, leaving out the
// test's own deployment-controller stand-in (status updates).
func adoptionWrites(w *testenv.Writes) int {
	n := 0
	for _, l := range w.Log() {
		if !strings.Contains(l, "/status") {
			n++
		}
	}
	return n
}

// playDeploymentController reports every Deployment of names rolled out
// whenever its template changed, except in wa-3 while failing, whose
// restarted Deployment never becomes available.
func playDeploymentController(c client.Client, names []string, failing *atomic.Bool, stop chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(200 * time.Millisecond):
		}
		for _, n := range names {
			var d = deploymentOrNil(c, n)
			if d == nil || d.Status.ObservedGeneration == d.Generation {
				continue
			}
			if n == "wa-3" && failing.Load() && strings.HasPrefix(d.Spec.Template.Annotations[upgrade.DataPlaneAnnotation], "adoption-waves@") {
				continue
			}
			markAvailable(c, d)
		}
	}
}
