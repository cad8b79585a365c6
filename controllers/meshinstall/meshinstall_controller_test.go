package meshinstall_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/meshinstall"
	"github.com/meshplane/meshplane/controllers/meshrevision"
	"github.com/meshplane/meshplane/internal/controlplane"
	"github.com/meshplane/meshplane/internal/helm"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

var ctx = context.Background()

// env is the package's API server, with the real Meshplane CRDs; the
// meshes' CRDs come from their charts. Each test uses its own MeshInstall
// and control-plane namespace.
var env testenv.Package

func TestMain(m *testing.M) {
	testenv.RunEnvtest(m, &env, cluster.EnvtestOptions{CRDs: cluster.CRDOptions{NoThirdParty: true}})
}

// startManager runs the MeshInstall controller (and the MeshRevision
// controller, which shares its Helm engine) against cfg.
func startManager(t *testing.T, cfg *rest.Config) *testenv.Manager {
	t.Helper()
	o := testenv.ManagerOptions{}
	o.Options.SyncPeriod = 10 * time.Minute
	return testenv.StartManager(t, cfg, o, func(m *manager.Manager) error {
		dir, err := os.MkdirTemp("", "meshinstall-helm")
		if err != nil {
			return err
		}
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
		e, err := helm.New(m.GetConfig(), helm.Options{CacheDir: dir})
		if err != nil {
			return err
		}
		if err := meshinstall.Setup(m, e); err != nil {
			return err
		}
		return meshrevision.Setup(m, e)
	})
}

func cond(mi *meshv1alpha1.MeshInstall, typ string) *metav1.Condition {
	return apimeta.FindStatusCondition(mi.Status.Conditions, typ)
}

func getMI(t *testing.T, c client.Client, name string) *meshv1alpha1.MeshInstall {
	t.Helper()
	mi := &meshv1alpha1.MeshInstall{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, mi); err != nil {
		t.Fatal(err)
	}
	return mi
}

// waitCondition waits until the condition has status s (and reason, when
// given) at the current generation.
func waitCondition(t *testing.T, c client.Client, name, typ string, s metav1.ConditionStatus, reason string) *meshv1alpha1.MeshInstall {
	t.Helper()
	var mi *meshv1alpha1.MeshInstall
	testenv.Eventually(t, 90*time.Second, name+" "+typ+"="+string(s)+" "+reason, func() error {
		mi = &meshv1alpha1.MeshInstall{}
		if err := c.Get(ctx, client.ObjectKey{Name: name}, mi); err != nil {
			return err
		}
		cd := cond(mi, typ)
		if cd == nil || cd.Status != s || (reason != "" && cd.Reason != reason) || cd.ObservedGeneration != mi.Generation {
			return testenv.Errorf("conditions: %+v", mi.Status.Conditions)
		}
		return nil
	})
	return mi
}

func eventReasons(t *testing.T, c client.Client, name string) string {
	t.Helper()
	var list corev1.EventList
	if err := c.List(ctx, &list); err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == "MeshInstall" && e.InvolvedObject.Name == name {
			reasons = append(reasons, e.Reason)
		}
	}
	return strings.Join(reasons, ",")
}

func raw(s string) *apiextensionsv1.JSON { return &apiextensionsv1.JSON{Raw: []byte(s)} }

