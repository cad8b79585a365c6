package meshinstall_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/meshinstall"
	"github.com/meshplane/meshplane/controllers/meshrevision"
	"github.com/meshplane/meshplane/internal/helm"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/testenv"
)

// faultHelm fails Ensure of the release named in fail, as a real upgrade
// failing after its dry run passed would.
type faultHelm struct {
	helm.Releaser
	fail *atomic.Pointer[string]
}

func (h faultHelm) Ensure(ctx context.Context, rel helm.Release, wait bool, timeout time.Duration) (helm.Result, error) {
	if f := h.fail.Load(); f != nil && *f == rel.Name {
		return helm.Result{}, outcome.Stalled(meshv1alpha1.InstallFailedReason, "upgrade of release %s/%s failed (injected by the test)", rel.Namespace, rel.Name)
	}
	return h.Releaser.Ensure(ctx, rel, wait, timeout)
}

// liveState is the resourceVersion of every object of a control plane that
// a refused change must leave alone: the Deployments, ConfigMaps, Services
// and Secrets (Helm's release records among them) of its namespace, and
// every webhook configuration.
func liveState(t *testing.T, c client.Client, ns string) map[string]string {
	t.Helper()
	out := map[string]string{}
	add := func(kind string, items []client.Object) {
		for _, o := range items {
			out[kind+"/"+o.GetNamespace()+"/"+o.GetName()] = o.GetResourceVersion()
		}
	}
	var deps appsv1.DeploymentList
	var cms corev1.ConfigMapList
	var svcs corev1.ServiceList
	var secrets corev1.SecretList
	var mwcs admissionregistrationv1.MutatingWebhookConfigurationList
	var vwcs admissionregistrationv1.ValidatingWebhookConfigurationList
	for _, l := range []client.ObjectList{&deps, &cms, &svcs, &secrets} {
		if err := c.List(ctx, l, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []client.ObjectList{&mwcs, &vwcs} {
		if err := c.List(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	for i := range deps.Items {
		add("Deployment", []client.Object{&deps.Items[i]})
	}
	for i := range cms.Items {
		add("ConfigMap", []client.Object{&cms.Items[i]})
	}
	for i := range svcs.Items {
		add("Service", []client.Object{&svcs.Items[i]})
	}
	for i := range secrets.Items {
		add("Secret", []client.Object{&secrets.Items[i]})
	}
	for i := range mwcs.Items {
		add("MutatingWebhookConfiguration", []client.Object{&mwcs.Items[i]})
	}
	for i := range vwcs.Items {
		add("ValidatingWebhookConfiguration", []client.Object{&vwcs.Items[i]})
	}
	return out
}

func sameState(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	if maps.Equal(before, after) {
		return
	}
	var diff []string
	for _, k := range slices.Sorted(maps.Keys(before)) {
		if after[k] != before[k] {
			diff = append(diff, fmt.Sprintf("%s %s->%s", k, before[k], after[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(after)) {
		if _, ok := before[k]; !ok {
			diff = append(diff, "new "+k)
		}
	}
	t.Fatalf("%s changed live objects: %s", what, strings.Join(diff, "; "))
}

// TestIstioChangeIsOneUnit: a change of values or version moves no release
// unless every object of every chart passes the API server's dry run, and a
// release that fails after an earlier one moved rolls that one back. The
// fixture charts, like Istio's, carry no values.schema.json.
func TestIstioChangeIsOneUnit(t *testing.T) {
	cfg := env.Cfg(t)
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.28.1", "1.29.0")
	repo := chartrepo.Serve(t, dir)
	var fail atomic.Pointer[string]
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
		h := faultHelm{Releaser: e, fail: &fail}
		if err := meshinstall.Setup(m, h); err != nil {
			return err
		}
		return meshrevision.Setup(m, h)
	})
	c := m.Client
	const name, ns = "istio-change", "istio-change"
	mi := &meshv1alpha1.MeshInstall{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1", Namespace: ns,
			Chart: &meshv1alpha1.ChartSource{Repository: repo.URL}, DeletionPolicy: meshv1alpha1.DeletionUninstall},
	}
	if err := c.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	removeAtEnd(t, c, name)
	waitCondition(t, c, name, meshv1alpha1.InstalledCondition, metav1.ConditionTrue, "")
	testenv.MarkAvailable(t, c, ns)
	waitCondition(t, c, name, meshv1alpha1.ReadyCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason)
	eng := mustEngine(t, m)
	release := func(n string) *helm.ReleaseInfo {
		t.Helper()
		info, err := eng.Get(ctx, n, ns)
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	base0, istiod0 := release("istio-base").Revision, release("istiod").Revision

	refused := []struct {
		name, version, values string
		want                  []string
	}{
		{"a quantity the API server refuses", "1.28.1", `{"pilot":{"resources":{"requests":{"cpu":"lots"}}}}`,
			[]string{"chart istiod 1.28.1", "Deployment " + ns + "/istiod", "cpu", `"lots"`, "quantities must match"}},
		{"a string where a number belongs", "1.28.1", `{"pilot":{"replicaCount":"one"}}`,
			[]string{"chart istiod 1.28.1", "Deployment " + ns + "/istiod", "replicas"}},
		{"a bad value with a version change", "1.29.0", `{"pilot":{"resources":{"requests":{"cpu":"lots"}}}}`,
			[]string{"chart istiod 1.29.0", "Deployment " + ns + "/istiod", "cpu", "no release was changed"}},
	}
	for _, tc := range refused {
		t.Run(tc.name+" moves no release and changes nothing", func(t *testing.T) {
			before := liveState(t, c, ns)
			patchSpec(t, c, name, func(s *meshv1alpha1.MeshInstallSpec) {
				s.Version = tc.version
				s.Components = []meshv1alpha1.ComponentValues{{Chart: "istiod", Values: *raw(tc.values)}}
			})
			got := waitCondition(t, c, name, meshv1alpha1.StalledCondition, metav1.ConditionTrue, meshv1alpha1.OutputRejectedReason)
			msg := cond(got, meshv1alpha1.StalledCondition).Message
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message lacks %q: %s", w, msg)
				}
			}
			if r := cond(got, meshv1alpha1.ReadyCondition); r.Status != metav1.ConditionFalse {
				t.Errorf("Ready = %+v", r)
			}
			if b, i := release("istio-base"), release("istiod"); b.Revision != base0 || i.Revision != istiod0 || b.ChartVersion != "1.28.1" || i.ChartVersion != "1.28.1" {
				t.Fatalf("releases moved: base %d %s, istiod %d %s", b.Revision, b.ChartVersion, i.Revision, i.ChartVersion)
			}
			if got.Status.InstalledVersion != "1.28.1" {
				t.Fatalf("installedVersion %s", got.Status.InstalledVersion)
			}
			sameState(t, "a refused change", before, liveState(t, c, ns))
		})
	}

	t.Run("reverting the bad version closes the upgrade and is Ready", func(t *testing.T) {
		patchSpec(t, c, name, func(s *meshv1alpha1.MeshInstallSpec) {
			s.Version = "1.28.1"
			s.Components = nil
		})
		got := waitCondition(t, c, name, meshv1alpha1.ReadyCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason)
		if u := got.Status.Upgrade; u != nil && (u.Phase != meshv1alpha1.UpgradeCompleted || !strings.Contains(u.Message, "cancelled")) {
			t.Fatalf("upgrade left open: %+v", u)
		}
		if up := cond(got, meshv1alpha1.UpgradingCondition); up != nil && up.Status == metav1.ConditionTrue {
			t.Fatalf("Ready and Upgrading at once: %+v", up)
		}
		if b, i := release("istio-base"), release("istiod"); b.Revision != base0 || i.Revision != istiod0 {
			t.Fatalf("releases moved: base %d, istiod %d", b.Revision, i.Revision)
		}
	})

	t.Run("a release failing after an earlier one moved rolls that one back", func(t *testing.T) {
		bad := "istiod"
		fail.Store(&bad)
		defer fail.Store(nil)
		patchSpec(t, c, name, func(s *meshv1alpha1.MeshInstallSpec) { s.Version = "1.29.0" })
		got := waitCondition(t, c, name, meshv1alpha1.StalledCondition, metav1.ConditionTrue, meshv1alpha1.InstallFailedReason)
		msg := cond(got, meshv1alpha1.StalledCondition).Message
		if !strings.Contains(msg, "injected") || !strings.Contains(msg, "rolled back "+ns+"/istio-base to revision") {
			t.Fatalf("message should say base was rolled back: %s", msg)
		}
		b, i := release("istio-base"), release("istiod")
		if b.ChartVersion != "1.28.1" || b.Revision != base0+2 || i.Revision != istiod0 || i.ChartVersion != "1.28.1" {
			t.Fatalf("after the failed change: base %d %s (want %d 1.28.1), istiod %d %s", b.Revision, b.ChartVersion, base0+2, i.Revision, i.ChartVersion)
		}
		if got.Status.InstalledVersion != "1.28.1" {
			t.Fatalf("installedVersion %s", got.Status.InstalledVersion)
		}
		if st := findStatusRelease(got, "istio-base"); st == nil || st.Revision != int32(base0+2) || st.Chart != "base-1.28.1" {
			t.Fatalf("status of base: %+v", st)
		}
	})
}

func findStatusRelease(mi *meshv1alpha1.MeshInstall, name string) *meshv1alpha1.HelmReleaseStatus {
	for i := range mi.Status.Releases {
		if mi.Status.Releases[i].Name == name {
			return &mi.Status.Releases[i]
		}
	}
	return nil
}

// TestIstioDefaultValidator: the default tag carries istiod-default-validator
// (derived from its revision's validator, without the object selector, as
// `istioctl tag set default` writes it): present after install, repaired
// after deletion, moved by an upgrade, and removed with the install.
func TestIstioDefaultValidator(t *testing.T) {
	cfg := env.Cfg(t)
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.28.1", "1.29.0")
	repo := chartrepo.Serve(t, dir)
	m := startManager(t, cfg)
	c := m.Client
	cp := testenv.Namespace(t, c, nil)
	player := &rolloutPlayer{c: c, rolloutTime: 50 * time.Millisecond, pendingAt: map[string]time.Time{}}
	player.watch(cp)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go player.run(pctx)

	mi := &meshv1alpha1.MeshInstall{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-validator"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1", Namespace: cp,
			Chart: &meshv1alpha1.ChartSource{Repository: repo.URL}, DeletionPolicy: meshv1alpha1.DeletionUninstall,
			Upgrade: &meshv1alpha1.UpgradeSpec{Strategy: meshv1alpha1.UpgradeRevisionBased,
				RevisionRetention: &metav1.Duration{Duration: time.Second}}},
	}
	testenv.Must(t, c.Create(ctx, mi))
	removeAtEnd(t, c, mi.Name)
	validator := func(revision string) error {
		var v admissionregistrationv1.ValidatingWebhookConfiguration
		if err := c.Get(ctx, client.ObjectKey{Name: "istiod-default-validator"}, &v); err != nil {
			return err
		}
		if len(v.Webhooks) != 1 {
			return testenv.Errorf("webhooks %+v", v.Webhooks)
		}
		w := v.Webhooks[0]
		if s := w.ClientConfig.Service; s == nil || s.Name != "istiod-"+revision || s.Namespace != cp || s.Path == nil || *s.Path != "/validate" {
			return testenv.Errorf("client config %+v, want istiod-%s in %s", w.ClientConfig, revision, cp)
		}
		if w.ObjectSelector != nil && len(w.ObjectSelector.MatchExpressions)+len(w.ObjectSelector.MatchLabels) > 0 {
			return testenv.Errorf("object selector %+v: unlabelled objects would not be validated", w.ObjectSelector)
		}
		if v.Labels["istio.io/rev"] != revision || v.Labels["istio.io/tag"] != "default" {
			return testenv.Errorf("labels %v", v.Labels)
		}
		return nil
	}
	testenv.Eventually(t, 60*time.Second, "validator of 1-28-1 after install", func() error { return validator("1-28-1") })
	waitCondition(t, c, mi.Name, meshv1alpha1.ReadyCondition, metav1.ConditionTrue, "")

	t.Run("deleted, it is written again", func(t *testing.T) {
		testenv.Must(t, c.Delete(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "istiod-default-validator"}}))
		testenv.Eventually(t, 30*time.Second, "validator repaired", func() error { return validator("1-28-1") })
	})
	t.Run("an upgrade moves it with the default tag", func(t *testing.T) {
		patchSpec(t, c, mi.Name, func(s *meshv1alpha1.MeshInstallSpec) { s.Version = "1.29.0" })
		testenv.Eventually(t, 60*time.Second, "validator of 1-29-0 after the upgrade", func() error { return validator("1-29-0") })
		got := waitCondition(t, c, mi.Name, meshv1alpha1.ReadyCondition, metav1.ConditionTrue, "")
		if msg := cond(got, meshv1alpha1.ComponentsReadyCondition).Message; strings.HasPrefix(msg, "0 ") {
			t.Errorf("component health counts no workload of the install: %s", msg)
		}
	})
	t.Run("a bad value for the next revision moves no shared release", func(t *testing.T) {
		eng := mustEngine(t, m)
		base, err := eng.Get(ctx, "istio-base", cp)
		testenv.Must(t, err)
		patchSpec(t, c, mi.Name, func(s *meshv1alpha1.MeshInstallSpec) {
			s.Version = "1.28.1"
			s.Components = []meshv1alpha1.ComponentValues{{Chart: "istiod", Values: *raw(`{"pilot":{"replicaCount":"one"}}`)}}
		})
		got := waitCondition(t, c, mi.Name, meshv1alpha1.StalledCondition, metav1.ConditionTrue, meshv1alpha1.OutputRejectedReason)
		if msg := cond(got, meshv1alpha1.StalledCondition).Message; !strings.Contains(msg, "chart istiod 1.28.1 (release "+cp+"/istiod-1-28-1)") || !strings.Contains(msg, "replicas") {
			t.Fatalf("message: %s", msg)
		}
		if after, err := eng.Get(ctx, "istio-base", cp); err != nil || after.Revision != base.Revision || after.ChartVersion != "1.29.0" {
			t.Fatalf("base moved: %+v %v", after, err)
		}
		if err := c.Get(ctx, client.ObjectKey{Name: "1-28-1"}, &meshv1alpha1.MeshRevision{}); !apierrors.IsNotFound(err) {
			t.Fatalf("MeshRevision 1-28-1 created: %v", err)
		}
	})
	t.Run("reverting a RevisionBased upgrade in flight closes it", func(t *testing.T) {
		cancel() // istiod of the next revision never becomes Available
		patchSpec(t, c, mi.Name, func(s *meshv1alpha1.MeshInstallSpec) {
			s.Version = "1.28.1"
			s.Components = nil
		})
		testenv.Eventually(t, 60*time.Second, "upgrade to 1.28.1 waiting for its revision", func() error {
			got := getMI(t, c, mi.Name)
			if u := got.Status.Upgrade; u == nil || u.ToVersion != "1.28.1" || !status.IsTrue(&got.Status.CommonStatus, meshv1alpha1.UpgradingCondition) {
				return testenv.Errorf("upgrade %+v, conditions %+v", u, got.Status.Conditions)
			}
			return nil
		})
		patchSpec(t, c, mi.Name, func(s *meshv1alpha1.MeshInstallSpec) { s.Version = "1.29.0" })
		got := waitCondition(t, c, mi.Name, meshv1alpha1.ReadyCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason)
		if u := got.Status.Upgrade; u == nil || u.Phase != meshv1alpha1.UpgradeCompleted || !strings.Contains(u.Message, "upgrade to 1.28.1 cancelled") {
			t.Fatalf("upgrade left open: %+v", u)
		}
		if up := cond(got, meshv1alpha1.UpgradingCondition); up != nil && up.Status == metav1.ConditionTrue {
			t.Fatalf("Ready and Upgrading at once: %+v", up)
		}
		if err := validator("1-29-0"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("deleting the install removes it", func(t *testing.T) {
		testenv.Must(t, c.Delete(ctx, getMI(t, c, mi.Name)))
		testenv.Eventually(t, 60*time.Second, "validator gone", func() error {
			err := c.Get(ctx, client.ObjectKey{Name: "istiod-default-validator"}, &admissionregistrationv1.ValidatingWebhookConfiguration{})
			if client.IgnoreNotFound(err) != nil || err == nil {
				return testenv.Errorf("validator: %v", err)
			}
			if err := c.Get(ctx, client.ObjectKey{Name: mi.Name}, &meshv1alpha1.MeshInstall{}); !apierrors.IsNotFound(err) {
				return testenv.Errorf("MeshInstall still there: %v", err)
			}
			return nil
		})
	})
}
