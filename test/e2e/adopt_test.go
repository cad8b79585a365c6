package e2e

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/helm"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/harness"
)

// TestAdoptHelmRelease installs Istio directly with the Helm SDK, as a
// platform team would have before Meshplane, then adopts it: the releases
// keep their revisions, no pod restarts, and the MeshInstall is Ready and
// says what it adopted.
func TestAdoptHelmRelease(t *testing.T) {
	parallel(t)
	sim := cluster.UseSimulated(t, cluster.SimulatedOptions{Nodes: 1, CRDs: &cluster.CRDOptions{NoThirdParty: true}})
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.28.1")
	repo := chartrepo.Serve(t, dir)
	engine, err := helm.New(sim.Config, helm.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	src := helm.Source{RepoURL: repo.URL}
	for _, rel := range []helm.Release{
		{Name: "istio-base", Namespace: "istio-system", Chart: "base", Version: "1.28.1", Source: src, Values: map[string]any{}},
		{Name: "istiod", Namespace: "istio-system", Chart: "istiod", Version: "1.28.1", Source: src, Values: map[string]any{"pilot": map[string]any{"replicaCount": 2}}},
	} {
		if _, err := engine.Ensure(ctx, rel, true, 2*time.Minute); err != nil {
			t.Fatalf("installing %s directly: %v", rel.Name, err)
		}
	}
	c := harness.StartManager(t, sim.Config).Client
	uids := podUIDs(t, c, "istio-system")
	if len(uids) != 2 {
		t.Fatalf("istiod pods before adoption: %v", uids)
	}

	mi := &meshv1alpha1.MeshInstall{
		ObjectMeta: metav1.ObjectMeta{Name: "istio"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1",
			Chart: &meshv1alpha1.ChartSource{Repository: repo.URL}, Adopt: &meshv1alpha1.AdoptSpec{Source: meshv1alpha1.AdoptHelmRelease}},
	}
	start := time.Now()
	if err := c.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	got := waitMI(t, c, "istio", 90*time.Second, "Ready after adoption", ready)
	t.Logf("adopted in %s: %+v", time.Since(start).Round(10*time.Millisecond), got.Status.Adopted)
	if got.Status.Adopted == nil || len(got.Status.Adopted.Objects) != 2 {
		t.Fatalf("status.adopted: %+v", got.Status.Adopted)
	}
	for _, name := range []string{"istio-base", "istiod"} {
		info, err := engine.Get(ctx, name, "istio-system")
		if err != nil || info.Revision != 1 {
			t.Fatalf("release %s after adoption: revision %v (%v), want 1", name, info, err)
		}
	}
	time.Sleep(2 * time.Second)
	if after := podUIDs(t, c, "istio-system"); !sameSet(uids, after) {
		t.Fatalf("pods restarted: before %v, after %v", uids, after)
	}
}

func podUIDs(t *testing.T, c client.Client, ns string) []string {
	t.Helper()
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp.IsZero() {
			out = append(out, string(p.UID))
		}
	}
	return out
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, x := range a {
		m[x] = true
	}
	for _, x := range b {
		if !m[x] {
			return false
		}
	}
	return true
}