func TestIstioInstallLifecycle(t *testing.T) {
	cfg := env.Cfg(t)
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.28.1")
	repo := chartrepo.Serve(t, dir)
	m := startManager(t, cfg)
	c := m.Client

	mi := &meshv1alpha1.MeshInstall{
		ObjectMeta: metav1.ObjectMeta{Name: "istio"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1",
			Chart: &meshv1alpha1.ChartSource{Repository: repo.URL}, DeletionPolicy: meshv1alpha1.DeletionUninstall},
	}
	if err := c.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	got := waitCondition(t, c, "istio", meshv1alpha1.ComponentsReadyCondition, metav1.ConditionFalse, meshv1alpha1.ComponentsNotReadyReason)
	if r := cond(got, meshv1alpha1.ReadyCondition); r.Status != metav1.ConditionFalse || cond(got, meshv1alpha1.ReconcilingCondition) == nil {
		t.Fatalf("while istiod is unavailable: Ready=%v, want False with Reconciling", r)
	}
	if cond(got, meshv1alpha1.InstalledCondition).Status != metav1.ConditionTrue || len(got.Status.Releases) != 2 {
		t.Fatalf("releases: %+v", got.Status.Releases)
	}
	testenv.MarkAvailable(t, c, "istio-system")
	got = waitCondition(t, c, "istio", meshv1alpha1.ReadyCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason)
	if got.Status.ObservedGeneration != got.Generation || got.Status.InstalledVersion != "1.28.1" || got.Status.Namespace != "istio-system" {
		t.Fatalf("status: %+v", got.Status)
	}
	if cond(got, meshv1alpha1.CRDsEstablishedCondition).Status != metav1.ConditionTrue || len(got.Status.Components) != 1 || !got.Status.Components[0].Ready {
		t.Fatalf("health: %+v %+v", got.Status.Conditions, got.Status.Components)
	}
	if ev := eventReasons(t, c, "istio"); !strings.Contains(ev, "Installed") {
		t.Fatalf("events %q lack Installed", ev)
	}

	t.Run("no-op reconcile writes nothing", func(t *testing.T) {
		var helmCalls atomic.Int32
		wc, writes := testenv.CachedClient(t, m.Manager)
		r := &meshinstall.Reconciler{Deps: controlplane.Deps{Client: wc, APIReader: m.GetAPIReader(), Registry: m.Registry,
			Helm: countingHelm{Releaser: mustEngine(t, m), calls: &helmCalls}, Events: events.NewFakeRecorder(100),
			Clock: clock.RealClock{}, OperatorNamespace: testenv.OperatorNamespace}}
		for range 3 {
			if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: "istio"}}); err != nil {
				t.Fatal(err)
			}
		}
		if writes.Count() != 0 || helmCalls.Load() != 0 {
			t.Fatalf("no-op reconciles sent %d writes (%v) and %d Helm installs/upgrades, want 0", writes.Count(), writes.Log(), helmCalls.Load())
		}
	})

	t.Run("no-op reconcile reads no Helm release", func(t *testing.T) {
		counted, reads := countReads(m.GetConfig())
		e, err := helm.New(counted, helm.Options{CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		apiReader, err := client.New(counted, client.Options{Scheme: m.GetScheme()})
		if err != nil {
			t.Fatal(err)
		}
		var gets atomic.Int64
		r := &meshinstall.Reconciler{Deps: controlplane.Deps{Client: m.GetClient(), APIReader: apiReader, Registry: m.Registry,
			Helm: readCountingHelm{Releaser: e, ns: "istio-system", reads: &gets}, Events: events.NewFakeRecorder(100),
			Clock: clock.RealClock{}, OperatorNamespace: testenv.OperatorNamespace}}
		reconcileOnce := func() {
			if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: "istio"}}); err != nil {
				t.Fatal(err)
			}
		}
		reconcileOnce() // the first reads each release once
		if gets.Load() != 2 {
			t.Fatalf("first reconcile read %d releases, want 2", gets.Load())
		}
		gets.Store(0)
		reads.Store(0)
		for range 3 {
			reconcileOnce()
		}
		if gets.Load() != 0 {
			t.Fatalf("3 no-op reconciles read Helm storage %d times, want 0", gets.Load())
		}
		if reads.Load() > 3 {
			t.Fatalf("3 no-op reconciles sent %d uncached reads, want at most 1 each", reads.Load())
		}
	})

	rev := func() int {
		info, err := mustEngine(t, m).Get(ctx, "istiod", "istio-system")
		if err != nil {
			t.Fatal(err)
		}
		return info.Revision
	}
	before := rev()

	t.Run("unknown version stalls and changes nothing", func(t *testing.T) {
		patchSpec(t, c, "istio", func(s *meshv1alpha1.MeshInstallSpec) { s.Version = "1.99.0" })
		got := waitCondition(t, c, "istio", meshv1alpha1.StalledCondition, metav1.ConditionTrue, meshv1alpha1.ChartUnavailableReason)
		if msg := cond(got, meshv1alpha1.StalledCondition).Message; !strings.Contains(msg, "1.99.0") || !strings.Contains(msg, "1.28.1") {
			t.Fatalf("message should name the missing and the available versions: %s", msg)
		}
		if rev() != before || got.Status.InstalledVersion != "1.28.1" {
			t.Fatalf("the running release changed")
		}
	})
	t.Run("values the API server rejects stall and change nothing", func(t *testing.T) {
		patchSpec(t, c, "istio", func(s *meshv1alpha1.MeshInstallSpec) {
			s.Version = "1.28.1"
			s.Components = []meshv1alpha1.ComponentValues{{Chart: "istiod", Values: *raw(`{"pilot":{"replicaCount":"one"}}`)}}
		})
		got := waitCondition(t, c, "istio", meshv1alpha1.StalledCondition, metav1.ConditionTrue, meshv1alpha1.OutputRejectedReason)
		if msg := cond(got, meshv1alpha1.StalledCondition).Message; !strings.Contains(msg, "Deployment istio-system/istiod") || !strings.Contains(msg, "replicas") {
			t.Fatalf("message should name the object and field: %s", msg)
		}
		if rev() != before {
			t.Fatalf("the running release changed")
		}
	})
	t.Run("an unknown component stalls", func(t *testing.T) {
		patchSpec(t, c, "istio", func(s *meshv1alpha1.MeshInstallSpec) {
			s.Components = []meshv1alpha1.ComponentValues{{Chart: "ztunnel", Values: *raw(`{}`)}}
		})
		got := waitCondition(t, c, "istio", meshv1alpha1.StalledCondition, metav1.ConditionTrue, meshv1alpha1.InvalidSpecReason)
		if msg := cond(got, meshv1alpha1.StalledCondition).Message; !strings.Contains(msg, "ztunnel") {
			t.Fatalf("message: %s", msg)
		}
	})
	t.Run("an active BreakGlass holds upgrades until it is gone", func(t *testing.T) {
		bg := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "istiod-outage"},
			Spec: meshv1alpha1.BreakGlassSpec{Reason: "istiod down", Target: meshv1alpha1.BreakGlassTarget{
				MeshInstallRef: &meshv1alpha1.LocalObjectReference{Name: "istio"}}}}
		if err := c.Create(ctx, bg); err != nil {
			t.Fatal(err)
		}
		patchSpec(t, c, "istio", func(s *meshv1alpha1.MeshInstallSpec) {
			s.Components = []meshv1alpha1.ComponentValues{{Chart: "istiod", Values: *raw(`{"pilot":{"env":{"PILOT_X":"1"}}}`)}}
		})
		got := waitCondition(t, c, "istio", meshv1alpha1.BreakGlassActiveCondition, metav1.ConditionTrue, meshv1alpha1.BreakGlassActiveReason)
		if r := cond(got, meshv1alpha1.ReadyCondition); r.Status != metav1.ConditionFalse || r.Reason != meshv1alpha1.BreakGlassActiveReason ||
			!strings.Contains(r.Message, "istiod-outage") {
			t.Fatalf("Ready while held: %+v", r)
		}
		if rev() != before {
			t.Fatalf("istiod was upgraded while a BreakGlass held the MeshInstall")
		}
		if err := c.Delete(ctx, bg); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 60*time.Second, "BreakGlass gone and the condition cleared", func() error {
			if err := c.Get(ctx, client.ObjectKey{Name: bg.Name}, &meshv1alpha1.BreakGlass{}); !apierrors.IsNotFound(err) {
				return testenv.Errorf("BreakGlass still there: %v", err)
			}
			if cd := cond(getMI(t, c, "istio"), meshv1alpha1.BreakGlassActiveCondition); cd != nil {
				return testenv.Errorf("BreakGlassActive still set: %+v", cd)
			}
			return nil
		})
	})
	t.Run("values change upgrades and becomes Ready again", func(t *testing.T) {
		patchSpec(t, c, "istio", func(s *meshv1alpha1.MeshInstallSpec) {
			s.Components = []meshv1alpha1.ComponentValues{{Chart: "istiod", Values: *raw(`{"pilot":{"env":{"PILOT_X":"1"}}}`)}}
		})
		testenv.Eventually(t, 60*time.Second, "istiod upgraded", func() error {
			if r := rev(); r <= before {
				return testenv.Errorf("revision %d", r)
			}
			return nil
		})
		testenv.MarkAvailable(t, c, "istio-system")
		waitCondition(t, c, "istio", meshv1alpha1.ReadyCondition, metav1.ConditionTrue, "")
	})
	t.Run("Uninstall removes the releases and keeps the CRDs", func(t *testing.T) {
		if err := c.Delete(ctx, &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"}}); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 60*time.Second, "MeshInstall gone", func() error {
			err := c.Get(ctx, client.ObjectKey{Name: "istio"}, &meshv1alpha1.MeshInstall{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return testenv.Errorf("still there: %v", err)
		})
		if _, err := mustEngine(t, m).Get(ctx, "istiod", "istio-system"); !errors.Is(err, helm.ErrReleaseNotFound) {
			t.Fatalf("istiod release: %v, want uninstalled", err)
		}
		var crds apiextensionsv1.CustomResourceDefinitionList
		if err := c.List(ctx, &crds); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, crd := range crds.Items {
			if strings.HasSuffix(crd.Spec.Group, "istio.io") {
				n++
			}
		}
		if n == 0 {
			t.Fatal("Istio's CRDs were deleted")
		}
		var dep appsv1.Deployment
		if err := c.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "istiod"}, &dep); !apierrors.IsNotFound(err) {
			t.Fatalf("istiod Deployment: %v, want deleted", err)
		}
	})
}

