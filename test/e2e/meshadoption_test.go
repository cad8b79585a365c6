package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/fakeistiod"
	"github.com/meshplane/meshplane/test/harness"
)

// TestMeshAdoptionWaves enrols 10 namespaces × 2 Deployments into Istio
// sidecar in waves of 3. One namespace of the second wave cannot become
// Ready once injected: that wave is moved back (labels restored, pods
// restarted without sidecars), the adoption holds, and the namespaces of
// later waves are untouched. Once fixed, a spec change resumes and every
// pod ends injected; no namespace is ever without a Ready pod.
func TestMeshAdoptionWaves(t *testing.T) {
	parallel(t)
	sim := cluster.UseSimulated(t, cluster.SimulatedOptions{Nodes: 2, CRDs: &cluster.CRDOptions{NoThirdParty: true}})
	inj := fakeistiod.Start(t)
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.28.1")
	repo := chartrepo.Serve(t, dir)
	m := harness.StartManager(t, sim.Config)
	c := m.Client

	values := fmt.Sprintf(`{"injector":{"url":%q,"caBundle":%q}}`, inj.URL, inj.CABundle)
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1",
			Chart: &meshv1alpha1.ChartSource{Repository: repo.URL}, Values: &apiextensionsv1.JSON{Raw: []byte(values)}}}
	if err := c.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	waitMI(t, c, "istio", 60*time.Second, "Ready", ready)

	var nss []string
	for i := range 10 {
		nss = append(nss, fmt.Sprintf("ad-%02d", i))
	}
	makeApps(t, c, nss, map[string]string{"tier": "web"}, 2)
	harness.Eventually(t, 60*time.Second, "apps available", func() error { return allAvailable(c, nss) })
	rw := watchReadiness(t, sim.Config, nss)
	rw.arm()
	inj.FailWhen(func(_ string, _ *corev1.Pod, ns string) bool { return ns == "ad-04" })

	ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: "onboard"},
		Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "istio"}, Namespaces: nss,
			Waves: meshv1alpha1.AdoptionWaves{Size: 3, HealthTimeout: &metav1.Duration{Duration: 12 * time.Second}}}}
	start := time.Now()
	if err := c.Create(ctx, ma); err != nil {
		t.Fatal(err)
	}
	got := waitAdoption(t, c, "onboard", 60*time.Second, "held by the failed gate", func(ma *meshv1alpha1.MeshAdoption) bool {
		return adoptionCond(ma, meshv1alpha1.StalledCondition, meshv1alpha1.HealthGateFailedReason)
	})
	t.Logf("wave 1 passed, wave 2 failed its gate and was moved back after %s; waves: %s", time.Since(start).Round(10*time.Millisecond), waveTimes(got))
	if got.Status.Phase != meshv1alpha1.AdoptionHeld || len(got.Status.Waves) != 2 ||
		!slices.Equal(got.Status.Waves[1].Namespaces, []string{"ad-03", "ad-04", "ad-05"}) || got.Status.Waves[1].Phase != meshv1alpha1.WaveMovedBack {
		t.Fatalf("after the failed gate: %+v", got.Status)
	}
	harness.Eventually(t, 60*time.Second, "moved-back namespaces run without sidecars", func() error {
		if revs := podRevisions(t, c, nss[3:6]); len(revs) != 1 || revs[""] != 6 {
			return fmt.Errorf("pods per revision in ad-03..05: %v, want 6 uninjected", revs)
		}
		return allAvailable(c, nss[3:6])
	})
	for _, n := range nss[3:] {
		var ns corev1.Namespace
		if err := c.Get(ctx, client.ObjectKey{Name: n}, &ns); err != nil || ns.Labels["istio-injection"] != "" || ns.Annotations["meshplane.io/adoption-prior"] != "" {
			t.Fatalf("namespace %s after the move back: %v %v (%v)", n, ns.Labels, ns.Annotations, err)
		}
	}
	if revs := podRevisions(t, c, nss[6:]); len(revs) != 1 || revs[""] != 8 {
		t.Fatalf("later waves were touched: pods per revision %v", revs)
	}
	if revs := podRevisions(t, c, nss[:3]); revs[""] != 0 {
		t.Fatalf("first wave not injected: %v", revs)
	}

	// Fixed: retry with a spec change.
	inj.FailWhen(func(string, *corev1.Pod, string) bool { return false })
	resumed := time.Now()
	got.Spec.Paused = true
	if err := c.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 10*time.Second, "unpause", func() error {
		if err := c.Get(ctx, client.ObjectKey{Name: "onboard"}, got); err != nil {
			return err
		}
		got.Spec.Paused = false
		return c.Update(ctx, got)
	})
	got = waitAdoption(t, c, "onboard", 80*time.Second, "completed", func(ma *meshv1alpha1.MeshAdoption) bool {
		return adoptionCond(ma, meshv1alpha1.ReadyCondition, "") && ma.Status.Phase == meshv1alpha1.AdoptionCompleted
	})
	t.Logf("resumed: 7 namespaces in 3 waves of 3 in %s; waves: %s", time.Since(resumed).Round(10*time.Millisecond), waveTimes(got))
	if got.Status.EnrolledNamespaces != 10 {
		t.Fatalf("completed: %+v", got.Status)
	}
	harness.Eventually(t, 30*time.Second, "every pod injected", func() error {
		if revs := podRevisions(t, c, nss); revs[""] != 0 {
			return fmt.Errorf("pods per revision: %v", revs)
		}
		return nil
	})
	rw.check(t)
}

func waitAdoption(t *testing.T, c client.Client, name string, timeout time.Duration, what string, ok func(*meshv1alpha1.MeshAdoption) bool) *meshv1alpha1.MeshAdoption {
	t.Helper()
	ma := &meshv1alpha1.MeshAdoption{}
	harness.Eventually(t, timeout, name+": "+what, func() error {
		if err := c.Get(ctx, client.ObjectKey{Name: name}, ma); err != nil {
			return err
		}
		if !ok(ma) {
			var s []string
			for _, c := range ma.Status.Conditions {
				s = append(s, fmt.Sprintf("%s=%s(%s: %.200s)", c.Type, c.Status, c.Reason, c.Message))
			}
			return fmt.Errorf("phase %s %d/%d %s", ma.Status.Phase, ma.Status.EnrolledNamespaces, ma.Status.TotalNamespaces, strings.Join(s, " "))
		}
		return nil
	})
	return ma
}

func adoptionCond(ma *meshv1alpha1.MeshAdoption, typ, reason string) bool {
	c := apimeta.FindStatusCondition(ma.Status.Conditions, typ)
	return c != nil && c.Status == metav1.ConditionTrue && (reason == "" || c.Reason == reason) && ma.Status.ObservedGeneration == ma.Generation
}

// waveTimes renders each wave's duration, for the log and the report.
func waveTimes(ma *meshv1alpha1.MeshAdoption) string {
	var s []string
	for _, w := range ma.Status.Waves {
		d := "in flight"
		if w.CompletionTime != nil {
			d = w.CompletionTime.Sub(w.StartTime.Time).String()
		}
		s = append(s, fmt.Sprintf("#%d %v %s %s", w.Index, w.Namespaces, w.Phase, d))
	}
	return strings.Join(s, "; ")
}
