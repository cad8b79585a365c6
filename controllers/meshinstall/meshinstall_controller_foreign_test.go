package meshinstall_test

import (
	"maps"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/meshinstall"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/testenv"
)

// nsMeta is what a test compares of a foreign namespace.
type nsMeta struct{ labels, annotations map[string]string }

func readNS(t *testing.T, c client.Client, name string) nsMeta {
	t.Helper()
	var ns corev1.Namespace
	testenv.Must(t, c.Get(ctx, client.ObjectKey{Name: name}, &ns))
	return nsMeta{labels: ns.Labels, annotations: ns.Annotations}
}

func sameNS(a, b nsMeta) bool {
	return maps.Equal(a.labels, b.labels) && maps.Equal(a.annotations, b.annotations)
}

func deleteMI(t *testing.T, c client.Client, name string) {
	t.Helper()
	testenv.Must(t, c.Delete(ctx, &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: name}}))
	testenv.Eventually(t, 60*time.Second, "MeshInstall "+name+" gone", func() error {
		if err := c.Get(ctx, client.ObjectKey{Name: name}, &meshv1alpha1.MeshInstall{}); !apierrors.IsNotFound(err) {
			return testenv.Errorf("still there: %v", err)
		}
		return nil
	})
}

// TestLinkerdForeignNamespace: a Linkerd MeshInstall into an existing
// namespace writes nothing to it while its chart cannot be found, and
// leaves nothing after deletion; once the chart renders it sets the
// control-plane labels, records their prior values, and deleting it
// (Uninstall) restores the namespace exactly.
func TestLinkerdForeignNamespace(t *testing.T) {
	cfg := env.Cfg(t)
	m := startManager(t, cfg)
	c := m.Client

	t.Run("chart not found: the default namespace is untouched before and after deletion", func(t *testing.T) {
		repo := chartrepo.Serve(t, t.TempDir())
		before := readNS(t, c, "default")
		mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "linkerd-missing"},
			Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderLinkerd, Version: "edge-26.1.1", Namespace: "default",
				Chart: &meshv1alpha1.ChartSource{Repository: repo.URL}}}
		testenv.Must(t, c.Create(ctx, mi))
		waitCondition(t, c, mi.Name, meshv1alpha1.StalledCondition, metav1.ConditionTrue, meshv1alpha1.ChartUnavailableReason)
		if after := readNS(t, c, "default"); !sameNS(before, after) {
			t.Fatalf("namespace default changed before the chart rendered:\nbefore %+v\nafter  %+v", before, after)
		}
		deleteMI(t, c, mi.Name)
		if after := readNS(t, c, "default"); !sameNS(before, after) {
			t.Fatalf("namespace default changed after deletion:\nbefore %+v\nafter  %+v", before, after)
		}
	})

	t.Run("installed into a foreign namespace: labels recorded, restored on deletion", func(t *testing.T) {
		dir := t.TempDir()
		charts.StageLinkerd(t, dir, "2026.1.1")
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "linkerd",
			Labels:      map[string]string{"team": "payments", "linkerd.io/control-plane-ns": "elsewhere"},
			Annotations: map[string]string{"owner": "platform"}}}
		testenv.Must(t, c.Create(ctx, ns))
		before := readNS(t, c, "linkerd")
		mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "linkerd-foreign"},
			Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderLinkerd, Version: "edge-26.1.1",
				Chart: &meshv1alpha1.ChartSource{Path: dir}, DeletionPolicy: meshv1alpha1.DeletionUninstall}}
		testenv.Must(t, c.Create(ctx, mi))
		waitCondition(t, c, mi.Name, meshv1alpha1.InstalledCondition, metav1.ConditionTrue, "")
		during := readNS(t, c, "linkerd")
		wantLabels := map[string]string{"team": "payments", "kubernetes.io/metadata.name": "linkerd", "linkerd.io/control-plane-ns": "linkerd",
			"linkerd.io/is-control-plane": "true", "config.linkerd.io/admission-webhooks": "disabled"}
		wantRecord := `{"config.linkerd.io/admission-webhooks":null,"linkerd.io/control-plane-ns":"elsewhere","linkerd.io/is-control-plane":null}`
		if !maps.Equal(during.labels, wantLabels) || during.annotations[meshinstall.PriorLabelsAnnotation] != wantRecord || during.annotations["owner"] != "platform" {
			t.Fatalf("namespace while installed: %+v\nwant labels %v and record %s", during, wantLabels, wantRecord)
		}
		deleteMI(t, c, mi.Name)
		if after := readNS(t, c, "linkerd"); !sameNS(before, after) {
			t.Fatalf("namespace linkerd not restored after deletion:\nbefore %+v\nafter  %+v", before, after)
		}
	})
}