func patchSpec(t *testing.T, c client.Client, name string, f func(*meshv1alpha1.MeshInstallSpec)) {
	t.Helper()
	mi := getMI(t, c, name)
	base := mi.DeepCopy()
	f(&mi.Spec)
	if err := c.Patch(ctx, mi, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
}

// countingHelm counts the calls that could write.
type countingHelm struct {
	helm.Releaser
	calls *atomic.Int32
}

func (h countingHelm) Ensure(ctx context.Context, rel helm.Release, wait bool, timeout time.Duration) (helm.Result, error) {
	h.calls.Add(1)
	return h.Releaser.Ensure(ctx, rel, wait, timeout)
}

func (h countingHelm) Adopt(ctx context.Context, rel helm.Release, wait bool, timeout time.Duration) (helm.Result, error) {
	h.calls.Add(1)
	return h.Releaser.Adopt(ctx, rel, wait, timeout)
}

func (h countingHelm) Rollback(ctx context.Context, name, ns string, wait bool, timeout time.Duration) error {
	h.calls.Add(1)
	return h.Releaser.Rollback(ctx, name, ns, wait, timeout)
}

func (h countingHelm) Uninstall(ctx context.Context, name, ns string, wait bool, timeout time.Duration) error {
	h.calls.Add(1)
	return h.Releaser.Uninstall(ctx, name, ns, wait, timeout)
}

func mustEngine(t *testing.T, m *testenv.Manager) *helm.Engine {
	t.Helper()
	e, err := helm.New(m.GetConfig(), helm.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// countReads returns a copy of cfg whose clients count their reads (GET
// requests but watches).
func countReads(cfg *rest.Config) (*rest.Config, *atomic.Int64) {
	var reads atomic.Int64
	counted := rest.CopyConfig(cfg)
	counted.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodGet && r.URL.Query().Get("watch") != "true" {
				reads.Add(1)
			}
			return rt.RoundTrip(r)
		})
	})
	return counted, &reads
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
