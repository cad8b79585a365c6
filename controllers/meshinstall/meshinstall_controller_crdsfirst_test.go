package meshinstall_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

// TestExtensionListedBeforeCRDs: a new Linkerd MeshInstall that already
// lists the multicluster extension (as a MeshFederation writes it into a
// member whose install has not run yet) installs on a server without
// Linkerd's CRDs: the extension's chart uses policy.linkerd.io kinds that
// linkerd-crds, earlier in the same change, brings, so it is deferred
// until they are served instead of holding back the whole install.
func TestExtensionListedBeforeCRDs(t *testing.T) {
	cfg := cluster.UseEnvtest(t, cluster.EnvtestOptions{CRDs: cluster.CRDOptions{NoThirdParty: true}})
	dir := t.TempDir()
	charts.StageLinkerd(t, dir, "2026.1.1")
	charts.Stage(t, dir, charts.Chart{Name: charts.LinkerdMulticluster, Version: "2026.1.1"})
	m := startManager(t, cfg)
	c := m.Client
	if err := c.Create(ctx, &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "linkerd"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderLinkerd, Version: "edge-26.1.1",
			Chart:   &meshv1alpha1.ChartSource{Path: dir},
			Linkerd: &meshv1alpha1.LinkerdInstallSpec{Multicluster: &meshv1alpha1.LinkerdMulticluster{Links: []string{"east"}}}}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "every release deployed", func() error {
		mi := &meshv1alpha1.MeshInstall{}
		if err := c.Get(ctx, client.ObjectKey{Name: "linkerd"}, mi); err != nil {
			return err
		}
		for _, name := range []string{"linkerd-crds", "linkerd-control-plane", "linkerd-multicluster"} {
			if rel := findRelease(mi.Status.Releases, name); rel == nil || rel.Status != "deployed" {
				return testenv.Errorf("release %s %+v; conditions %+v", name, rel, mi.Status.Conditions)
			}
		}
		return nil
	})
}
