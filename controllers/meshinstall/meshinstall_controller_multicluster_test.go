package meshinstall_test

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/testenv"
)

// testMulticlusterExtension runs on TestLinkerdGeneratedIdentity's install
// "linkerd": spec.linkerd.multicluster adds the real linkerd-multicluster
// chart as a release in namespace linkerd-multicluster (gateway, one
// service-mirror controller per listed Link, the Link CRD), a change of the
// list upgrades it, and removing the field uninstalls it (the CRD stays).
func testMulticlusterExtension(t *testing.T, m *testenv.Manager, dir string) {
	charts.Stage(t, dir, charts.Chart{Name: charts.LinkerdMulticluster, Version: "2026.1.1"})
	c := m.Client
	setMulticluster := func(mc *meshv1alpha1.LinkerdMulticluster) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, "spec.linkerd.multicluster set", func() error {
			mi := &meshv1alpha1.MeshInstall{}
			if err := c.Get(ctx, client.ObjectKey{Name: "linkerd"}, mi); err != nil {
				return err
			}
			if mi.Spec.Linkerd == nil {
				mi.Spec.Linkerd = &meshv1alpha1.LinkerdInstallSpec{}
			}
			mi.Spec.Linkerd.Multicluster = mc
			return c.Update(ctx, mi)
		})
	}
	deployment := func(name string) error {
		return c.Get(ctx, client.ObjectKey{Namespace: "linkerd-multicluster", Name: name}, &appsv1.Deployment{})
	}

	setMulticluster(&meshv1alpha1.LinkerdMulticluster{Links: []string{"east"}})
	testenv.Eventually(t, 60*time.Second, "extension installed with the east controller", func() error {
		mi := &meshv1alpha1.MeshInstall{}
		if err := c.Get(ctx, client.ObjectKey{Name: "linkerd"}, mi); err != nil {
			return err
		}
		rel := findRelease(mi.Status.Releases, "linkerd-multicluster")
		if rel == nil || rel.Namespace != "linkerd-multicluster" || rel.Status != "deployed" || rel.Chart != "linkerd-multicluster-2026.1.1" {
			return testenv.Errorf("release %+v", rel)
		}
		if err := deployment("linkerd-gateway"); err != nil {
			return err
		}
		return deployment("controller-east")
	})
	info, err := mustEngine(t, m).Get(ctx, "linkerd-multicluster", "linkerd-multicluster")
	if err != nil {
		t.Fatal(err)
	}
	if info.Values["linkerdNamespace"] != "linkerd" || info.Values["linkerdVersion"] != "edge-26.1.1" {
		t.Fatalf("values: %v", info.Values)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := c.Get(ctx, client.ObjectKey{Name: "links.multicluster.linkerd.io"}, crd); err != nil {
		t.Fatalf("Link CRD: %v", err)
	}
	testenv.MarkAvailable(t, c, "linkerd-multicluster")
	waitCondition(t, c, "linkerd", meshv1alpha1.ReadyCondition, metav1.ConditionTrue, "")

	setMulticluster(&meshv1alpha1.LinkerdMulticluster{Gateway: ptr.To(false), Links: []string{"east", "west"}})
	testenv.Eventually(t, 60*time.Second, "west controller added, gateway removed", func() error {
		if err := deployment("controller-west"); err != nil {
			return err
		}
		if err := deployment("linkerd-gateway"); !apierrors.IsNotFound(err) {
			return testenv.Errorf("gateway: %v", err)
		}
		return nil
	})

	setMulticluster(nil)
	testenv.Eventually(t, 60*time.Second, "extension uninstalled", func() error {
		mi := &meshv1alpha1.MeshInstall{}
		if err := c.Get(ctx, client.ObjectKey{Name: "linkerd"}, mi); err != nil {
			return err
		}
		if rel := findRelease(mi.Status.Releases, "linkerd-multicluster"); rel != nil {
			return testenv.Errorf("still recorded: %+v", rel)
		}
		if err := deployment("controller-east"); !apierrors.IsNotFound(err) {
			return testenv.Errorf("controller-east: %v", err)
		}
		return nil
	})
	if _, err := mustEngine(t, m).Get(ctx, "linkerd-multicluster", "linkerd-multicluster"); err == nil {
		t.Fatal("release linkerd-multicluster still installed")
	}
	if err := c.Get(ctx, client.ObjectKey{Name: "links.multicluster.linkerd.io"}, &apiextensionsv1.CustomResourceDefinition{}); err != nil {
		t.Fatalf("the Link CRD must stay (Links may hold credentials users rely on): %v", err)
	}
	if got := waitCondition(t, c, "linkerd", meshv1alpha1.ReadyCondition, metav1.ConditionTrue, ""); len(got.Status.Releases) != 2 {
		t.Fatalf("releases after uninstall: %+v", got.Status.Releases)
	}
}

func findRelease(rs []meshv1alpha1.HelmReleaseStatus, name string) *meshv1alpha1.HelmReleaseStatus {
	for i := range rs {
		if rs[i].Name == name {
			return &rs[i]
		}
	}
	return nil
}
