package gitops

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/harness"
	"github.com/meshplane/meshplane/test/testenv"
)

// TestHealthOfLiveStatus runs the Argo CD health checks and Flux's kstatus
// over statuses the real controllers wrote on envtest: a MeshInstall while
// its control plane comes up (Progressing), once Available (Healthy), and
// with a chart that does not exist (Degraded); a MeshRevision of a missing
// MeshInstall and a TrafficSplit in a namespace without a mesh (Degraded).
func TestHealthOfLiveStatus(t *testing.T) {
	srv := cluster.UseServer(t, cluster.EnvtestOptions{})
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.28.1")
	repo := chartrepo.Serve(t, dir)
	m := harness.StartManager(t, srv.Config)
	c := m.Client
	ctx := context.Background()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}

	objs := []client.Object{
		&meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"}, Spec: meshv1alpha1.MeshInstallSpec{
			Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1", Chart: &meshv1alpha1.ChartSource{Repository: repo.URL}}},
		&meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "broken"}, Spec: meshv1alpha1.MeshInstallSpec{
			Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1", Namespace: "istio-broken", Chart: &meshv1alpha1.ChartSource{Path: "/nonexistent/charts"}}},
		&meshv1alpha1.MeshRevision{ObjectMeta: metav1.ObjectMeta{Name: "orphan"}, Spec: meshv1alpha1.MeshRevisionSpec{
			MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "missing"}, Version: "1.28.1"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "plain"}},
		&meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "plain"}, Spec: meshv1alpha1.TrafficSplitSpec{
			Service:  meshv1alpha1.ServiceReference{Name: "web"},
			Backends: []meshv1alpha1.WeightedBackend{{Name: "web-v1", Weight: 100}}}},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	check := func(kind, ns, name, want string) {
		t.Helper()
		script, err := os.ReadFile(filepath.Join(root, "config", "argocd", "meshplane.io", kind, "health.lua"))
		if err != nil {
			t.Fatal(err)
		}
		var got, msg string
		harness.Eventually(t, 60*time.Second, kind+"/"+name+" "+want, func() error {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(meshv1alpha1.GroupVersion.WithKind(kind))
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
				return err
			}
			got, msg = runHealth(t, string(script), u)
			if got != want {
				return harness.Errorf("health %s (%s)", got, msg)
			}
			res, err := status.Compute(u)
			if err != nil {
				return err
			}
			if argoFromKstatus[res.Status] != got {
				return harness.Errorf("kstatus says %s (%s), the health check %s", res.Status, res.Message, got)
			}
			return nil
		})
		t.Logf("%s %s: %s %q", kind, name, got, msg)
	}
	check("MeshInstall", "", "istio", "Progressing")
	check("MeshInstall", "", "broken", "Degraded")
	check("MeshRevision", "", "orphan", "Degraded")
	check("TrafficSplit", "plain", "web", "Degraded")

	testenv.MarkAvailable(t, c, "istio-system")
	check("MeshInstall", "", "istio", "Healthy")
}
