package e2e

import (
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/helm"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/harness"
)

// TestAdoptCLIInstall installs Istio the way its CLI does (`istioctl
// install` applies plain manifests: no Helm release, no Helm labels), then
// adopts it with spec.adopt.source CLI: the objects are taken over in place
// by Helm releases of the same charts, istiod keeps its pods, and the
// MeshInstall is Ready and lists what it adopted.
func TestAdoptCLIInstall(t *testing.T) {
	parallel(t)
	sim := cluster.UseSimulated(t, cluster.SimulatedOptions{Nodes: 1, CRDs: &cluster.CRDOptions{NoThirdParty: true}})
	dir := t.TempDir()
	paths := charts.Stage(t, dir, charts.Chart{Name: charts.IstioBase, Version: "1.28.1"}, charts.Chart{Name: charts.Istiod, Version: "1.28.1"})
	c := harness.StartManager(t, sim.Config).Client
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "istio-system"}}); err != nil {
		t.Fatal(err)
	}
	global := map[string]any{"istioNamespace": "istio-system"}
	cliApply(t, c, paths[0], "istio-base", map[string]any{"global": global})
	cliApply(t, c, paths[1], "istiod", map[string]any{"global": global, "revision": "", "revisionTags": []any{}})
	harness.Eventually(t, 40*time.Second, "istiod available", func() error { return allAvailable(c, []string{"istio-system"}) })
	uids := podUIDs(t, c, "istio-system")
	var dep appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "istiod"}, &dep); err != nil {
		t.Fatal(err)
	}

	mi := &meshv1alpha1.MeshInstall{
		ObjectMeta: metav1.ObjectMeta{Name: "istio"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1",
			Chart: &meshv1alpha1.ChartSource{Path: dir}, Adopt: &meshv1alpha1.AdoptSpec{Source: meshv1alpha1.AdoptCLI}},
	}
	start := time.Now()
	if err := c.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	got := waitMI(t, c, "istio", 50*time.Second, "Ready after adopting the CLI install", ready)
	t.Logf("CLI install adopted in %s", time.Since(start).Round(10*time.Millisecond))
	if a := got.Status.Adopted; a == nil || a.Source != meshv1alpha1.AdoptCLI || !strings.Contains(strings.Join(a.Objects, ","), "Deployment/istio-system/istiod") {
		t.Fatalf("status.adopted: %+v", got.Status.Adopted)
	}
	engine, err := helm.New(sim.Config, helm.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"istio-base", "istiod"} {
		if info, err := engine.Get(ctx, name, "istio-system"); err != nil || info.Revision != 1 {
			t.Fatalf("release %s after adoption: %+v (%v), want revision 1", name, info, err)
		}
	}
	var after appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "istiod"}, &after); err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(dep.Spec, after.Spec) || after.Labels["app.kubernetes.io/managed-by"] != "Helm" {
		b1, _ := yaml.Marshal(dep.Spec)
		b2, _ := yaml.Marshal(after.Spec)
		t.Fatalf("istiod after adoption: labels %v\nspec before %s\nspec after %s", after.Labels, b1, b2)
	}
	// The CLI's default revision validates unlabelled Istio objects; the
	// adopted install keeps that.
	if err := c.Get(ctx, client.ObjectKey{Name: "istiod-default-validator"}, &admissionregistrationv1.ValidatingWebhookConfiguration{}); err != nil {
		t.Fatalf("istiod-default-validator after adoption: %v", err)
	}
	time.Sleep(2 * time.Second)
	if now := podUIDs(t, c, "istio-system"); !sameSet(uids, now) {
		t.Fatalf("pods restarted: before %v, after %v", uids, now)
	}
}

// cliApply renders a chart offline and creates every object, CRDs
// included, as a mesh's CLI does: plain objects, no Helm release.
func cliApply(t *testing.T, c client.Client, path, name string, vals map[string]any) {
	t.Helper()
	ch, err := loader.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	inst := action.NewInstall(action.NewConfiguration())
	inst.DryRunStrategy = action.DryRunClient
	inst.ReleaseName = name
	inst.Namespace = "istio-system"
	inst.IncludeCRDs = true
	r, err := inst.Run(ch, vals)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(r.(*releasev1.Release).Manifest, "\n---") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		if len(u.Object) == 0 {
			continue
		}
		if u.GetNamespace() == "" && u.GetKind() != "CustomResourceDefinition" && !strings.HasSuffix(u.GetKind(), "WebhookConfiguration") &&
			!strings.HasPrefix(u.GetKind(), "Cluster") {
			u.SetNamespace("istio-system")
		}
		if err := c.Create(ctx, u); err != nil {
			t.Fatalf("creating %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
}
